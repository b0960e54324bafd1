//! A server's table of live connections for async runtimes: their handles, and a way to wait
//! for them all. Shared by loomwork-smol and loomwork-tokio, which differ only in the channel
//! that tells a shutdown the last connection has finished.
//!
//! Completion is tracked with a channel nobody sends on: the registry holds a sender (`S`, the
//! runtime's channel sender) and every connection a clone of it in its [`Ticket`], so once the
//! registry's own is [`retire`](Registry::retire)d, the channel's receiver reports "closed"
//! exactly when the last connection task has finished, without polling.
//!
//! ```
//! use std::sync::{mpsc, Arc};
//! use loomwork_net::{mailbox, registry::Registry};
//!
//! let (alive, all_done) = mpsc::sync_channel::<()>(1);
//! let registry = Arc::new(Registry::new(alive));
//! let (handle, _inbox) = mailbox::new_handle::<(), ()>("127.0.0.1:9".parse().unwrap());
//! let ticket = registry.register(handle);
//! registry.retire();
//! assert_eq!(registry.len(), 1);
//! drop(ticket); // the connection's task ended
//! assert!(registry.is_empty());
//! assert!(all_done.recv().is_err(), "every sender is gone");
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loomwork::stream::Handle;

use crate::sync::lock;

/// Live connections of one server; `S` is the sender whose channel closes when they are all
/// gone after [`retire`](Registry::retire).
pub struct Registry<M, S> {
    connections: Mutex<HashMap<u64, Handle<M>>>,
    alive: Mutex<Option<S>>,
}

/// A connection's entry in the registry; dropping it (when the task ends, however it ends)
/// removes the entry and releases its share of the completion channel.
pub struct Ticket<M, S> {
    id: u64,
    registry: Arc<Registry<M, S>>,
    _alive: Option<S>,
}

impl<M, S: Clone> Registry<M, S> {
    /// An empty registry that hands a clone of `alive` to every connection.
    pub fn new(alive: S) -> Self {
        Registry {
            connections: Mutex::new(HashMap::new()),
            alive: Mutex::new(Some(alive)),
        }
    }

    /// Adds a connection; it stays until the returned ticket is dropped.
    pub fn register(self: &Arc<Self>, handle: Handle<M>) -> Ticket<M, S> {
        let id = handle.id();
        let alive = lock(&self.alive).clone();
        lock(&self.connections).insert(id, handle);
        Ticket {
            id,
            registry: Arc::clone(self),
            _alive: alive,
        }
    }
}

impl<M, S> Registry<M, S> {
    /// No more connections will be registered: the completion channel may now close.
    pub fn retire(&self) {
        lock(&self.alive).take();
    }

    /// How many connections are live.
    pub fn len(&self) -> usize {
        lock(&self.connections).len()
    }

    /// True when no connection is live.
    pub fn is_empty(&self) -> bool {
        lock(&self.connections).is_empty()
    }

    /// Handles of the live connections.
    pub fn handles(&self) -> Vec<Handle<M>> {
        lock(&self.connections).values().cloned().collect()
    }
}

impl<M, S> Ticket<M, S> {
    /// The connection is over: it stops being listed, though its task (still closing the
    /// socket) keeps a shutdown waiting until the ticket is dropped. Gives back the handle it
    /// was registered with, the first time (its `peer` is the socket's, whatever the
    /// connection has learned since: a task need not keep a second copy for its factory).
    pub fn leave(&self) -> Option<Handle<M>> {
        lock(&self.registry.connections).remove(&self.id)
    }
}

impl<M, S> Drop for Ticket<M, S> {
    fn drop(&mut self) {
        drop(self.leave());
    }
}
