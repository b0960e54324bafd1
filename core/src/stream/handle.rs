//! Connection handles: how the rest of a program reaches a connection (docs/architecture.md §10).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::fmt;
use core::net::SocketAddr;

use crate::stream::Stats;

/// A request from a [`Handle`] to end its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Control {
    /// Close gracefully, as `lose_connection` would.
    Close,
    /// Abort, as `abort_connection` would.
    Abort,
}

/// The runtime's side of a [`Handle`]: queues work for the connection's driver and wakes it.
///
/// Runtimes implement this (a channel plus a wake-up); users do not need to.
pub trait Mailbox<M>: Send + Sync {
    /// Queues a message for `Protocol::message`; gives it back if the connection is gone.
    fn post(&self, message: M) -> Result<(), M>;
    /// Queues a close or abort; false if the connection is gone.
    fn control(&self, control: Control) -> bool;

    /// The connection's latest traffic counters, if the runtime publishes them (it copies
    /// [`Connection::stats`](crate::stream::Connection::stats) here as its loop runs, at the
    /// latest before the loop sleeps or yields, and when the connection ends). The default
    /// publishes nothing.
    fn stats(&self) -> Option<Stats> {
        None
    }

    /// Takes `job` to run in the connection's own task or thread beside it, until the job
    /// ends; see [`Handle::attach`]. Gives it back when the runtime does not know the job's
    /// type or the connection has ended. The default takes nothing.
    fn attach(&self, job: Box<dyn Any + Send>) -> Result<(), Box<dyn Any + Send>> {
        Err(job)
    }
}

/// A cloneable, thread-safe handle to one connection, for posting messages to it from anywhere
/// (a chat room's broadcast, a proxy's other leg).
///
/// Runtimes give each connection its handle; the protocol reads it with
/// [`Transport::handle`](crate::stream::Transport::handle). Messages arrive in
/// `Protocol::message`, in the order they were sent from any one thread.
pub struct Handle<M> {
    id: u64,
    peer: SocketAddr,
    mailbox: Arc<dyn Mailbox<M>>,
}

impl<M> Handle<M> {
    /// A handle for connection `id` to `peer`, delivering through `mailbox`.
    pub fn new(id: u64, peer: SocketAddr, mailbox: Arc<dyn Mailbox<M>>) -> Self {
        Handle { id, peer, mailbox }
    }

    /// Posts a message; gives it back if the connection has ended.
    pub fn send(&self, message: M) -> Result<(), M> {
        self.mailbox.post(message)
    }

    /// Asks the connection to close gracefully; false if it has already ended.
    pub fn close(&self) -> bool {
        self.mailbox.control(Control::Close)
    }

    /// Asks the connection to abort; false if it has already ended.
    pub fn abort(&self) -> bool {
        self.mailbox.control(Control::Abort)
    }

    /// The connection's traffic counters as its runtime last published them (at the latest
    /// when its loop last slept or yielded: bytes and frames in and out, time paused and
    /// throttled); `None` if the runtime does not publish them.
    pub fn stats(&self) -> Option<Stats> {
        self.mailbox.stats()
    }

    /// Asks the connection's runtime to run `job` in the connection's own task or thread,
    /// beside the connection, until the job ends (after the connection, if need be); gives it
    /// back when the runtime cannot.
    ///
    /// `job` is of a type the runtime defines (a second connection to drive, as a relay's
    /// upstream leg), so its two connections share one task: what one reads reaches the other
    /// without waking another thread. Runtimes that do not know the type, and connections
    /// that have ended, give it back; the caller then runs it some other way.
    pub fn attach(&self, job: Box<dyn Any + Send>) -> Result<(), Box<dyn Any + Send>> {
        self.mailbox.attach(job)
    }

    /// A number unique among the runtime's live connections.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The peer's address.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }
}

impl<M> Clone for Handle<M> {
    fn clone(&self) -> Self {
        Handle {
            id: self.id,
            peer: self.peer,
            mailbox: Arc::clone(&self.mailbox),
        }
    }
}

impl<M> fmt::Debug for Handle<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("id", &self.id)
            .field("peer", &self.peer)
            .finish()
    }
}

impl<M> PartialEq for Handle<M> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id && Arc::ptr_eq(&self.mailbox, &other.mailbox)
    }
}

impl<M> Eq for Handle<M> {}
