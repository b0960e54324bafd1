//! Connection handles: the runtime's side of `loomwork::stream::Handle`, and the inbox the
//! connection's task reads; loomwork-net's async mailbox (`loomwork_net::mailbox`, shared with
//! loomwork-tokio) with this runtime's companion jobs.

use std::net::SocketAddr;

use loomwork::stream::Handle;

use crate::companion::Companion;

/// What a handle can post to its connection's task.
pub(crate) type Envelope<M> = loomwork_net::mailbox::Envelope<M, Companion>;

/// The receiving end, owned by the connection's task; dropping it closes the mailbox.
pub(crate) type Inbox<M> = loomwork_net::mailbox::Inbox<M, Companion>;

/// A fresh handle for a connection to `peer`, and the inbox its task reads.
pub(crate) fn new_handle<M: Send + 'static>(peer: SocketAddr) -> (Handle<M>, Inbox<M>) {
    loomwork_net::mailbox::new_handle(peer)
}
