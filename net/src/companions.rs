//! Futures an async runtime polls beside a connection, in the connection's own task (a relay's
//! upstream leg, attached through
//! [`Handle::attach`](loomwork::stream::Handle::attach)): the part of loomwork-smol's and
//! loomwork-tokio's companions that does not depend on the executor.
//!
//! Each runtime keeps its own job type for `attach` (a tokio future polled on smol would find
//! no tokio reactor), and hands the futures it accepts to a [`Companions`].

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

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
/// They share the task's waker, so a wake-up meant for one of them reaches the task, which
/// cannot tell whose it was: the task gives each a turn on every round ([`turn`](Self::turn))
/// and while it waits ([`poll_all`](Self::poll_all)).
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
pub struct Companions(Vec<CompanionFuture>);

impl Companions {
    /// Adds a companion.
    pub fn push(&mut self, companion: CompanionFuture) {
        self.0.push(companion);
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Polls each companion once with `cx`, drops those that finished, and says whether any
    /// did.
    pub fn poll_all(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.0.len();
        self.0
            .retain_mut(|companion| companion.as_mut().poll(cx).is_pending());
        self.0.len() != before
    }

    /// Gives each companion a turn now, in the calling task.
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
