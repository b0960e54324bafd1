//! Companions: work that runs in a connection's own task, beside the connection (a relay's
//! upstream leg, attached with [`Handle::attach`](loomwork::stream::Handle::attach)).
//!
//! A relay's two legs in one task hand each other their bytes without waking another task or
//! thread: the upstream leg's read and the client leg's write happen in the same poll.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{Context, Poll};

/// A future the connection's task polls beside the connection until it finishes.
pub(crate) struct Companion(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Companion {
    /// Wraps `future` for [`Handle::attach`](loomwork::stream::Handle::attach).
    pub(crate) fn new(future: impl Future<Output = ()> + Send + 'static) -> Self {
        Companion(Box::pin(future))
    }

    /// The future itself, to spawn when no connection task takes it.
    pub(crate) fn into_future(self) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.0
    }
}

/// The companions of one connection task (almost always none or one).
#[derive(Default)]
pub(crate) struct Companions(Vec<Companion>);

impl Companions {
    pub(crate) fn push(&mut self, companion: Companion) {
        self.0.push(companion);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Polls each companion once, with the task's context; drops those that finished and
    /// says whether any did.
    pub(crate) fn poll_all(&mut self, cx: &mut Context<'_>) -> bool {
        let before = self.0.len();
        self.0
            .retain_mut(|companion| companion.0.as_mut().poll(cx).is_pending());
        self.0.len() != before
    }

    /// Gives each companion a turn now (they share the task's waker, so a wake-up meant for
    /// one of them reaches the task, which cannot tell whose it was).
    pub(crate) async fn turn(&mut self) {
        if !self.is_empty() {
            poll_fn(|cx| {
                self.poll_all(cx);
                Poll::Ready(())
            })
            .await;
        }
    }

    /// Resolves when a companion finishes; never, while there are none.
    pub(crate) async fn any_finished(&mut self) {
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
    pub(crate) async fn finish(&mut self) {
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
