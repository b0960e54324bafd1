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
/// dropped, and [`into_inner`](Self::into_inner) deletes it before giving the socket away.
///
/// Never level-triggered: epoll reports HUP/ERR even with an empty interest set, so a level
/// registration on a paused, reset socket would wake its thread forever. Two modes instead:
/// - oneshot ([`new`](Self::new)): fires once, then stays quiet until [`arm`](Self::arm) asks
///   again; one `epoll_ctl` per wait. For listeners and connection attempts.
/// - edge ([`new_edge`](Self::new_edge)): registered once for both directions, reports each
///   change of readiness, never re-armed. The owner must keep its own readiness flags and only
///   wait after an operation returned `WouldBlock`, which the connection driver does. Saves a
///   system call per wake-up on the busiest path.
pub(crate) struct Registered<S: AsFd> {
    poller: Arc<Poller>,
    socket: Option<S>,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Armed with this (read, write) interest; `None` once it fired.
    Oneshot(Option<(bool, bool)>),
    Edge,
}

impl<S: AsFd> Registered<S> {
    /// Registers `socket` (which must be non-blocking) in oneshot mode, with no interest yet.
    pub(crate) fn new(poller: Arc<Poller>, socket: S) -> io::Result<Self> {
        add(&poller, &socket, Event::none(KEY), PollMode::Oneshot)?;
        Ok(Registered {
            poller,
            socket: Some(socket),
            mode: Mode::Oneshot(Some((false, false))),
        })
    }

    /// Registers `socket` (which must be non-blocking) edge-triggered for both directions,
    /// falling back to oneshot where the poller has no edge mode.
    pub(crate) fn new_edge(poller: Arc<Poller>, socket: S) -> io::Result<Self> {
        if !poller.supports_edge() {
            return Self::new(poller, socket);
        }
        add(&poller, &socket, Event::all(KEY), PollMode::Edge)?;
        Ok(Registered {
            poller,
            socket: Some(socket),
            mode: Mode::Edge,
        })
    }

    /// The socket.
    pub(crate) fn socket(&self) -> &S {
        // `socket` is `None` only inside `into_inner` and `drop`, which consume `self`.
        self.socket.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// The poller this socket is registered with.
    pub(crate) fn poller(&self) -> &Arc<Poller> {
        &self.poller
    }

    /// Asks for one readiness event for the given interest. Skips the system call when the
    /// registration is already armed with exactly this interest, or is edge-triggered.
    pub(crate) fn arm(&mut self, read: bool, write: bool) -> io::Result<()> {
        if matches!(self.mode, Mode::Edge) || self.mode == Mode::Oneshot(Some((read, write))) {
            return Ok(());
        }
        let event = match (read, write) {
            (true, true) => Event::all(KEY),
            (true, false) => Event::readable(KEY),
            (false, true) => Event::writable(KEY),
            (false, false) => Event::none(KEY),
        };
        self.poller.modify(self.socket(), event)?;
        self.mode = Mode::Oneshot(Some((read, write)));
        Ok(())
    }

    /// Records that an event fired: a oneshot registration is disarmed until the next `arm`.
    pub(crate) fn fired(&mut self) {
        if let Mode::Oneshot(armed) = &mut self.mode {
            *armed = None;
        }
    }

    /// Deregisters and returns the socket.
    pub(crate) fn into_inner(mut self) -> S {
        let socket = self.socket.take().unwrap_or_else(|| unreachable!());
        let _ = self.poller.delete(&socket);
        socket
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
    // The only callers, `Registered::new` and `new_edge`, move the socket into a `Registered`,
    // whose `Drop` and `into_inner` delete it before the socket can be closed or handed out.
    unsafe { poller.add_with_mode(socket.as_fd().as_raw_fd(), event, mode) }
}
