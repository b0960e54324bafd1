//! Server factories: build one protocol per accepted peer, or refuse it (Twisted PR-2, FA-5).

use core::net::SocketAddr;

use crate::reason::Reason;
use crate::stream::Protocol;

/// Builds a protocol for each accepted connection (Twisted `ServerFactory.buildProtocol`).
///
/// Returning `None` refuses the peer: the runtime closes the socket at once and no protocol
/// callback runs (PR-2). The factory hears when each connection it built has ended, which is
/// what connection-limit wrappers count with.
///
/// Any `FnMut(SocketAddr) -> P` closure is a factory that never refuses:
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::stream::{Protocol, ServerFactory, Transport};
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// let mut factory = |_peer| Echo;
/// assert!(factory.build_protocol("127.0.0.1:9".parse().unwrap()).is_some());
/// ```
pub trait ServerFactory {
    /// The protocol built for each connection.
    type Protocol: Protocol;

    /// A protocol for a connection from `peer`, or `None` to refuse it.
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol>;

    /// A connection built by this factory has ended (after its `connection_lost`).
    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        let _ = (peer, reason);
    }
}

impl<F, P> ServerFactory for F
where
    F: FnMut(SocketAddr) -> P,
    P: Protocol,
{
    type Protocol = P;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<P> {
        Some(self(peer))
    }
}

/// The message type of the protocols a [`ServerFactory`] builds: what their connection
/// [`Handle`](crate::stream::Handle)s carry.
pub type ServerMessage<F> = <<F as ServerFactory>::Protocol as Protocol>::Message;
