//! Connection handles for async runtimes: the runtime's side of [`Handle`], and the inbox the
//! connection's task reads. Shared by loomwork-smol and loomwork-tokio, which differ only in
//! the type of the companion jobs they accept (`J`: a future made for their own executor).
//!
//! A dedicated queue rather than a general channel: one small allocation shared by both ends,
//! no allocation per wait, which matters with thousands of idle connections.
//!
//! ```
//! use std::sync::Arc;
//! use std::task::{Context, Poll, Wake, Waker};
//! use loomwork_net::mailbox::{new_handle, Envelope};
//!
//! struct Noop;
//! impl Wake for Noop {
//!     fn wake(self: Arc<Self>) {}
//! }
//!
//! // `()` stands for the runtime's companion job type.
//! let (handle, inbox) = new_handle::<&str, ()>("127.0.0.1:9".parse().unwrap());
//! let waker = Waker::from(Arc::new(Noop));
//! let mut cx = Context::from_waker(&waker);
//! assert!(inbox.poll_recv(&mut cx).is_pending());
//! handle.send("hello").unwrap();
//! assert!(matches!(inbox.poll_recv(&mut cx), Poll::Ready(Envelope::Message("hello"))));
//! drop(inbox); // the task ended: later sends are refused
//! assert_eq!(handle.send("late"), Err("late"));
//! ```

use std::any::Any;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use loomwork::stream::{Control, Handle, Mailbox, Stats};

use crate::sync::{lock, next_connection_id};

/// What a handle can post to its connection's task.
pub enum Envelope<M, J> {
    /// For `Protocol::message`.
    Message(M),
    /// A close or abort request.
    Control(Control),
    /// Work to run in the connection's task, beside it (what
    /// [`Handle::attach`](loomwork::stream::Handle::attach) accepted: a `J`).
    Companion(J),
}

/// A fresh handle for a connection to `peer`, and the inbox its task reads. The handle's
/// `attach` accepts jobs of type `J` and gives back any other.
pub fn new_handle<M, J>(peer: SocketAddr) -> (Handle<M>, Inbox<M, J>)
where
    M: Send + 'static,
    J: Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
        }),
        queued: AtomicUsize::new(0),
        stats: Mutex::new(Stats::default()),
    });
    let handle = Handle::new(
        next_connection_id(),
        peer,
        Arc::clone(&shared) as Arc<dyn Mailbox<M>>,
    );
    (handle, Inbox { shared })
}

/// The receiving end, owned by the connection's task. Dropping it (the task ended) closes the
/// mailbox: later posts are refused and anything still queued is dropped.
pub struct Inbox<M, J> {
    shared: Arc<Shared<M, J>>,
}

impl<M, J> Inbox<M, J> {
    /// The next queued envelope, if any. An empty inbox is seen without taking its lock.
    pub fn try_recv(&self) -> Option<Envelope<M, J>> {
        if self.is_empty() {
            return None;
        }
        self.shared.pop()
    }

    /// True when nothing is queued; without taking the lock.
    ///
    /// A post racing with this call may be missed; it is never lost: the task's wait
    /// ([`poll_recv`](Self::poll_recv)) looks under the lock before it sleeps.
    pub fn is_empty(&self) -> bool {
        self.shared.queued.load(Ordering::Acquire) == 0
    }

    /// The next envelope, or `Pending` with the task's waker registered for the next post
    /// (only the latest waker is kept: one task reads an inbox).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Envelope<M, J>> {
        let mut state = self.shared.lock();
        match self.shared.pop_locked(&mut state) {
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

    /// Waits for the next envelope ([`poll_recv`](Self::poll_recv) as a future).
    pub async fn recv(&self) -> Envelope<M, J> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Copies the connection's counters in for [`Handle::stats`]: one uncontended lock per
    /// turn of the task's loop, and no copy when nothing changed.
    pub fn publish(&self, stats: &Stats) {
        let mut slot = lock(&self.shared.stats);
        if *slot != *stats {
            slot.clone_from(stats);
        }
    }
}

impl<M, J> Drop for Inbox<M, J> {
    fn drop(&mut self) {
        let (queue, waker) = {
            let mut state = self.shared.lock();
            self.shared.queued.store(CLOSED, Ordering::Release);
            (std::mem::take(&mut state.queue), state.waker.take())
        };
        // Dropped outside the lock: a message's destructor may post to another mailbox.
        drop((queue, waker));
    }
}

struct Shared<M, J> {
    state: Mutex<State<M, J>>,
    /// How many envelopes `state.queue` holds, or [`CLOSED`] once the inbox is gone; written
    /// under the queue's lock. The task's loop asks whether mail is waiting several times per
    /// turn, nearly always to hear that none is, and reads it here instead of taking the lock.
    /// (The closed mark lives here rather than in `State` so that the mailbox, allocated once
    /// per connection, keeps its size: 8 more bytes moved it to glibc's next size class and
    /// cost an idle loomwork-tokio connection 100-180 bytes of resident memory.)
    queued: AtomicUsize,
    /// The task's latest counters for `Handle::stats`; apart from the queue so publishing
    /// never contends with posting.
    stats: Mutex<Stats>,
}

struct State<M, J> {
    queue: VecDeque<Envelope<M, J>>,
    waker: Option<Waker>,
}

/// [`Shared::queued`] once the inbox is dropped: later posts are refused.
const CLOSED: usize = usize::MAX;

impl<M, J> Shared<M, J> {
    /// The queue stays consistent whatever panicked while holding it (each operation is a
    /// single push or pop), so a poisoned lock is still good to use.
    fn lock(&self) -> MutexGuard<'_, State<M, J>> {
        lock(&self.state)
    }

    /// Takes the next envelope, if any.
    fn pop(&self) -> Option<Envelope<M, J>> {
        self.pop_locked(&mut self.lock())
    }

    /// [`pop`](Self::pop) under a lock already held.
    fn pop_locked(&self, state: &mut State<M, J>) -> Option<Envelope<M, J>> {
        let envelope = state.queue.pop_front();
        if envelope.is_some() {
            self.queued.store(state.queue.len(), Ordering::Release);
        }
        envelope
    }

    /// Queues `envelope` and wakes the task, or hands it back once the task has ended.
    fn push(&self, envelope: Envelope<M, J>) -> Result<(), Envelope<M, J>> {
        let waker = {
            let mut state = self.lock();
            if self.queued.load(Ordering::Relaxed) == CLOSED {
                return Err(envelope);
            }
            state.queue.push_back(envelope);
            self.queued.store(state.queue.len(), Ordering::Release);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl<M: Send, J: Send + 'static> Mailbox<M> for Shared<M, J> {
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
        let job = job.downcast::<J>()?;
        match self.push(Envelope::Companion(*job)) {
            Ok(()) => Ok(()),
            Err(Envelope::Companion(job)) => Err(Box::new(job)),
            // `push` hands back exactly what it was given, a companion.
            Err(_) => Ok(()),
        }
    }

    fn stats(&self) -> Option<Stats> {
        Some(lock(&self.stats).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Wake;

    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }

    #[test]
    fn emptiness_read_without_the_lock_follows_every_post_and_take() {
        let (handle, inbox) = new_handle::<u32, ()>("127.0.0.1:9".parse().unwrap());
        let waker = Waker::from(Arc::new(Noop));
        let mut cx = Context::from_waker(&waker);
        assert!(inbox.is_empty());
        assert!(inbox.try_recv().is_none());
        handle.send(1).unwrap();
        handle.send(2).unwrap();
        assert!(!inbox.is_empty());
        assert!(matches!(inbox.try_recv(), Some(Envelope::Message(1))));
        assert!(!inbox.is_empty(), "one is left");
        assert!(matches!(
            inbox.poll_recv(&mut cx),
            Poll::Ready(Envelope::Message(2))
        ));
        assert!(inbox.is_empty());
        assert!(inbox.poll_recv(&mut cx).is_pending());
        handle.close();
        assert!(matches!(
            inbox.try_recv(),
            Some(Envelope::Control(Control::Close))
        ));
        assert!(inbox.is_empty());
    }

    #[test]
    fn the_mailbox_keeps_its_size() {
        // One per connection, behind an `Arc` (16 bytes more): 184 bytes is glibc's 192-byte
        // chunk; at 192 it took the 208-byte one, and an idle loomwork-tokio connection cost
        // 100-180 bytes more resident memory (echo-load, 5,000 connections).
        let size = std::mem::size_of::<Shared<u64, ()>>();
        assert!(size <= 168, "the mailbox grew to {size} bytes");
    }

    #[test]
    fn a_post_from_another_thread_wakes_a_waiting_task_or_is_found_by_it() {
        let (handle, inbox) = new_handle::<u32, ()>("127.0.0.1:9".parse().unwrap());
        for n in 0..1000 {
            let handle = handle.clone();
            // The post lands before the wait looks, or while it sleeps: either way it is
            // received (a lost wake-up would hang here).
            let poster = std::thread::spawn(move || handle.send(n).unwrap());
            let got = futures_lite::future::block_on(inbox.recv());
            poster.join().unwrap();
            assert!(matches!(got, Envelope::Message(m) if m == n));
            assert!(inbox.is_empty());
        }
    }
}
