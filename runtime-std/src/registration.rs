//! A socket registered with a `polling::Poller`, deregistered before it is closed.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;

use polling::{Event, PollMode, Poller};

/// The only key this runtime uses: every poller watches exactly one socket.
const KEY: usize = 0;

/// Owns a socket and its registration in a [`Poller`].
///
/// `Poller::add` is `unsafe` because the poller must forget a descriptor before it is closed
/// (otherwise a reused descriptor number could be reported for the wrong socket). Owning both
/// here makes that rule structural: `Drop` deletes the registration before the socket field is
/// dropped.
///
/// Oneshot, never level-triggered: epoll reports HUP/ERR even with an empty interest set, so a
/// level registration on a socket in error would wake its thread forever. A registration fires
/// once, then stays quiet until [`arm`](Self::arm) asks again. Used for listeners; connections
/// sleep in [`crate::wait`] instead.
pub(crate) struct Registered<S: AsFd> {
    poller: Arc<Poller>,
    socket: Option<S>,
    /// Armed with this (read, write) interest; `None` once it fired.
    armed: Option<(bool, bool)>,
}

impl<S: AsFd> Registered<S> {
    /// Registers `socket` (which must be non-blocking) in oneshot mode, with no interest yet.
    pub(crate) fn new(poller: Arc<Poller>, socket: S) -> io::Result<Self> {
        add(&poller, &socket, Event::none(KEY), PollMode::Oneshot)?;
        Ok(Registered {
            poller,
            socket: Some(socket),
            armed: Some((false, false)),
        })
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &S {
        // `socket` is `None` only inside `drop`.
        self.socket.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The poller this socket is registered with.
    pub(crate) fn poller(&self) -> &Arc<Poller> {
        &self.poller
    }

    /// Asks for one readiness event for the given interest. Skips the system call when the
    /// registration is already armed with exactly this interest.
    pub(crate) fn arm(&mut self, read: bool, write: bool) -> io::Result<()> {
        if self.armed == Some((read, write)) {
            return Ok(());
        }
        let event = match (read, write) {
            (true, true) => Event::all(KEY),
            (true, false) => Event::readable(KEY),
            (false, true) => Event::writable(KEY),
            (false, false) => Event::none(KEY),
        };
        self.poller.modify(self.socket(), event)?;
        self.armed = Some((read, write));
        Ok(())
    }

    /// Records that an event fired: the registration is disarmed until the next `arm`.
    pub(crate) fn fired(&mut self) {
        self.armed = None;
    }
}

impl<S: AsFd> Drop for Registered<S> {
    fn drop(&mut self) {
        if let Some(socket) = self.socket.take() {
            let _ = self.poller.delete(&socket);
        }
    }
}

#[allow(unsafe_code)]
fn add<S: AsFd>(poller: &Poller, socket: &S, event: Event, mode: PollMode) -> io::Result<()> {
    // SAFETY: `polling` requires the source to be deleted from the poller before it is closed.
    // The only caller, `Registered::new`, moves the socket into a `Registered`, whose `Drop`
    // deletes it before the socket can be closed.
    unsafe { poller.add_with_mode(socket.as_fd().as_raw_fd(), event, mode) }
}
