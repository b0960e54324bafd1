//! `DatagramOp`: one thing that happens to an endpoint under check: a peer's datagram arrives,
//! a send or a socket command fails, time passes, the socket stops taking sends, a handle
//! posts, closes or aborts, the socket fails.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::reason::Reason;

/// One operation of a schedule that a [`DatagramCheck`](super::DatagramCheck) runs against an
/// endpoint: the fuzz driver decodes a sequence of these from the fuzzer's bytes, the proptest
/// strategies ([`datagram_schedule`](crate::testing::properties::datagram_schedule), feature
/// `proptest`) generate them, and a test can write one by hand for
/// [`DatagramCheck::run`](super::DatagramCheck::run).
///
/// `peer` picks one of four peers, modulo four (so any number is valid); their addresses are
/// [`DatagramCheck::peer_address`](super::DatagramCheck::peer_address). The session carries out
/// the endpoint's outputs as the runtimes do: the socket takes every send as soon as it is
/// queued unless told otherwise ([`DatagramOp::Writable`]), when the datagram in hand waits
/// and the endpoint's queue fills behind it; socket commands and the final close never wait,
/// and every command succeeds unless failed with [`DatagramOp::CommandFailed`].
#[derive(Clone, PartialEq, Eq)]
pub enum DatagramOp<M> {
    /// A datagram from the peer arrives (dropped by the endpoint if it is connected to
    /// somebody else).
    Send {
        /// Which peer.
        peer: usize,
        /// The datagram, or its beginning when `truncated`.
        data: Vec<u8>,
        /// The datagram was longer than the receive size and `data` is its beginning.
        truncated: bool,
    },
    /// The operating system reports a failed send (see
    /// [`Endpoint::handle_send_error`](crate::datagram::Endpoint::handle_send_error)): to the
    /// peer `to`, or with `to: None` to the connected peer, where a [`Reason::Refused`] is an
    /// ICMP port-unreachable (`connection_refused`).
    SendFailed {
        /// Which peer the failed datagram was for; `None`: the connected peer.
        to: Option<usize>,
        /// Why it failed.
        reason: Reason,
    },
    /// The next socket command the endpoint gives fails with `reason` (one command only).
    CommandFailed {
        /// Why it failed.
        reason: Reason,
    },
    /// The socket takes sends from now on (`true`), or takes none at all (`false`): a full
    /// socket buffer, and the endpoint's queue filling behind it.
    Writable {
        /// Whether the socket takes sends.
        on: bool,
    },
    /// The socket takes at most `max` sends, once, though it is not writable: a send buffer
    /// that drains a little.
    Drain {
        /// How many outputs it takes at most.
        max: usize,
    },
    /// The clock moves forward by this much, firing every deadline on the way at its time.
    Advance(Duration),
    /// The clock jumps to the endpoint's next deadline and fires it.
    NextDeadline,
    /// A message posted through the endpoint's handle.
    Post {
        /// The message.
        message: M,
    },
    /// A graceful close asked from outside, as an endpoint's owner stopping it does.
    Close,
    /// An abort asked from outside.
    Abort,
    /// The socket fails for good (see
    /// [`Endpoint::handle_error`](crate::datagram::Endpoint::handle_error)).
    SocketFailed {
        /// Why.
        reason: Reason,
    },
}

impl<M: fmt::Debug> DatagramOp<M> {
    /// The operation for a trace: itself without a message, or, if it carries one, its text.
    pub(crate) fn traced(
        &self,
    ) -> Result<DatagramOp<core::convert::Infallible>, alloc::string::String> {
        Ok(match self {
            DatagramOp::Send {
                peer,
                data,
                truncated,
            } => DatagramOp::Send {
                peer: *peer,
                data: data.clone(),
                truncated: *truncated,
            },
            DatagramOp::SendFailed { to, reason } => DatagramOp::SendFailed {
                to: *to,
                reason: reason.clone(),
            },
            DatagramOp::CommandFailed { reason } => DatagramOp::CommandFailed {
                reason: reason.clone(),
            },
            DatagramOp::Writable { on } => DatagramOp::Writable { on: *on },
            DatagramOp::Drain { max } => DatagramOp::Drain { max: *max },
            DatagramOp::Advance(by) => DatagramOp::Advance(*by),
            DatagramOp::NextDeadline => DatagramOp::NextDeadline,
            DatagramOp::Post { .. } => return Err(alloc::format!("{self:?}")),
            DatagramOp::Close => DatagramOp::Close,
            DatagramOp::Abort => DatagramOp::Abort,
            DatagramOp::SocketFailed { reason } => DatagramOp::SocketFailed {
                reason: reason.clone(),
            },
        })
    }
}

impl<M: fmt::Debug> fmt::Debug for DatagramOp<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatagramOp::Send {
                peer,
                data,
                truncated,
            } => {
                write!(f, "Send {{ peer: {peer}, data: b\"")?;
                for &byte in data {
                    write!(f, "{}", core::ascii::escape_default(byte))?;
                }
                write!(f, "\", truncated: {truncated} }}")
            }
            DatagramOp::SendFailed { to, reason } => {
                write!(f, "SendFailed {{ to: {to:?}, reason: {reason:?} }}")
            }
            DatagramOp::CommandFailed { reason } => {
                write!(f, "CommandFailed {{ reason: {reason:?} }}")
            }
            DatagramOp::Writable { on } => write!(f, "Writable {{ on: {on} }}"),
            DatagramOp::Drain { max } => write!(f, "Drain {{ max: {max} }}"),
            DatagramOp::Advance(by) => write!(f, "Advance({by:?})"),
            DatagramOp::NextDeadline => f.write_str("NextDeadline"),
            DatagramOp::Post { message } => write!(f, "Post {{ message: {message:?} }}"),
            DatagramOp::Close => f.write_str("Close"),
            DatagramOp::Abort => f.write_str("Abort"),
            DatagramOp::SocketFailed { reason } => {
                write!(f, "SocketFailed {{ reason: {reason:?} }}")
            }
        }
    }
}
