//! What the two legs of a relay tell each other, and how the client leg asks for an upstream.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::fmt;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::reason::Reason;
use crate::stream::Handle;

/// A message between the two legs of a relay (the [`RelayLeg`](crate::relay::RelayLeg)'s
/// `Protocol::Message`).
pub enum RelayMessage {
    /// The upstream leg is connected; this is its handle (to the client leg).
    Connected(Handle<RelayMessage>),
    /// The upstream attempt failed (to the client leg).
    Failed(Reason),
    /// Bytes the other leg read, to write.
    Data(Bytes),
    /// The other leg queued this many bytes of our `Data`: more may be sent.
    Ack(usize),
    /// The other leg's write queue passed its high-water mark: stop reading.
    Pause,
    /// The other leg's write queue drained to its low-water mark: read again.
    Resume,
    /// The other leg's peer shut down its writing side: shut down ours once flushed.
    Eof,
    /// The other leg is closing gracefully: close gracefully too.
    Close,
    /// The other leg ended with this (unclean) reason: abort.
    Abort(Reason),
}

impl fmt::Debug for RelayMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RelayMessage::Connected(handle) => f.debug_tuple("Connected").field(handle).finish(),
            RelayMessage::Failed(reason) => f.debug_tuple("Failed").field(reason).finish(),
            RelayMessage::Data(data) => f.debug_tuple("Data").field(&data.len()).finish(),
            RelayMessage::Ack(n) => f.debug_tuple("Ack").field(n).finish(),
            RelayMessage::Pause => f.write_str("Pause"),
            RelayMessage::Resume => f.write_str("Resume"),
            RelayMessage::Eof => f.write_str("Eof"),
            RelayMessage::Close => f.write_str("Close"),
            RelayMessage::Abort(reason) => f.debug_tuple("Abort").field(reason).finish(),
        }
    }
}

/// The client leg's request for an upstream connection, handed to a [`Dialer`].
#[derive(Debug)]
pub struct Dial {
    /// The client leg, for the [`UpstreamFactory`](crate::relay::UpstreamFactory).
    pub client: Handle<RelayMessage>,
    /// The client leg's peer, as it sees it (the real client behind a PROXY header).
    pub peer: SocketAddr,
    /// The address the client connected to.
    pub local: SocketAddr,
    /// What the upstream leg writes before any relayed byte (a PROXY header), maybe empty.
    pub preamble: Bytes,
    /// The relay's [`RelayConfig::window`](crate::relay::RelayConfig::window), for the
    /// upstream leg.
    pub window: usize,
}

/// Starts the upstream connection for a [`Dial`]: the runtime's part of a relay.
///
/// It starts a client connection (say `connect_tcp(upstream, UpstreamFactory::new(dial))`,
/// see [`UpstreamFactory`](crate::relay::UpstreamFactory))
/// and returns whatever keeps that attempt alive (the runtime's `Client`); the client leg
/// holds it until it ends, and dropping it cancels an attempt still pending.
///
/// Each runtime offers one (`loomwork_smol::relay_dialer`, and the same name in the other
/// runtimes) that runs the upstream leg in the client leg's own task or thread, attached
/// through [`Handle::attach`](crate::stream::Handle::attach): the legs then pass their bytes
/// without waking another thread.
pub type Dialer = Arc<dyn Fn(Dial) -> Box<dyn Any + Send> + Send + Sync>;
