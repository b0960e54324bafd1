//! Length-prefixed frames: Twisted's `Int8/16/32StringReceiver` (IN-1..IN-5) and the header
//! layouts Netty and tokio-util users know (field offset, width, byte order, adjustment, strip).

use bytes::{Buf, Bytes, BytesMut};

use crate::framing::{ConfigError, Decoder, EncodeError, Encoded, Encoder, FrameError};
use crate::framing::{FrameHeader, Recovery};

/// Twisted's default maximum for `Int8/16/32StringReceiver` (DF-4).
pub const DEFAULT_MAX_PREFIXED_LENGTH: usize = 99_999;

const NEGATIVE_LENGTH: FrameError =
    FrameError::malformed("length-prefixed: length field minus adjustment is negative");

/// Frames whose header carries the payload length in a fixed-width unsigned integer.
///
/// [`int8`](Self::int8), [`int16`](Self::int16) and [`int32`](Self::int32) are Twisted's
/// receivers: a big-endian prefix of 1, 2 or 4 bytes, then that many payload bytes, at most
/// 99,999 (DF-4, DF-5). Other layouts come from [`builder`](Self::builder).
///
/// The limit applies to the frame body, the bytes after the length field, and is checked from
/// the header alone: an over-limit length is [`FrameError::TooLong`] before any payload is
/// buffered (IN-2).
///
/// ```
/// use bytes::{Bytes, BytesMut};
/// use loomwork::framing::{Decoder, Encoder, FrameError, LengthCodec};
///
/// let mut codec = LengthCodec::int16();
/// let mut buf = BytesMut::from(&b"\x00\x03abc\x00\x00"[..]);
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "abc");
/// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), ""); // IN-1: empty frames are valid
///
/// let mut int32 = LengthCodec::int32();
/// let mut buf = BytesMut::from(&b"\x00\x01\x86\xa0"[..]); // 100,000: refused from the header
/// assert_eq!(int32.decode(&mut buf), Err(FrameError::TooLong { max: 99_999, seen: 100_000 }));
///
/// // Unlike Twisted (IN-4) the encoder refuses what the peer would refuse.
/// assert!(int32.encode(Bytes::from(vec![0; 100_000])).is_err());
/// ```
#[derive(Clone, Debug)]
pub struct LengthCodec {
    layout: Layout,
    max_length: usize,
    on_too_long: Recovery,
    state: State,
}

/// Where the length field sits and how to read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    offset: usize,
    width: usize,
    big_endian: bool,
    adjustment: i64,
    strip: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Reading frames; stateless between them, so the buffer is never touched on "need more".
    Frames,
    /// Dropping `remaining` bytes of a skipped frame.
    Discarding {
        remaining: u64,
    },
    Failed(FrameError),
}

impl LengthCodec {
    /// Twisted's `Int8StringReceiver`: 1-byte prefix (so at most 255 bytes).
    pub fn int8() -> Self {
        LengthCodec::prefixed(1)
    }

    /// Twisted's `Int16StringReceiver`: 2-byte big-endian prefix.
    pub fn int16() -> Self {
        LengthCodec::prefixed(2)
    }

    /// Twisted's `Int32StringReceiver`: 4-byte big-endian prefix, at most 99,999 bytes.
    pub fn int32() -> Self {
        LengthCodec::prefixed(4)
    }

    /// A builder for any other layout, starting from `int32`'s.
    ///
    /// ```
    /// use bytes::BytesMut;
    /// use loomwork::framing::{Decoder, LengthCodec};
    ///
    /// // A 2-byte type tag, then a 3-byte little-endian length counting the whole frame;
    /// // deliver everything after the length field.
    /// let mut codec = LengthCodec::builder()
    ///     .length_field_offset(2)
    ///     .length_field_width(3)
    ///     .little_endian()
    ///     .length_adjustment(-5)
    ///     .strip(5)
    ///     .build()
    ///     .unwrap();
    /// let mut buf = BytesMut::from(&b"T1\x07\x00\x00hi"[..]);
    /// assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "hi");
    /// ```
    pub fn builder() -> LengthCodecBuilder {
        LengthCodecBuilder {
            layout: Layout {
                offset: 0,
                width: 4,
                big_endian: true,
                adjustment: 0,
                strip: 4,
            },
            max_length: DEFAULT_MAX_PREFIXED_LENGTH,
            on_too_long: Recovery::Close,
        }
    }

    fn prefixed(width: usize) -> Self {
        LengthCodec {
            layout: Layout {
                offset: 0,
                width,
                big_endian: true,
                adjustment: 0,
                strip: width,
            },
            max_length: DEFAULT_MAX_PREFIXED_LENGTH,
            on_too_long: Recovery::Close,
            state: State::Frames,
        }
    }

    /// Sets the maximum body length (the bytes after the length field).
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// Sets what happens to an over-long frame (default: [`Recovery::Close`]).
    pub fn with_recovery(mut self, on_too_long: Recovery) -> Self {
        self.on_too_long = on_too_long;
        self
    }

    /// The maximum body length.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// The width of the length field in bytes.
    pub fn length_field_width(&self) -> usize {
        self.layout.width
    }

    /// The largest body the length field can express: `2^(8 * width) - 1 + adjustment`.
    fn field_capacity(&self) -> i128 {
        let bits = 8 * self.layout.width as u32;
        (1i128 << bits) - 1 + i128::from(self.layout.adjustment)
    }

    fn too_long(&mut self, seen: u64, frame_len: u64) -> FrameError {
        let error = FrameError::TooLong {
            max: self.max_length,
            seen: usize::try_from(seen).unwrap_or(usize::MAX),
        };
        self.state = match self.on_too_long {
            Recovery::Close => State::Failed(error),
            Recovery::Skip => State::Discarding {
                remaining: frame_len,
            },
        };
        error
    }
}

impl Decoder for LengthCodec {
    #[inline]
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        loop {
            match self.state {
                State::Frames => break,
                State::Failed(error) => return Err(error),
                State::Discarding { remaining } => {
                    let drop = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(buf.len());
                    buf.advance(drop);
                    let remaining = remaining - drop as u64;
                    if remaining > 0 {
                        self.state = State::Discarding { remaining };
                        return Ok(None);
                    }
                    self.state = State::Frames;
                }
            }
        }
        let Layout {
            offset,
            width,
            big_endian,
            adjustment,
            strip,
        } = self.layout;
        let head = offset + width;
        let Some(field) = buf.get(offset..head) else {
            return Ok(None);
        };
        let value = read_uint(field, big_endian);
        let body = i128::from(value) + i128::from(adjustment);
        if body < 0 {
            self.state = State::Failed(NEGATIVE_LENGTH);
            return Err(NEGATIVE_LENGTH);
        }
        // A large positive adjustment can pass u64::MAX; any such body is over the limit.
        let body = u64::try_from(body).unwrap_or(u64::MAX);
        // The frame on the wire: header, then body (saturating: only compared, never allocated).
        let frame_len = body.saturating_add(head as u64);
        if body > self.max_length as u64 {
            return Err(self.too_long(body, frame_len));
        }
        // body <= max_length (a usize), so these fit.
        let frame_len = head + body as usize;
        if buf.len() < frame_len {
            return Ok(None);
        }
        // Split first, then strip the frame's own view: one call on the shared buffer.
        let mut frame = buf.split_to(frame_len).freeze();
        frame.advance(strip);
        Ok(Some(frame))
    }

    fn recovery(&self, error: &FrameError) -> Recovery {
        match error {
            FrameError::TooLong { .. } => self.on_too_long,
            _ => Recovery::Close,
        }
    }

    fn reset(&mut self) {
        self.state = State::Frames;
    }
}

impl Encoder for LengthCodec {
    /// Prepends the length field to `payload` (which, with a non-zero field offset, must begin
    /// with the bytes that precede the field: they are moved in front of it).
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError> {
        let Layout {
            offset,
            width,
            big_endian,
            adjustment,
            ..
        } = self.layout;
        let mut payload = payload;
        let too_long = EncodeError::TooLong {
            max: self
                .max_length
                .min(self.field_capacity().clamp(0, usize::MAX as i128) as usize),
            len: payload.len(),
        };
        if payload.len() < offset {
            return Err(EncodeError::TooLong {
                max: 0,
                len: payload.len(),
            });
        }
        let prefix = payload.split_to(offset);
        let body = payload.len();
        if body > self.max_length {
            return Err(too_long);
        }
        let value = i128::from(body as u64) - i128::from(adjustment);
        let fits = u64::try_from(value)
            .ok()
            .filter(|v| width >= 8 || *v < 1u64 << (8 * width));
        let Some(value) = fits else {
            return Err(too_long);
        };
        let mut header = FrameHeader::new();
        let field = value.to_be_bytes();
        let field = &field[8 - width..];
        let mut le = [0u8; 8];
        let field = if big_endian {
            field
        } else {
            for (dst, src) in le.iter_mut().zip(field.iter().rev()) {
                *dst = *src;
            }
            &le[..width]
        };
        if !(header.extend(&prefix) && header.extend(field)) {
            return Err(EncodeError::TooLong {
                max: FrameHeader::CAPACITY,
                len: offset + width,
            });
        }
        Ok(Encoded {
            header,
            payload,
            trailer: Bytes::new(),
        })
    }
}

/// Reads an unsigned integer of 1 to 8 bytes.
#[inline]
fn read_uint(field: &[u8], big_endian: bool) -> u64 {
    if big_endian {
        if let Ok(four) = <[u8; 4]>::try_from(field) {
            return u64::from(u32::from_be_bytes(four));
        }
        field.iter().fold(0, |acc, &b| acc << 8 | u64::from(b))
    } else {
        field
            .iter()
            .rev()
            .fold(0, |acc, &b| acc << 8 | u64::from(b))
    }
}

/// Configures a [`LengthCodec`] (in the manner of tokio-util's `LengthDelimitedCodec`
/// builder). Defaults are `int32`'s: offset 0, 4 bytes, big-endian, no adjustment, strip the
/// 4-byte header, maximum 99,999.
#[derive(Clone, Debug)]
pub struct LengthCodecBuilder {
    layout: Layout,
    max_length: usize,
    on_too_long: Recovery,
}

impl LengthCodecBuilder {
    /// Bytes before the length field (a type tag, say). They are part of the frame.
    pub fn length_field_offset(mut self, offset: usize) -> Self {
        self.layout.offset = offset;
        self
    }

    /// Width of the length field, 1 to 8 bytes. Also sets [`strip`](Self::strip) to the whole
    /// header (offset + width); call `strip` afterwards to change it.
    pub fn length_field_width(mut self, width: usize) -> Self {
        self.layout.width = width;
        self.layout.strip = self.layout.offset.saturating_add(width);
        self
    }

    /// The length field is big-endian (network order; the default).
    pub fn big_endian(mut self) -> Self {
        self.layout.big_endian = true;
        self
    }

    /// The length field is little-endian.
    pub fn little_endian(mut self) -> Self {
        self.layout.big_endian = false;
        self
    }

    /// Added to the length field's value to get the body length (the bytes after the field);
    /// negative when the field counts the header too.
    pub fn length_adjustment(mut self, adjustment: i64) -> Self {
        self.layout.adjustment = adjustment;
        self
    }

    /// How many bytes at the frame's start are dropped before it is delivered, at most the
    /// header (offset + width).
    pub fn strip(mut self, strip: usize) -> Self {
        self.layout.strip = strip;
        self
    }

    /// The maximum body length.
    pub fn max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// What happens to an over-long frame.
    pub fn recovery(mut self, on_too_long: Recovery) -> Self {
        self.on_too_long = on_too_long;
        self
    }

    /// The codec, or why the layout is impossible.
    pub fn build(self) -> Result<LengthCodec, ConfigError> {
        let Layout {
            offset,
            width,
            strip,
            ..
        } = self.layout;
        if !(1..=8).contains(&width) {
            return Err(ConfigError::new("length field width must be 1 to 8 bytes"));
        }
        if offset.saturating_add(width) > FrameHeader::CAPACITY {
            return Err(ConfigError::new(
                "length field offset + width must be at most 32 bytes",
            ));
        }
        if strip > offset + width {
            return Err(ConfigError::new(
                "strip must not exceed the header (offset + width)",
            ));
        }
        Ok(LengthCodec {
            layout: self.layout,
            max_length: self.max_length,
            on_too_long: self.on_too_long,
            state: State::Frames,
        })
    }
}
