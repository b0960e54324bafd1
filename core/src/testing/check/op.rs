//! `Op`: one thing that happens to a server under check: a peer connects, sends, reads, shuts
//! down, resets; time passes; a handle posts, closes or aborts.

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

/// One operation of a schedule that a [`StreamCheck`](super::StreamCheck) runs against a
/// server: the fuzz driver decodes a sequence of these from the fuzzer's bytes, the proptest
/// strategies ([`schedule`](crate::testing::properties::schedule), feature `proptest`)
/// generate them, and a test can write one by hand for
/// [`StreamCheck::run`](super::StreamCheck::run).
///
/// `conn` picks a connection among those not ended yet, modulo their number (so any number
/// is valid, and a schedule stays meaningful when connections end earlier than it expected);
/// with none left the operation does nothing. Each peer reads everything the server writes
/// unless told otherwise ([`Op::Reading`]).
#[derive(Clone, PartialEq, Eq)]
pub enum Op<M> {
    /// A new peer connects; the factory builds its protocol, or refuses it.
    Connect,
    /// The peer sends `data`, which the connection takes as one read (as soon as it reads).
    Send {
        /// Which connection.
        conn: usize,
        /// The bytes of one read.
        data: Vec<u8>,
    },
    /// The peer shuts down its sending side: the connection reads EOF after what it sent.
    SendEof {
        /// Which connection.
        conn: usize,
    },
    /// The peer reads everything from now on (`true`), or nothing at all (`false`): a full
    /// peer, and the backpressure that follows.
    Reading {
        /// Which connection.
        conn: usize,
        /// Whether the peer reads.
        on: bool,
    },
    /// The peer takes at most `max` bytes of what is written, once: a partial write.
    Read {
        /// Which connection.
        conn: usize,
        /// Bytes it takes at most.
        max: usize,
    },
    /// The clock moves forward by this much, firing every deadline on the way at its time.
    Advance(Duration),
    /// The clock jumps to the earliest deadline of any connection and fires it.
    NextDeadline,
    /// A message posted through the connection's handle.
    Post {
        /// Which connection.
        conn: usize,
        /// The message.
        message: M,
    },
    /// A graceful close asked through the connection's handle, as a server shutdown does.
    Close {
        /// Which connection.
        conn: usize,
    },
    /// An abort asked through the connection's handle.
    Abort {
        /// Which connection.
        conn: usize,
    },
    /// The peer resets the connection: what it sent and the connection has not read is lost.
    Reset {
        /// Which connection.
        conn: usize,
    },
}

impl<M: fmt::Debug> Op<M> {
    /// The operation for a trace: itself without a message, or, if it carries one, its text.
    pub(crate) fn traced(&self) -> Result<Op<core::convert::Infallible>, alloc::string::String> {
        Ok(match self {
            Op::Connect => Op::Connect,
            Op::Send { conn, data } => Op::Send {
                conn: *conn,
                data: data.clone(),
            },
            Op::SendEof { conn } => Op::SendEof { conn: *conn },
            Op::Reading { conn, on } => Op::Reading {
                conn: *conn,
                on: *on,
            },
            Op::Read { conn, max } => Op::Read {
                conn: *conn,
                max: *max,
            },
            Op::Advance(by) => Op::Advance(*by),
            Op::NextDeadline => Op::NextDeadline,
            Op::Post { .. } => return Err(alloc::format!("{self:?}")),
            Op::Close { conn } => Op::Close { conn: *conn },
            Op::Abort { conn } => Op::Abort { conn: *conn },
            Op::Reset { conn } => Op::Reset { conn: *conn },
        })
    }
}

impl<M: fmt::Debug> fmt::Debug for Op<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Connect => f.write_str("Connect"),
            Op::Send { conn, data } => {
                write!(f, "Send {{ conn: {conn}, data: b\"")?;
                for &byte in data {
                    write!(f, "{}", core::ascii::escape_default(byte))?;
                }
                f.write_str("\" }")
            }
            Op::SendEof { conn } => write!(f, "SendEof {{ conn: {conn} }}"),
            Op::Reading { conn, on } => write!(f, "Reading {{ conn: {conn}, on: {on} }}"),
            Op::Read { conn, max } => write!(f, "Read {{ conn: {conn}, max: {max} }}"),
            Op::Advance(by) => write!(f, "Advance({by:?})"),
            Op::NextDeadline => f.write_str("NextDeadline"),
            Op::Post { conn, message } => {
                write!(f, "Post {{ conn: {conn}, message: {message:?} }}")
            }
            Op::Close { conn } => write!(f, "Close {{ conn: {conn} }}"),
            Op::Abort { conn } => write!(f, "Abort {{ conn: {conn} }}"),
            Op::Reset { conn } => write!(f, "Reset {{ conn: {conn} }}"),
        }
    }
}
