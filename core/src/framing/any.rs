//! `AnyCodec`: every built-in framing behind one type, chosen at run time.

use bytes::{Bytes, BytesMut};

use crate::framing::{Decoder, EncodeError, Encoded, Encoder, FrameError, Recovery};
use crate::framing::{LengthCodec, LineCodec, NetstringCodec};

/// One of the built-in framings, for programs that pick the framing at run time (a
/// `--framing` flag) or hand over from one framing to another mid-stream with
/// [`FrameTransport::set_codec`](crate::framing::FrameTransport::set_codec).
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::framing::{AnyCodec, Decoder, LineCodec};
///
/// let mut codec = AnyCodec::from(LineCodec::new());
/// let mut buf = BytesMut::from(&b"hi\r\n"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "hi");
/// ```
#[derive(Clone, Debug)]
// One codec per connection, built once and never moved in a hot loop: boxing the line codec
// (its memmem tables make it ~400 bytes) would only add an indirection to every decode.
#[allow(clippy::large_enum_variant)]
pub enum AnyCodec {
    /// Delimited lines (`LineReceiver`, `LineOnlyReceiver`).
    Line(LineCodec),
    /// Netstrings (`NetstringReceiver`).
    Netstring(NetstringCodec),
    /// Length-prefixed frames (`Int8/16/32StringReceiver` and friends).
    Length(LengthCodec),
}

impl From<LineCodec> for AnyCodec {
    fn from(codec: LineCodec) -> Self {
        AnyCodec::Line(codec)
    }
}

impl From<NetstringCodec> for AnyCodec {
    fn from(codec: NetstringCodec) -> Self {
        AnyCodec::Netstring(codec)
    }
}

impl From<LengthCodec> for AnyCodec {
    fn from(codec: LengthCodec) -> Self {
        AnyCodec::Length(codec)
    }
}

impl Decoder for AnyCodec {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self {
            AnyCodec::Line(codec) => codec.decode(buf),
            AnyCodec::Netstring(codec) => codec.decode(buf),
            AnyCodec::Length(codec) => codec.decode(buf),
        }
    }

    fn recovery(&self, error: &FrameError) -> Recovery {
        match self {
            AnyCodec::Line(codec) => codec.recovery(error),
            AnyCodec::Netstring(codec) => codec.recovery(error),
            AnyCodec::Length(codec) => codec.recovery(error),
        }
    }

    fn reset(&mut self) {
        match self {
            AnyCodec::Line(codec) => codec.reset(),
            AnyCodec::Netstring(codec) => codec.reset(),
            AnyCodec::Length(codec) => codec.reset(),
        }
    }
}

impl Encoder for AnyCodec {
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError> {
        match self {
            AnyCodec::Line(codec) => codec.encode(payload),
            AnyCodec::Netstring(codec) => codec.encode(payload),
            AnyCodec::Length(codec) => codec.encode(payload),
        }
    }
}
