//! A task's pending waits for its socket's readiness, kept from one wait to the next.
//!
//! async-io registers a socket one-shot: each wait for readiness re-arms it with `epoll_ctl`.
//! A `Readable` or `Writable` future that is dropped before it resolves (because the task woke
//! for something else: a message, its timer) takes its registration with it, and the next
//! wait would pay to re-arm a socket that was still armed. Kept here, a wait lives until it
//! resolves, however many times the task wakes for other reasons meanwhile.

use std::future::Future;
use std::io;
use std::task::{Context, Poll};

use async_io::{Async, Readable, Writable};
use futures_lite::FutureExt;

/// The readiness waits in progress on one socket, one per direction.
pub(crate) struct PendingWaits<'a, T> {
    socket: &'a Async<T>,
    readable: Option<Readable<'a, T>>,
    writable: Option<Writable<'a, T>>,
}

impl<'a, T> PendingWaits<'a, T> {
    /// No wait in progress yet on `socket`.
    pub(crate) fn new(socket: &'a Async<T>) -> Self {
        PendingWaits {
            socket,
            readable: None,
            writable: None,
        }
    }

    /// Ready once the socket is readable (or has failed); the wait in progress, if any, is
    /// the one polled, and it is forgotten once it resolves.
    pub(crate) fn poll_readable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = self.socket;
        poll_kept(&mut self.readable, || socket.readable(), cx)
    }

    /// As [`poll_readable`](Self::poll_readable), for writability.
    pub(crate) fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let socket = self.socket;
        poll_kept(&mut self.writable, || socket.writable(), cx)
    }
}

/// Polls the wait in `slot`, starting one with `start` if there is none, and empties the slot
/// once the wait resolves.
fn poll_kept<W: Future + Unpin>(
    slot: &mut Option<W>,
    start: impl FnOnce() -> W,
    cx: &mut Context<'_>,
) -> Poll<W::Output> {
    let ready = std::task::ready!(slot.get_or_insert_with(start).poll(cx));
    *slot = None;
    Poll::Ready(ready)
}
