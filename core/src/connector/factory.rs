//! Client factories: build the protocol once connected and decide whether to try again
//! (Twisted `ClientFactory`, FA-1).

use core::net::SocketAddr;
use core::time::Duration;

use crate::reason::Reason;
use crate::stream::Protocol;

/// What a [`ClientFactory`] wants after an attempt failed or a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Stop: the connector is finished.
    Stop,
    /// Try again after the connector's [`Backoff`](crate::connector::Backoff) delay (Twisted
    /// `ReconnectingClientFactory`); stops once its `max_retries` are used up.
    Backoff,
    /// Try again after exactly this delay.
    After(Duration),
}

/// The client side's factory: hears about attempts and answers every failure with a [`Retry`].
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::{Reason, connector::{ClientFactory, Retry}};
/// use loomwork::stream::{Protocol, Transport};
///
/// struct Pinger;
/// impl Protocol for Pinger {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) { let _ = tx.write_slice(b"ping"); }
///     fn data_received(&mut self, d: &mut BytesMut, _: &mut Transport<'_>) { d.clear(); }
/// }
///
/// /// Twisted's ReconnectingClientFactory: always come back.
/// struct KeepTrying;
/// impl ClientFactory for KeepTrying {
///     type Protocol = Pinger;
///     fn build_protocol(&mut self, _peer: std::net::SocketAddr) -> Option<Pinger> {
///         Some(Pinger)
///     }
///     fn connection_failed(&mut self, _: &Reason) -> Retry { Retry::Backoff }
///     fn connection_lost(&mut self, _: &Reason) -> Retry { Retry::Backoff }
/// }
/// ```
pub trait ClientFactory {
    /// The protocol built once connected.
    type Protocol: Protocol;

    /// An attempt is starting (Twisted `startedConnecting`).
    fn started_connecting(&mut self) {}

    /// The connection to `peer` is up: the protocol to run on it, or `None` to close it.
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol>;

    /// An attempt failed (Twisted `clientConnectionFailed`). Default: stop.
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        let _ = reason;
        Retry::Stop
    }

    /// An established connection ended, after the protocol's `connection_lost` (PR-8;
    /// Twisted `clientConnectionLost`). Default: stop.
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        let _ = reason;
        Retry::Stop
    }
}

/// The message type of the protocol a [`ClientFactory`] builds: what its connection
/// [`Handle`](crate::stream::Handle) carries.
pub type ClientMessage<F> = <<F as ClientFactory>::Protocol as crate::stream::Protocol>::Message;
