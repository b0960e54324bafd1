//! The connection mailbox behind every [`Handle`](loomwork::stream::Handle) this runtime gives out.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use loomwork::stream::{Control, Mailbox, Stats};

use crate::companion::CompanionJob;
use crate::wait::Wakeup;

/// One entry in a connection's inbox. Messages and controls share one queue so that a message
/// posted before a close is delivered before that close.
pub(crate) enum Delivery<M> {
    /// For `Protocol::message`.
    Message(M),
    /// Close or abort.
    Control(Control),
    /// Work to drive on the connection's thread, beside it ([`Mailbox::attach`]).
    Companion(CompanionJob),
}

/// A queue in front of one connection's driver thread, plus the [`Wakeup`] that thread sleeps on.
///
/// Posting notifies the wake-up, so a message is handled as soon as the thread is scheduled,
/// never on a polling tick. When the connection ends the driver calls [`close`](Self::close):
/// later posts are refused (their message is given back), and the wake-up reference is dropped
/// so that a `Handle` kept alive by the application does not keep the connection's descriptors
/// open.
pub(crate) struct ThreadMailbox<M> {
    inbox: Mutex<Inbox<M>>,
    /// The driver's latest counters, for `Handle::stats`; apart from the inbox so publishing
    /// never contends with posting.
    stats: Mutex<Stats>,
    /// Whether [`Mailbox::attach`] takes [`CompanionJob`]s (the driver of a companion's own
    /// connection runs none).
    companions: bool,
}

struct Inbox<M> {
    queue: VecDeque<Delivery<M>>,
    /// `None` once the connection is over.
    waker: Option<Arc<Wakeup>>,
}

impl<M> ThreadMailbox<M> {
    /// An open mailbox that notifies `wakeup` when something is posted, for a connection whose
    /// driver runs companions.
    pub(crate) fn new(wakeup: Arc<Wakeup>) -> Self {
        ThreadMailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                waker: Some(wakeup),
            }),
            stats: Mutex::new(Stats::default()),
            companions: true,
        }
    }

    /// An open mailbox for a companion's own connection: it notifies `wakeup` (the thread's)
    /// and gives back the jobs attached to it.
    pub(crate) fn for_companion(wakeup: Arc<Wakeup>) -> Self {
        ThreadMailbox {
            companions: false,
            ..ThreadMailbox::new(wakeup)
        }
    }

    /// Moves up to `max` deliveries, oldest first, into `batch`; true when more are waiting.
    ///
    /// The cap keeps one flood of posts from starving the socket side of the connection.
    pub(crate) fn take_batch(&self, batch: &mut VecDeque<Delivery<M>>, max: usize) -> bool {
        let mut inbox = self.lock();
        let n = inbox.queue.len().min(max);
        batch.extend(inbox.queue.drain(..n));
        !inbox.queue.is_empty()
    }

    /// Marks the connection as over: later posts fail, and anything still queued is dropped.
    /// Copies the connection's counters in for [`Handle::stats`](loomwork::stream::Handle::stats):
    /// one uncontended lock per turn of the driver's loop.
    pub(crate) fn publish(&self, stats: &Stats) {
        let mut slot = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        if *slot != *stats {
            slot.clone_from(stats);
        }
    }

    pub(crate) fn close(&self) {
        let (leftover, waker) = {
            let mut inbox = self.lock();
            (std::mem::take(&mut inbox.queue), inbox.waker.take())
        };
        // Dropped outside the lock: a message's destructor may post to another connection.
        drop(leftover);
        drop(waker);
    }

    fn lock(&self) -> MutexGuard<'_, Inbox<M>> {
        // The critical sections cannot leave the inbox inconsistent, so a panic elsewhere
        // while the lock was held is no reason to stop delivering.
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item` (wrapped by `wrap`) and wakes the driver; gives `item` back when closed.
    fn push<T>(&self, item: T, wrap: impl FnOnce(T) -> Delivery<M>) -> Result<(), T> {
        let mut inbox = self.lock();
        let Some(waker) = inbox.waker.clone() else {
            return Err(item);
        };
        inbox.queue.push_back(wrap(item));
        drop(inbox);
        waker.notify();
        Ok(())
    }
}

impl<M: Send> Mailbox<M> for ThreadMailbox<M> {
    fn post(&self, message: M) -> Result<(), M> {
        self.push(message, Delivery::Message)
    }

    fn control(&self, control: Control) -> bool {
        self.push(control, Delivery::Control).is_ok()
    }

    fn attach(&self, job: Box<dyn Any + Send>) -> Result<(), Box<dyn Any + Send>> {
        if !self.companions {
            return Err(job);
        }
        let job = job.downcast::<CompanionJob>()?;
        self.push(*job, Delivery::Companion)
            .map_err(|job| Box::new(job) as Box<dyn Any + Send>)
    }

    fn stats(&self) -> Option<Stats> {
        Some(
            self.stats
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_keep_their_order_and_batches_are_capped() {
        let mailbox = ThreadMailbox::new(Arc::new(Wakeup::new().unwrap()));
        mailbox.post(1).unwrap();
        assert!(mailbox.control(Control::Close));
        mailbox.post(2).unwrap();
        let mut batch = VecDeque::new();
        assert!(mailbox.take_batch(&mut batch, 2), "one delivery left over");
        assert!(matches!(batch[0], Delivery::Message(1)));
        assert!(matches!(batch[1], Delivery::Control(Control::Close)));
        batch.clear();
        assert!(!mailbox.take_batch(&mut batch, 2));
        assert!(matches!(batch[0], Delivery::Message(2)));
    }

    #[test]
    fn a_closed_mailbox_gives_messages_back() {
        let mailbox = ThreadMailbox::new(Arc::new(Wakeup::new().unwrap()));
        mailbox.post("queued").unwrap();
        mailbox.close();
        assert_eq!(mailbox.post("late"), Err("late"));
        assert!(!mailbox.control(Control::Abort));
        let mut batch = VecDeque::new();
        assert!(!mailbox.take_batch(&mut batch, 8));
        assert!(batch.is_empty(), "what was queued at close is dropped");
    }

    fn job() -> Box<dyn std::any::Any + Send> {
        Box::new(crate::companion::CompanionJob::new(|_| {
            unreachable!("never started")
        }))
    }

    #[test]
    fn attach_takes_companion_jobs_only_where_they_can_run() {
        let mailbox = ThreadMailbox::<()>::new(Arc::new(Wakeup::new().unwrap()));
        assert!(
            mailbox.attach(Box::new(42u32)).is_err(),
            "a foreign job type"
        );
        assert!(mailbox.attach(job()).is_ok());
        let mut batch = VecDeque::new();
        mailbox.take_batch(&mut batch, 8);
        assert!(matches!(batch[0], Delivery::Companion(_)));
        // A companion's own connection does not host companions (no nesting on one thread).
        let companion = ThreadMailbox::<()>::for_companion(Arc::new(Wakeup::new().unwrap()));
        assert!(companion.attach(job()).is_err());
        // Nor does a connection that has ended.
        mailbox.close();
        assert!(mailbox.attach(job()).is_err());
    }
}
