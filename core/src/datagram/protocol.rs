//! The `DatagramProtocol` trait: what a user writes, one instance per endpoint (Twisted UD-2).

use core::net::SocketAddr;

use bytes::Bytes;

use crate::datagram::{Command, DatagramTransport};
use crate::reason::Reason;
use crate::timer::TimerId;

/// A datagram protocol: a plain state machine that reacts to datagrams and socket events.
///
/// The driver ([`Endpoint`](crate::datagram::Endpoint)) guarantees the Twisted lifecycle
/// (UD-2): `start_protocol` first, then any number of the other callbacks, then `stop_protocol`
/// exactly once, last. Every callback but `stop_protocol` gets a [`DatagramTransport`] to send,
/// connect, join groups and set timers through.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::datagram::{DatagramProtocol, DatagramTransport};
///
/// /// The seed's connected `Helloer`.
/// struct Helloer { peer: std::net::SocketAddr, refused: bool }
///
/// impl DatagramProtocol for Helloer {
///     type Message = ();
///     fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
///         tx.connect(self.peer).unwrap();
///         tx.send(&b"hello"[..]).unwrap();
///     }
///     fn datagram_received(
///         &mut self, data: Bytes, from: std::net::SocketAddr, _truncated: bool,
///         tx: &mut DatagramTransport<'_>,
///     ) {
///         println!("received {data:?} from {from}");
///         tx.close();
///     }
///     fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
///         self.refused = true; // "No one listening"; unlike Twisted on epoll, the socket lives
///         tx.close();
///     }
/// }
/// ```
pub trait DatagramProtocol {
    /// What other parts of the program can post to this endpoint through a runtime's handle.
    /// Use `()` when unused.
    type Message;

    /// The socket is bound; the transport is ready (Twisted `startProtocol`).
    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        let _ = tx;
    }

    /// A datagram arrived from `from` (Twisted `datagramReceived`). Zero-length datagrams are
    /// delivered too (UD-3).
    ///
    /// `truncated` is true when the datagram was longer than the runtime's receive size
    /// ([`Config::receive_size`](crate::datagram::Config::receive_size)) and `data` holds only
    /// its beginning; Twisted passes such datagrams off as whole (KW-6).
    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    );

    /// On a connected endpoint, the peer answered an earlier datagram with an ICMP
    /// port-unreachable (Twisted CU-3). The endpoint stays open, whatever the platform (KW-7).
    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        let _ = tx;
    }

    /// The operating system refused a datagram (EMSGSIZE, unreachable, no buffer space, ...).
    /// `to` is the destination, `None` for the connected peer. Never fatal: the endpoint goes
    /// on. The default ignores it, as UDP loses datagrams anyway.
    fn send_failed(
        &mut self,
        to: Option<SocketAddr>,
        reason: &Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        let _ = (to, reason, tx);
    }

    /// The operating system refused a socket command (a join, say: Twisted
    /// `MulticastJoinError`). Never fatal.
    fn command_failed(
        &mut self,
        command: &Command,
        reason: &Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        let _ = (command, reason, tx);
    }

    /// A timer set with [`DatagramTransport::call_later`] or [`DatagramTransport::call_at`] is
    /// due.
    fn timer_fired(&mut self, timer: TimerId, tx: &mut DatagramTransport<'_>) {
        let _ = (timer, tx);
    }

    /// A message posted through the runtime's endpoint handle.
    fn message(&mut self, message: Self::Message, tx: &mut DatagramTransport<'_>) {
        let _ = (message, tx);
    }

    /// The endpoint is over (Twisted `stopProtocol`); called exactly once, last. `reason` is
    /// [`Reason::Done`] after a close.
    fn stop_protocol(&mut self, reason: &Reason) {
        let _ = reason;
    }
}
