//! The server's table of live connections: their handles, and a way to wait for them all.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use loomwork::stream::Handle;
use tokio::sync::mpsc::{self, Receiver, Sender};

/// Live connections of one server.
///
/// Completion is tracked with a channel nobody sends on: every connection holds a sender in its
/// [`Ticket`], so once the registry's own sender is retired the receiver reports "closed"
/// exactly when the last connection task has finished, without polling.
pub(crate) struct Registry<M> {
    connections: Mutex<HashMap<u64, Handle<M>>>,
    alive: Mutex<Option<Sender<()>>>,
}

/// A connection's entry in the registry; dropping it (when the task ends, however it ends)
/// removes the entry.
pub(crate) struct Ticket<M> {
    id: u64,
    registry: Arc<Registry<M>>,
    _alive: Option<Sender<()>>,
}

impl<M> Registry<M> {
    /// An empty registry and the receiver that closes once it is retired and empty.
    pub(crate) fn new() -> (Arc<Self>, Receiver<()>) {
        let (alive, all_done) = mpsc::channel(1);
        let registry = Registry {
            connections: Mutex::new(HashMap::new()),
            alive: Mutex::new(Some(alive)),
        };
        (Arc::new(registry), all_done)
    }

    /// Adds a connection; it stays until the returned ticket is dropped.
    pub(crate) fn register(self: &Arc<Self>, handle: Handle<M>) -> Ticket<M> {
        let id = handle.id();
        let alive = lock(&self.alive).clone();
        lock(&self.connections).insert(id, handle);
        Ticket {
            id,
            registry: Arc::clone(self),
            _alive: alive,
        }
    }

    /// No more connections will be registered: the completion receiver may now close.
    pub(crate) fn retire(&self) {
        lock(&self.alive).take();
    }

    /// How many connections are live.
    pub(crate) fn len(&self) -> usize {
        lock(&self.connections).len()
    }

    /// Handles of the live connections.
    pub(crate) fn handles(&self) -> Vec<Handle<M>> {
        lock(&self.connections).values().cloned().collect()
    }
}

impl<M> Ticket<M> {
    /// The connection is over: it stops being listed, though its task (still closing the
    /// socket) keeps a shutdown waiting until the ticket is dropped.
    pub(crate) fn leave(&self) {
        lock(&self.registry.connections).remove(&self.id);
    }
}

impl<M> Drop for Ticket<M> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// The table stays consistent whatever panicked while holding it (inserts and removes are
/// single operations), so a poisoned lock is still good to use.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
