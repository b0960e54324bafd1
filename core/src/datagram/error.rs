//! Per-operation errors of a datagram transport, kept apart from the [`Reason`] taxonomy.
//!
//! [`Reason`]: crate::Reason

use core::fmt;
use core::net::{IpAddr, SocketAddr};

/// Why a send was refused before it reached the operating system. Nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The endpoint is closing or closed.
    Closed,
    /// `send` without an address, but the endpoint is not connected.
    NotConnected,
    /// `send_to` an address other than the connected peer (Twisted CU-2 asserts).
    WrongPeer {
        /// The connected peer.
        peer: SocketAddr,
        /// The address asked for.
        to: SocketAddr,
    },
    /// The address's family differs from the socket's (Twisted UD-6 `InvalidAddressError`).
    FamilyMismatch {
        /// Our socket's address.
        local: SocketAddr,
        /// The address asked for.
        to: SocketAddr,
    },
    /// The datagram is larger than UDP allows or the endpoint's configured maximum (Twisted
    /// `MessageLengthError`).
    TooLarge {
        /// The datagram's length.
        len: usize,
        /// The largest length allowed to that destination.
        max: usize,
    },
    /// The output queue is full; the runtime has not caught up.
    QueueFull {
        /// Outputs waiting.
        queued: usize,
        /// Payload bytes waiting.
        queued_bytes: usize,
    },
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed => f.write_str("send on a closed endpoint"),
            SendError::NotConnected => {
                f.write_str("send without an address on an unconnected endpoint")
            }
            SendError::WrongPeer { peer, to } => {
                write!(f, "endpoint is connected to {peer}; cannot send to {to}")
            }
            SendError::FamilyMismatch { local, to } => {
                write!(
                    f,
                    "address family of {to} does not match the socket's ({local})"
                )
            }
            SendError::TooLarge { len, max } => {
                write!(f, "datagram of {len} bytes exceeds the maximum of {max}")
            }
            SendError::QueueFull {
                queued,
                queued_bytes,
            } => write!(
                f,
                "send queue full: {queued} outputs and {queued_bytes} bytes waiting"
            ),
        }
    }
}

impl core::error::Error for SendError {}

/// Why a socket command was refused before it reached the operating system. Failures the
/// operating system reports later arrive in `DatagramProtocol::command_failed` instead.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CommandError {
    /// The endpoint is closing or closed.
    Closed,
    /// The address is not a multicast group.
    NotMulticast(IpAddr),
    /// The address's family differs from the socket's.
    FamilyMismatch {
        /// Our socket's address.
        local: SocketAddr,
        /// The address asked for.
        addr: IpAddr,
    },
    /// An IPv4 interface address was given for an IPv6 operation, which names interfaces by
    /// index only.
    InterfaceFamily,
    /// Not a usable peer: the unspecified address or port 0.
    InvalidPeer(SocketAddr),
    /// The output queue is full.
    QueueFull,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Closed => f.write_str("command on a closed endpoint"),
            CommandError::NotMulticast(addr) => write!(f, "{addr} is not a multicast group"),
            CommandError::FamilyMismatch { local, addr } => {
                write!(
                    f,
                    "address family of {addr} does not match the socket's ({local})"
                )
            }
            CommandError::InterfaceFamily => {
                f.write_str("IPv6 multicast names interfaces by index, not by IPv4 address")
            }
            CommandError::InvalidPeer(addr) => write!(f, "{addr} is not a usable peer address"),
            CommandError::QueueFull => f.write_str("output queue full"),
        }
    }
}

impl core::error::Error for CommandError {}
