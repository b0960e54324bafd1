//! The two traits every framing implements, and the errors and output shape they share.

use core::fmt;

use bytes::{Bytes, BytesMut};

use crate::reason::{Limit, ProtocolError, Reason};

/// Splits frames off a connection's receive buffer.
///
/// The contract (tokio-util's, tightened):
/// - `Ok(Some(frame))`: one complete frame, split off the front of `buf` and frozen without
///   copying; the framing's own bytes (delimiter, length prefix, comma) are consumed too.
/// - `Ok(None)`: more bytes are needed. `buf` is left exactly as it was, so a caller may hand
///   the bytes to somebody else (raw mode, another framer); the decoder may remember how far
///   it has already scanned, so that each byte is inspected once however the input is chunked.
/// - `Err(error)`: the bytes violate the framing. What happens next is
///   [`recovery`](Decoder::recovery)'s answer: by default the stream is corrupt and the decoder
///   must not be fed again until [`reset`](Decoder::reset).
///
/// A decoder never panics on any input and never asks for more than its limit to be buffered.
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::framing::{Decoder, LineCodec};
///
/// let mut lines = LineCodec::new();
/// let mut buf = BytesMut::from(&b"hello\r\nwor"[..]);
/// assert_eq!(lines.decode(&mut buf).unwrap().unwrap(), "hello");
/// assert_eq!(lines.decode(&mut buf).unwrap(), None);
/// assert_eq!(buf, "wor"); // need more: the partial line is left in place
/// buf.extend_from_slice(b"ld\r\n");
/// assert_eq!(lines.decode(&mut buf).unwrap().unwrap(), "world");
/// ```
pub trait Decoder {
    /// Decodes the next frame from the front of `buf`, if a whole one is there.
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError>;

    /// What the decoder does after returning `error`: [`Recovery::Close`] (the stream is
    /// corrupt) unless it was configured to skip over-long frames.
    fn recovery(&self, error: &FrameError) -> Recovery {
        let _ = error;
        Recovery::Close
    }

    /// Forgets any scanning progress and error state, because the buffer was changed behind the
    /// decoder's back (cleared, handed over from raw mode or from another framer).
    fn reset(&mut self);
}

/// Turns a payload into the bytes that carry it on the wire.
///
/// Encoders refuse what the peer's decoder would reject (a payload over the limit, a line
/// containing its delimiter) instead of corrupting the stream (Twisted sends such frames as
/// they are, LR-12 and IN-4).
///
/// ```
/// use bytes::Bytes;
/// use loomwork::framing::{Encoder, NetstringCodec};
///
/// let encoded = NetstringCodec::new().encode(Bytes::from_static(b"abc")).unwrap();
/// assert_eq!(encoded.to_vec(), b"3:abc,");
/// ```
pub trait Encoder {
    /// Frames `payload`, without copying it.
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError>;
}

/// A framed payload: a small header, the payload itself and a trailer, kept apart so the
/// payload is never copied and the three go out in one vectored write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The framing's prefix (length digits and colon, a length field); may be empty.
    pub header: FrameHeader,
    /// The payload, untouched.
    pub payload: Bytes,
    /// The framing's suffix (a delimiter, a netstring's comma); may be empty.
    pub trailer: Bytes,
}

impl Encoded {
    /// Total bytes on the wire.
    pub fn len(&self) -> usize {
        self.header.len() + self.payload.len() + self.trailer.len()
    }

    /// True when nothing at all goes on the wire (a custom framing's empty frame).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the wire bytes to `dst` (for tests, benchmarks and callers without a transport).
    pub fn write_to(&self, dst: &mut BytesMut) {
        dst.reserve(self.len());
        dst.extend_from_slice(self.header.as_slice());
        dst.extend_from_slice(&self.payload);
        dst.extend_from_slice(&self.trailer);
    }

    /// The wire bytes as one vector.
    pub fn to_vec(&self) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::with_capacity(self.len());
        out.extend_from_slice(self.header.as_slice());
        out.extend_from_slice(&self.payload);
        out.extend_from_slice(&self.trailer);
        out
    }
}

/// A frame's wire bytes (header, payload and trailer) in one buffer: encoded once, then sent to
/// any number of connections, each queue holding a reference-counted clone
/// ([`FrameTransport::send_wire`](crate::framing::FrameTransport::send_wire)). The one copy is
/// made when it is built; a delimiter or a length prefix never costs a copy per recipient.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::framing::{Encoder, LineCodec, WireFrame};
///
/// let frame = WireFrame::from(LineCodec::new().encode(Bytes::from_static(b"hi")).unwrap());
/// assert_eq!(frame.bytes().as_ref(), b"hi\r\n");
/// let clone = frame.clone(); // no copy: the same bytes
/// assert_eq!(clone.bytes().as_ptr(), frame.bytes().as_ptr());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireFrame(Bytes);

impl WireFrame {
    /// Wraps bytes that are already a complete frame of the connection's framing.
    pub fn from_wire_bytes(bytes: Bytes) -> Self {
        WireFrame(bytes)
    }

    /// The frame's bytes on the wire.
    pub fn bytes(&self) -> &Bytes {
        &self.0
    }

    /// Bytes on the wire.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for a frame with no bytes at all (a custom framing's empty frame).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Encoded> for WireFrame {
    /// Joins the three parts into one buffer: the one copy a shared frame costs.
    fn from(encoded: Encoded) -> Self {
        WireFrame(Bytes::from(encoded.to_vec()))
    }
}

/// A frame header kept inline, so that framing a payload allocates nothing.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameHeader {
    bytes: [u8; FrameHeader::CAPACITY],
    len: u8,
}

impl FrameHeader {
    /// The longest header: room for a 20-digit netstring length and its colon, or a length
    /// field of 8 bytes behind a generous offset.
    pub const CAPACITY: usize = 32;

    /// An empty header.
    pub const fn new() -> Self {
        FrameHeader {
            bytes: [0; FrameHeader::CAPACITY],
            len: 0,
        }
    }

    /// A header holding `bytes`, or `None` when they do not fit in [`Self::CAPACITY`].
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut header = FrameHeader::new();
        header.extend(bytes).then_some(header)
    }

    /// Appends `bytes`; false (and unchanged) when they do not fit.
    pub fn extend(&mut self, bytes: &[u8]) -> bool {
        let start = usize::from(self.len);
        let Some(end) = start.checked_add(bytes.len()) else {
            return false;
        };
        match self.bytes.get_mut(start..end) {
            Some(slot) => {
                slot.copy_from_slice(bytes);
                // `end` <= CAPACITY (32), so it fits in a u8.
                self.len = end as u8;
                true
            }
            None => false,
        }
    }

    /// The header bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Number of header bytes.
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for an empty header.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Debug for FrameHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FrameHeader({:?})", self.as_slice())
    }
}

/// What to do with a frame longer than the framer's maximum.
///
/// Twisted's receivers always close (LR-6, LO-4, NS-6, IN-2), but disagree on what they
/// consider (KW-5); every loomwork framer applies the same rule, checked as early as the bytes
/// allow, and offers the same choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Recovery {
    /// The stream is unusable: close the connection gracefully with the typed reason.
    #[default]
    Close,
    /// Discard the offending frame as its bytes arrive (never buffering them) and go on with
    /// the next one.
    Skip,
}

/// Why a decoder rejected its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame is longer than the maximum: the one over-length shape of every framer.
    TooLong {
        /// The configured maximum frame length.
        max: usize,
        /// The length seen: the declared length for length-prefixed framings (known from the
        /// header alone), otherwise the bytes buffered without finding the frame's end.
        seen: usize,
    },
    /// The bytes violate the framing's grammar (a netstring's missing comma, say).
    Malformed(ProtocolError),
}

impl FrameError {
    /// A grammar violation with a short static description such as `"netstring: missing comma"`.
    pub const fn malformed(message: &'static str) -> Self {
        FrameError::Malformed(ProtocolError::new(message))
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLong { max, seen } => {
                write!(f, "frame too long: {seen} bytes > maximum {max}")
            }
            FrameError::Malformed(err) => write!(f, "malformed frame: {err}"),
        }
    }
}

impl core::error::Error for FrameError {}

impl From<FrameError> for Reason {
    /// Over-length becomes `LimitExceeded { limit: FrameLength, .. }`, grammar violations
    /// `Reason::Protocol`.
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::TooLong { max, seen } => Reason::LimitExceeded {
                limit: Limit::FrameLength,
                max,
                seen,
            },
            FrameError::Malformed(err) => Reason::Protocol(err),
        }
    }
}

/// Why an encoder refused a payload: the peer's decoder would reject the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload is longer than the framing allows.
    TooLong {
        /// The largest payload the framing accepts (the configured maximum, or what the length
        /// field can express, whichever is smaller).
        max: usize,
        /// The payload's length.
        len: usize,
    },
    /// The payload contains the line delimiter (or ends in a way that would make the
    /// delimiter appear early), so the peer would split it.
    ContainsDelimiter,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { max, len } => {
                write!(f, "payload too long to frame: {len} bytes > maximum {max}")
            }
            EncodeError::ContainsDelimiter => f.write_str("line contains the delimiter"),
        }
    }
}

impl core::error::Error for EncodeError {}
