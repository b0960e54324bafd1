//! The server's table of live connections: loomwork-net's (`loomwork_net::registry`, shared
//! with loomwork-smol), with a tokio channel that closes when the last one has finished.

use std::sync::Arc;

use tokio::sync::mpsc::{self, Receiver, Sender};

/// Live connections of one server.
pub(crate) type Registry<M> = loomwork_net::registry::Registry<M, Sender<()>>;

/// A connection's entry in the registry; dropping it removes the entry.
pub(crate) type Ticket<M> = loomwork_net::registry::Ticket<M, Sender<()>>;

/// An empty registry and the receiver that closes once it is retired and empty.
pub(crate) fn new_registry<M>() -> (Arc<Registry<M>>, Receiver<()>) {
    let (alive, all_done) = mpsc::channel(1);
    (Arc::new(Registry::new(alive)), all_done)
}
