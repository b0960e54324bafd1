//! Framing receivers: Twisted's `twisted.protocols.basic`, zero-copy and wire-compatible.
//!
//! A framing is a [`Decoder`] (frames out of the receive buffer) and an [`Encoder`] (payloads
//! onto the wire). The built-in ones match Twisted's receivers byte for byte
//! (docs/twisted-behaviour.md §5):
//!
//! | Twisted | loomwork | default maximum |
//! |---|---|---|
//! | `LineReceiver`, `LineOnlyReceiver` | [`LineCodec`] (`\r\n`, any delimiter) | 16,384 |
//! | `NetstringReceiver` | [`NetstringCodec`] | 99,999 |
//! | `Int8/16/32StringReceiver` | [`LengthCodec::int8`] / [`int16`](LengthCodec::int16) / [`int32`](LengthCodec::int32) | 99,999 |
//!
//! [`LengthCodec::builder`] adds the layouts tokio-util and Netty users rely on, and
//! [`AnyCodec`] picks a framing at run time. [`Framed`] turns a [`FrameHandler`] into a stream
//! [`Protocol`](crate::stream::Protocol).
//!
//! Every framer reports an over-long frame the same way ([`FrameError::TooLong`] with the
//! limit and the size seen), as early as the bytes allow, and offers the same [`Recovery`]
//! choice: close (the default) or skip the frame. Errors map onto [`Reason`](crate::Reason):
//! `LimitExceeded { limit: FrameLength, .. }` and `Reason::Protocol(..)`.
//!
//! ```
//! use bytes::Bytes;
//! use loomwork::{Instant, Limit, Reason};
//! use loomwork::framing::{FrameHandler, FrameTransport, Framed, NetstringCodec};
//! use loomwork::stream::{Config, Connection};
//!
//! /// Twisted's netstring echo.
//! struct Echo;
//! impl FrameHandler for Echo {
//!     type Codec = NetstringCodec;
//!     type Message = ();
//!     fn frame_received(&mut self, s: Bytes, tx: &mut FrameTransport<'_, '_, NetstringCodec>) {
//!         let _ = tx.send_frame(s);
//!     }
//! }
//!
//! let addr = "127.0.0.1:1".parse().unwrap();
//! let mut conn = Connection::new(Framed::new(Echo, NetstringCodec::new()), Config::default());
//! conn.handle_connected(Instant::ZERO, addr, addr);
//! conn.handle_data(Instant::ZERO, b"5:hello,3:abc,999999:");
//! let out: Vec<u8> = conn.poll_write().flatten().copied().collect();
//! assert_eq!(out, b"5:hello,3:abc,"); // earlier replies are flushed before the close
//! conn.handle_written(Instant::ZERO, out.len());
//! assert_eq!(
//!     conn.reason(),
//!     Some(&Reason::LimitExceeded { limit: Limit::FrameLength, max: 99_999, seen: 999_999 })
//! );
//! ```

mod any;
mod codec;
mod framed;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod length;
mod line;
mod netstring;
#[cfg(any(test, feature = "testing"))]
pub mod reference;

pub use any::AnyCodec;
pub use codec::{
    Decoder, EncodeError, Encoded, Encoder, FrameError, FrameHeader, Recovery, WireFrame,
};
pub use framed::{FrameHandler, FrameTransport, Framed, SendError};
pub use length::{LengthCodec, LengthCodecBuilder, DEFAULT_MAX_PREFIXED_LENGTH};
pub use line::{LineCodec, DEFAULT_DELIMITER, DEFAULT_MAX_LINE_LENGTH};
pub use netstring::{NetstringCodec, DEFAULT_MAX_NETSTRING_LENGTH};

use core::fmt;

/// A framing configuration that cannot work (an empty delimiter, a 9-byte length field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConfigError {
    message: &'static str,
}

impl ConfigError {
    const fn new(message: &'static str) -> Self {
        ConfigError { message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid framing configuration: {}", self.message)
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests;
