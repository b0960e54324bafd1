//! Futures an async runtime polls beside a connection, in the connection's own task (a relay's
//! upstream leg, attached through
//! [`Handle::attach`](loomwork::stream::Handle::attach)): the part of loomwork-smol's and
//! loomwork-tokio's companions that does not depend on the executor.
//!
//! Each runtime keeps its own job type for `attach` (a tokio future polled on smol would find
//! no tokio reactor), and hands the futures it accepts to a [`Companions`].

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use atomic_waker::AtomicWaker;

/// A future polled beside a connection until it finishes.
pub type CompanionFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Boxes `future` as a companion, its output dropped when it finishes.
///
/// The future gets a box of its own, and the adapter that drops the output holds only that
/// box: an `async` block that awaits a future it captured keeps room for it twice (the capture
/// and the value being awaited), which made every relay 3 KB larger.
pub fn boxed<F>(future: F) -> CompanionFuture
where
    F: Future + Send + 'static,
{
    let inner = Box::pin(future);
    Box::pin(async move {
        inner.await;
    })
}

/// The companions of one connection task (almost always none or one).
///
/// Each companion is polled with a waker of its own, which marks it woken and then wakes the
/// task: the task polls a companion only once something woke it (its socket, its mailbox, its
/// timer), as often as it likes to ask ([`turn`](Self::turn) on every round,
/// [`poll_all`](Self::poll_all) while it waits). Polling one that nothing woke would only
/// poll its waits again to find them still pending (a relay's upstream leg has a socket wait,
/// a mailbox and a timer to look at each time).
///
/// ```
/// use loomwork_net::companions::Companions;
///
/// let mut companions = Companions::default();
/// companions.push(Box::pin(async {}));
/// futures_lite::future::block_on(companions.finish());
/// assert!(companions.is_empty());
/// ```
#[derive(Default)]
pub struct Companions(Vec<Companion>);

/// One companion and the waker it is polled with.
struct Companion {
    future: CompanionFuture,
    /// Its mark and the task's waker slot, read on every turn.
    wake: Arc<CompanionWake>,
    /// `wake` as a `Waker`, made once: made per poll it would cost two reference-count
    /// updates each time (a `Waker` gives no way back to the `Arc` inside without `unsafe`).
    waker: Waker,
}

/// What a companion's waker does: marks it woken, then wakes the task it runs in.
struct CompanionWake {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for CompanionWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Release: what the waker's caller did (queueing a message) is seen by the poll this
        // mark leads to (the swap in `poll_all`).
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Companions {
    /// Adds a companion; its first poll comes with the task's next turn.
    pub fn push(&mut self, companion: CompanionFuture) {
        let wake = Arc::new(CompanionWake {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&wake));
        self.0.push(Companion {
            future: companion,
            wake,
            waker,
        });
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Polls each companion that was woken since its last poll (with its own waker; `cx`'s
    /// waker is the one it wakes in turn), drops those that finished, and says whether any
    /// did.
    pub fn poll_all(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.0.len();
        self.0.retain_mut(|companion| {
            // Registered before the mark is read: a wake-up after the read wakes `cx`.
            companion.wake.task.register(cx.waker());
            if !companion.wake.woken.swap(false, Ordering::AcqRel) {
                return true;
            }
            let mut own = Context::from_waker(&companion.waker);
            companion.future.as_mut().poll(&mut own).is_pending()
        });
        self.0.len() != before
    }

    /// Gives each companion that was woken a turn now, in the calling task.
    pub async fn turn(&mut self) {
        if !self.is_empty() {
            poll_fn(|cx| {
                self.poll_all(cx);
                Poll::Ready(())
            })
            .await;
        }
    }

    /// Resolves when a companion finishes; never, while there are none.
    pub async fn any_finished(&mut self) {
        poll_fn(|cx| {
            if !self.is_empty() && self.poll_all(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    /// Runs the companions to their end (after the connection has ended: a relay's other leg
    /// still has to hear it and close).
    pub async fn finish(&mut self) {
        poll_fn(|cx| {
            self.poll_all(cx);
            if self.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }
}

impl std::fmt::Debug for Companions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Companions")
            .field("count", &self.0.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Mutex;

    /// A waker that counts its wake-ups: the task's.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A companion that counts its polls, keeps the waker it was polled with, and finishes
    /// once `done` is set.
    #[derive(Default)]
    struct Probe {
        polls: AtomicUsize,
        waker: Mutex<Option<Waker>>,
        done: AtomicBool,
    }

    impl Probe {
        fn companion(probe: &Arc<Self>) -> CompanionFuture {
            let probe = Arc::clone(probe);
            Box::pin(poll_fn(move |cx| {
                probe.polls.fetch_add(1, Ordering::SeqCst);
                *probe.waker.lock().unwrap() = Some(cx.waker().clone());
                if probe.done.load(Ordering::SeqCst) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            }))
        }

        fn polls(&self) -> usize {
            self.polls.load(Ordering::SeqCst)
        }

        fn wake(&self) {
            self.waker.lock().unwrap().take().unwrap().wake();
        }
    }

    #[test]
    fn a_companion_is_polled_once_added_then_only_when_woken() {
        let task = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&waker);
        let probe = Arc::new(Probe::default());
        let mut companions = Companions::default();
        companions.push(Probe::companion(&probe));

        assert!(!companions.poll_all(&mut cx));
        assert_eq!(probe.polls(), 1, "a new companion gets its first poll");
        for _ in 0..3 {
            assert!(!companions.poll_all(&mut cx));
        }
        assert_eq!(probe.polls(), 1, "nothing woke it: not polled again");

        // Its own waker marks it and wakes the task.
        probe.wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1);
        assert!(!companions.poll_all(&mut cx));
        assert_eq!(probe.polls(), 2);

        // Woken again, it finishes: poll_all says so and drops it.
        probe.done.store(true, Ordering::SeqCst);
        probe.wake();
        assert!(companions.poll_all(&mut cx));
        assert!(companions.is_empty());
        assert_eq!(probe.polls(), 3);
    }

    #[test]
    fn a_wake_up_between_polls_reaches_the_latest_task_waker() {
        let first = Arc::new(Wakes::default());
        let second = Arc::new(Wakes::default());
        let probe = Arc::new(Probe::default());
        let mut companions = Companions::default();
        companions.push(Probe::companion(&probe));
        companions.poll_all(&mut Context::from_waker(&Waker::from(Arc::clone(&first))));
        // The task is polled with another waker now (as some executors do).
        companions.poll_all(&mut Context::from_waker(&Waker::from(Arc::clone(&second))));
        probe.wake();
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_boxed_companion_holds_its_future_once() {
        let big = [7u8; 4096];
        let future = async move {
            std::future::ready(()).await;
            big.len()
        };
        assert!(std::mem::size_of_val(&future) >= 4096);
        let companion = boxed(future);
        // The adapter holds a pointer to the future's own box, not a second copy of it.
        let adapter = std::mem::size_of_val(&*companion);
        assert!(adapter <= 64, "the adapter is {adapter} bytes");
        let mut companions = Companions::default();
        companions.push(companion);
        futures_lite::future::block_on(companions.finish());
        assert!(companions.is_empty());
    }
}
