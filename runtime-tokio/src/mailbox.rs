//! Connection handles: the runtime's side of `loomwork::stream::Handle`, and the inbox the
//! connection's task reads.
//!
//! A dedicated queue rather than a general channel: one small allocation shared by both ends,
//! no allocation per wait, which matters with thousands of idle connections.

use std::any::Any;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use loomwork::stream::{Control, Handle, Mailbox, Stats};

use crate::companion::Companion;

/// What a handle can post to its connection's task.
pub(crate) enum Envelope<M> {
    /// For `Protocol::message`.
    Message(M),
    /// A close or abort request.
    Control(Control),
    /// Work to run in the connection's task, beside it.
    Companion(Companion),
}

/// A fresh handle for a connection to `peer`, and the inbox its task reads.
pub(crate) fn new_handle<M: Send + 'static>(peer: SocketAddr) -> (Handle<M>, Inbox<M>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            closed: false,
        }),
        stats: Mutex::new(Stats::default()),
    });
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let handle = Handle::new(id, peer, Arc::clone(&shared) as Arc<dyn Mailbox<M>>);
    (handle, Inbox { shared })
}

/// The receiving end, owned by the connection's task. Dropping it (the task ended) closes the
/// mailbox: later posts are refused and anything still queued is dropped.
pub(crate) struct Inbox<M> {
    shared: Arc<Shared<M>>,
}

impl<M> Inbox<M> {
    /// The next queued envelope, if any.
    pub(crate) fn try_recv(&self) -> Option<Envelope<M>> {
        self.shared.lock().queue.pop_front()
    }

    /// True when nothing is queued.
    /// Copies the connection's counters in for [`Handle::stats`]: one uncontended lock per
    /// turn of the task's loop, and no copy when nothing changed.
    pub(crate) fn publish(&self, stats: &Stats) {
        let mut slot = self
            .shared
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *slot != *stats {
            slot.clone_from(stats);
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.shared.lock().queue.is_empty()
    }

    /// The next envelope, or `Pending` with the task's waker registered for the next post.
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Envelope<M>> {
        let mut state = self.shared.lock();
        match state.queue.pop_front() {
            Some(envelope) => Poll::Ready(envelope),
            None => {
                match &mut state.waker {
                    Some(waker) => waker.clone_from(cx.waker()),
                    slot @ None => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }
}

impl<M> Drop for Inbox<M> {
    fn drop(&mut self) {
        let (queue, waker) = {
            let mut state = self.shared.lock();
            state.closed = true;
            (std::mem::take(&mut state.queue), state.waker.take())
        };
        // Dropped outside the lock: a message's destructor may post to another mailbox.
        drop((queue, waker));
    }
}

/// Connection ids, unique across every server and client of this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

struct Shared<M> {
    state: Mutex<State<M>>,
    /// The task's latest counters for `Handle::stats`; apart from the queue so publishing
    /// never contends with posting.
    stats: Mutex<Stats>,
}

struct State<M> {
    queue: VecDeque<Envelope<M>>,
    waker: Option<Waker>,
    closed: bool,
}

impl<M> Shared<M> {
    /// The queue stays consistent whatever panicked while holding it (each operation is a
    /// single push or pop), so a poisoned lock is still good to use.
    fn lock(&self) -> MutexGuard<'_, State<M>> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `envelope` and wakes the task, or hands it back once the task has ended.
    fn push(&self, envelope: Envelope<M>) -> Result<(), Envelope<M>> {
        let waker = {
            let mut state = self.lock();
            if state.closed {
                return Err(envelope);
            }
            state.queue.push_back(envelope);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<M: Send> Mailbox<M> for Shared<M> {
    fn post(&self, message: M) -> Result<(), M> {
        match self.push(Envelope::Message(message)) {
            Ok(()) => Ok(()),
            Err(Envelope::Message(message)) => Err(message),
            // `push` hands back exactly what it was given, a message.
            Err(_) => Ok(()),
        }
    }

    fn control(&self, control: Control) -> bool {
        self.push(Envelope::Control(control)).is_ok()
    }

    fn attach(&self, job: Box<dyn Any + Send>) -> Result<(), Box<dyn Any + Send>> {
        let companion = job.downcast::<Companion>()?;
        match self.push(Envelope::Companion(*companion)) {
            Ok(()) => Ok(()),
            Err(Envelope::Companion(companion)) => Err(Box::new(companion)),
            // `push` hands back exactly what it was given, a companion.
            Err(_) => Ok(()),
        }
    }

    fn stats(&self) -> Option<Stats> {
        let stats = self
            .stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(stats.clone())
    }
}
