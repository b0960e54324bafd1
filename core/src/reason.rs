//! Why a connection ended or an attempt failed: one taxonomy for every runtime (ER-1, ER-2).

use core::fmt;

/// Why a connection ended, or why a connection attempt failed.
///
/// Delivered exactly once per connection, to `Protocol::connection_lost`, and to the factories.
/// Mirrors Twisted's `ConnectionDone` / `ConnectionLost` / `ConnectionAborted` and the
/// `ConnectError` family (Twisted ER-1, ER-2), as data rather than exception classes.
///
/// ```
/// use loomwork::{Reason, Limit};
/// assert!(Reason::Done.is_clean());
/// assert!(!Reason::Reset.is_clean());
/// let r = Reason::LimitExceeded { limit: Limit::FrameLength, max: 16_384, seen: 20_000 };
/// assert_eq!(r.to_string(), "frame length limit exceeded: 20000 > 16384");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// Closed cleanly: we called `lose_connection` and everything was flushed, or the peer
    /// closed its side cleanly (Twisted `ConnectionDone`).
    Done,
    /// Lost for an unspecified reason (Twisted `ConnectionLost`).
    Lost,
    /// The peer reset the connection (ECONNRESET, EPIPE).
    Reset,
    /// We aborted the connection (`abort_connection`; Twisted `ConnectionAborted`).
    Aborted,
    /// The peer refused the connection attempt (ECONNREFUSED; for datagrams an ICMP
    /// port-unreachable).
    Refused,
    /// No route to the host or network (ENETUNREACH, EHOSTUNREACH).
    Unreachable,
    /// A deadline passed.
    TimedOut(Timeout),
    /// A configured limit was exceeded; only the offending connection is closed.
    LimitExceeded {
        /// Which limit.
        limit: Limit,
        /// The configured maximum.
        max: usize,
        /// The size that was seen or requested.
        seen: usize,
    },
    /// The peer sent bytes that violate the protocol (a malformed frame, say).
    Protocol(ProtocolError),
    /// The factory refused to build a protocol for this peer.
    Rejected,
    /// A host name could not be resolved.
    Dns,
    /// Any other operating-system error: its kind and raw code, when there is one.
    Io {
        /// A portable classification.
        kind: IoKind,
        /// The raw OS error number (`errno`), if known.
        code: Option<i32>,
    },
}

/// Which deadline passed, inside [`Reason::TimedOut`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Timeout {
    /// A connection attempt took longer than the connect timeout (Twisted FA-3, DF-7).
    Connect,
    /// A graceful close could not flush before its deadline, so the connection was aborted.
    Close,
    /// The connection was idle for longer than its idle timeout (Twisted `TimeoutMixin`).
    Idle,
    /// The operating system reported ETIMEDOUT.
    Os,
}

/// Which configured limit was exceeded, inside [`Reason::LimitExceeded`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// The receive buffer grew past its maximum because the protocol did not consume it.
    ReceiveBuffer,
    /// A write would have pushed the write queue past its hard cap.
    WriteQueue,
    /// A frame (line, netstring, length-prefixed payload) longer than the framer's maximum.
    FrameLength,
    /// A datagram larger than the endpoint accepts.
    DatagramSize,
    /// Too many connections (total or per peer).
    Connections,
}

/// A violation of the wire protocol by the peer: what was wrong, as a static description.
///
/// Framers map their parse errors onto this; applications may use it for their own protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolError {
    /// A short, stable description such as `"netstring: missing comma"`.
    pub message: &'static str,
}

impl ProtocolError {
    /// A protocol error with the given description.
    pub const fn new(message: &'static str) -> Self {
        ProtocolError { message }
    }
}

/// A portable classification of operating-system errors, for [`Reason::Io`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IoKind {
    /// The address is already in use (EADDRINUSE).
    AddrInUse,
    /// The address is not available on this host (EADDRNOTAVAIL).
    AddrNotAvailable,
    /// Permission denied (EACCES, EPERM).
    PermissionDenied,
    /// Invalid input or argument (EINVAL).
    InvalidInput,
    /// A message was too long for the transport (EMSGSIZE).
    MessageTooLong,
    /// The process or system ran out of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM).
    OutOfResources,
    /// The peer's end was closed while writing (EPIPE) or the socket is not connected.
    NotConnected,
    /// Anything else.
    Other,
}

impl Reason {
    /// True for [`Reason::Done`]: an orderly close on either side.
    pub fn is_clean(&self) -> bool {
        matches!(self, Reason::Done)
    }

    /// A protocol error with a static description.
    pub const fn protocol(message: &'static str) -> Self {
        Reason::Protocol(ProtocolError::new(message))
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Done => f.write_str("connection was closed cleanly"),
            Reason::Lost => f.write_str("connection was lost"),
            Reason::Reset => f.write_str("connection was reset by peer"),
            Reason::Aborted => f.write_str("connection was aborted locally"),
            Reason::Refused => f.write_str("connection was refused by other side"),
            Reason::Unreachable => f.write_str("no route to host"),
            Reason::TimedOut(which) => write!(f, "{which}"),
            Reason::LimitExceeded { limit, max, seen } => {
                write!(f, "{limit} limit exceeded: {seen} > {max}")
            }
            Reason::Protocol(err) => write!(f, "protocol error: {err}"),
            Reason::Rejected => f.write_str("connection was refused by the factory"),
            Reason::Dns => f.write_str("DNS lookup failed"),
            Reason::Io {
                kind,
                code: Some(code),
            } => write!(f, "{kind} (os error {code})"),
            Reason::Io { kind, code: None } => write!(f, "{kind}"),
        }
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Connect => "connection attempt timed out",
            Timeout::Close => "graceful close timed out; connection aborted",
            Timeout::Idle => "connection timed out after being idle",
            Timeout::Os => "connection timed out",
        })
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Limit::ReceiveBuffer => "receive buffer",
            Limit::WriteQueue => "write queue",
            Limit::FrameLength => "frame length",
            Limit::DatagramSize => "datagram size",
            Limit::Connections => "connection",
        })
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoKind::AddrInUse => "address in use",
            IoKind::AddrNotAvailable => "address not available",
            IoKind::PermissionDenied => "permission denied",
            IoKind::InvalidInput => "invalid input",
            IoKind::MessageTooLong => "message too long",
            IoKind::OutOfResources => "out of resources",
            IoKind::NotConnected => "not connected",
            IoKind::Other => "I/O error",
        })
    }
}

impl core::error::Error for Reason {}
impl core::error::Error for ProtocolError {}
