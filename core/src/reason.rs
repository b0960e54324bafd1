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
    /// A TLS layer (crate `loomwork-tls`) failed: a refused handshake (certificate, cipher
    /// suites), a peer that broke the record protocol, or a stream truncated without
    /// `close_notify`. Which, as a kind, and whether the peer reported it with an alert.
    Tls(TlsError),
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
    /// A security handshake (TLS) did not complete in time: a peer that stalls mid-handshake
    /// is evicted rather than holding its connection forever.
    Handshake,
    /// A PROXY protocol header did not arrive whole in time (see
    /// [`AcceptProxy`](crate::proxy::AcceptProxy)): a slow or silent peer is evicted.
    ProxyHeader,
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

/// Why a TLS layer ended a connection, inside [`Reason::Tls`].
///
/// The kinds are what a program decides on (retry, alert an operator, blame the peer);
/// the TLS library's full error stays available from the TLS layer itself.
///
/// ```
/// use loomwork::{Reason, TlsError, TlsErrorKind};
/// let ours = Reason::Tls(TlsError::local(TlsErrorKind::UnknownIssuer));
/// let theirs = Reason::Tls(TlsError::from_peer(TlsErrorKind::UnknownIssuer));
/// assert_ne!(ours, theirs);
/// assert_eq!(
///     theirs.to_string(),
///     "TLS: certificate issued by an unknown CA (reported by the peer)"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TlsError {
    /// What went wrong.
    pub kind: TlsErrorKind,
    /// True when the peer reported it with a fatal alert (it refused us); false when this
    /// side found it.
    pub by_peer: bool,
}

impl TlsError {
    /// An error this side found.
    pub const fn local(kind: TlsErrorKind) -> Self {
        TlsError {
            kind,
            by_peer: false,
        }
    }

    /// An error the peer reported with an alert.
    pub const fn from_peer(kind: TlsErrorKind) -> Self {
        TlsError {
            kind,
            by_peer: true,
        }
    }
}

/// What went wrong in a TLS layer, inside [`TlsError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsErrorKind {
    /// The certificate does not chain to a trusted certificate authority.
    UnknownIssuer,
    /// The certificate has expired or is not valid yet.
    CertificateExpired,
    /// The certificate is not valid for the name that was asked for.
    CertificateNameMismatch,
    /// The certificate was revoked.
    CertificateRevoked,
    /// Any other problem with a certificate (bad encoding, bad signature, wrong usage).
    BadCertificate,
    /// A certificate was required and none was presented (mutual TLS).
    CertificateRequired,
    /// The two sides share no protocol version, cipher suite, group or other parameter.
    NoSharedParameters,
    /// The peer broke the TLS protocol: malformed or unexpected records, bad encryption.
    PeerMisbehaved,
    /// The peer ended the stream (EOF) without `close_notify`: what arrived may be cut short.
    Truncated,
    /// Anything else.
    Other,
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
            Reason::Tls(err) => write!(f, "{err}"),
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
            Timeout::Handshake => "TLS handshake timed out",
            Timeout::ProxyHeader => "PROXY protocol header timed out",
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

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS: {}", self.kind)?;
        if self.by_peer {
            f.write_str(" (reported by the peer)")?;
        }
        Ok(())
    }
}

impl fmt::Display for TlsErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsErrorKind::UnknownIssuer => "certificate issued by an unknown CA",
            TlsErrorKind::CertificateExpired => "certificate expired or not yet valid",
            TlsErrorKind::CertificateNameMismatch => "certificate not valid for the name",
            TlsErrorKind::CertificateRevoked => "certificate revoked",
            TlsErrorKind::BadCertificate => "bad certificate",
            TlsErrorKind::CertificateRequired => "certificate required",
            TlsErrorKind::NoSharedParameters => "no shared protocol version or cipher suite",
            TlsErrorKind::PeerMisbehaved => "peer violated the TLS protocol",
            TlsErrorKind::Truncated => "stream truncated: EOF without close_notify",
            TlsErrorKind::Other => "TLS error",
        })
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
impl core::error::Error for TlsError {}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;

    #[test]
    fn tls_reasons_are_not_clean_and_say_who_found_them() {
        let truncated = Reason::Tls(TlsError::local(TlsErrorKind::Truncated));
        assert!(!truncated.is_clean());
        assert_eq!(
            truncated.to_string(),
            "TLS: stream truncated: EOF without close_notify"
        );
        let refused = Reason::Tls(TlsError::from_peer(TlsErrorKind::CertificateRequired));
        assert!(refused.to_string().ends_with("(reported by the peer)"));
        assert_ne!(
            refused,
            Reason::Tls(TlsError::local(TlsErrorKind::CertificateRequired))
        );
    }

    #[test]
    fn a_handshake_timeout_is_its_own_timeout() {
        let reason = Reason::TimedOut(Timeout::Handshake);
        assert_ne!(reason, Reason::TimedOut(Timeout::Idle));
        assert_eq!(reason.to_string(), "TLS handshake timed out");
    }
}
