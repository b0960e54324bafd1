//! AMP boxes on the wire: [`AmpBox`] (the key/value pairs) and [`BoxCodec`] (their framing).

use alloc::vec::Vec;
use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use crate::framing::{Decoder, EncodeError, Encoded, Encoder, FrameError, FrameHeader};

/// The longest key a box may carry (Twisted's `MAX_KEY_LENGTH`).
pub const MAX_KEY_LENGTH: usize = 0xFF;

/// The longest value a box may carry (Twisted's `MAX_VALUE_LENGTH`).
pub const MAX_VALUE_LENGTH: usize = 0xFFFF;

/// The default bound on one whole box on the wire (every pair and the terminator).
///
/// Twisted sets none; 512 KiB holds eight maximum-length values and stays under the
/// connection's default receive buffer (1 MiB), so an over-long box is refused as such.
pub const DEFAULT_MAX_BOX_LENGTH: usize = 512 * 1024;

const KEY_TOO_LONG: FrameError = FrameError::malformed("amp: key longer than 255 bytes");

/// Splits AMP boxes off the receive buffer and frames serialized pairs (Twisted's
/// `BinaryBoxProtocol`).
///
/// A box is any number of pairs, each a 2-byte big-endian key length (1 to 255), the key, a
/// 2-byte big-endian value length and the value, ended by an empty key (`\0\0`) (AM-1).
///
/// [`decode`](Decoder::decode) yields the pairs of one box, without the terminator, split off
/// the buffer without copying; [`AmpBox::parse`] turns them into keys and values that are
/// slices of the same bytes. [`encode`](Encoder::encode) checks serialized pairs and adds the
/// terminator. A key length over 255 is [`FrameError::Malformed`] as soon as its two bytes
/// arrive (Twisted closes the connection too); a box growing past the maximum is
/// [`FrameError::TooLong`] before its end arrives.
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::amp::{AmpBox, BoxCodec};
/// use loomwork::framing::Decoder;
///
/// let mut codec = BoxCodec::new();
/// let mut buf = BytesMut::from(&b"\x00\x01a\x00\x0213\x00\x00\x00\x01b"[..]);
/// let pairs = codec.decode(&mut buf).unwrap().unwrap();
/// let amp_box = AmpBox::parse(pairs).unwrap();
/// assert_eq!(amp_box.get(b"a").unwrap(), "13");
/// assert_eq!(codec.decode(&mut buf).unwrap(), None); // need more: the buffer is untouched
/// assert_eq!(buf, &b"\x00\x01b"[..]);
/// ```
#[derive(Clone, Debug)]
pub struct BoxCodec {
    max_length: usize,
    /// Bytes at the front of the buffer already known to be whole pairs (the scan resumes
    /// there, so each byte is inspected once however the input is chunked).
    scanned: usize,
    failed: Option<FrameError>,
}

impl BoxCodec {
    /// A codec with the default box bound ([`DEFAULT_MAX_BOX_LENGTH`]).
    pub const fn new() -> Self {
        BoxCodec {
            max_length: DEFAULT_MAX_BOX_LENGTH,
            scanned: 0,
            failed: None,
        }
    }

    /// Sets the bound on one box on the wire, pairs and terminator together.
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = max_length;
        self
    }

    /// The bound on one box on the wire.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.failed = Some(error);
        error
    }
}

impl Default for BoxCodec {
    fn default() -> Self {
        BoxCodec::new()
    }
}

impl Decoder for BoxCodec {
    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let mut at = self.scanned;
        while let Some(&[hi, lo]) = buf.get(at..at + 2) {
            let key_len = usize::from(u16::from_be_bytes([hi, lo]));
            if key_len == 0 {
                // The terminator: the box is the pairs before it.
                self.scanned = 0;
                let mut frame = buf.split_to(at + 2);
                frame.truncate(at);
                return Ok(Some(frame.freeze()));
            }
            if key_len > MAX_KEY_LENGTH {
                return Err(self.fail(KEY_TOO_LONG));
            }
            let value_at = at + 2 + key_len;
            if value_at + 2 > self.max_length {
                return Err(self.too_long(value_at + 2));
            }
            let Some(&[hi, lo]) = buf.get(value_at..value_at + 2) else {
                break;
            };
            let value_len = usize::from(u16::from_be_bytes([hi, lo]));
            let next = value_at + 2 + value_len;
            // A box needs its terminator too.
            if next + 2 > self.max_length {
                return Err(self.too_long(next + 2));
            }
            if buf.len() < next {
                break;
            }
            at = next;
            self.scanned = at;
        }
        Ok(None)
    }

    fn reset(&mut self) {
        self.scanned = 0;
        self.failed = None;
    }
}

impl BoxCodec {
    fn too_long(&mut self, seen: usize) -> FrameError {
        let error = FrameError::TooLong {
            max: self.max_length,
            seen,
        };
        self.fail(error)
    }
}

impl Encoder for BoxCodec {
    /// Checks that `payload` is a run of well-formed pairs and appends the terminator.
    fn encode(&mut self, payload: Bytes) -> Result<Encoded, EncodeError> {
        if payload.len() + 2 > self.max_length {
            return Err(EncodeError::TooLong {
                max: self.max_length.saturating_sub(2),
                len: payload.len(),
            });
        }
        if parse_pairs(&payload, |_, _| ()).is_err() {
            // Not pairs: the peer would read it as a different box, or not at all.
            return Err(EncodeError::ContainsDelimiter);
        }
        Ok(Encoded {
            header: FrameHeader::new(),
            payload,
            trailer: Bytes::from_static(b"\0\0"),
        })
    }
}

/// Walks serialized pairs, handing each key and value range to `pair`; errors on an empty or
/// over-long key and on a truncated pair.
fn parse_pairs(
    pairs: &[u8],
    mut pair: impl FnMut(core::ops::Range<usize>, core::ops::Range<usize>),
) -> Result<(), BoxError> {
    let mut at = 0;
    while at < pairs.len() {
        let key_len = read_u16(pairs, at).ok_or(BoxError::Truncated)?;
        if key_len == 0 {
            return Err(BoxError::EmptyKey);
        }
        if key_len > MAX_KEY_LENGTH {
            return Err(BoxError::KeyTooLong { len: key_len });
        }
        let key = at + 2..at + 2 + key_len;
        let value_len = read_u16(pairs, key.end).ok_or(BoxError::Truncated)?;
        let value = key.end + 2..key.end + 2 + value_len;
        if value.end > pairs.len() {
            return Err(BoxError::Truncated);
        }
        at = value.end;
        pair(key, value);
    }
    Ok(())
}

fn read_u16(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at..at.checked_add(2)?)? {
        &[hi, lo] => Some(usize::from(u16::from_be_bytes([hi, lo]))),
        _ => None,
    }
}

/// One AMP box: keys and values as bytes, in the order they arrived (or were inserted).
///
/// Parsed boxes hold slices of the received frame, never copies. Like Twisted's `AmpBox` (a
/// `dict`), a key seen twice keeps its last value for [`get`](Self::get);
/// [`serialize`](Self::serialize) writes the keys sorted, as Twisted does, so the same box
/// gives the same bytes on both sides.
///
/// ```
/// use loomwork::amp::AmpBox;
///
/// let mut amp_box = AmpBox::new();
/// amp_box.insert("b", "2").unwrap();
/// amp_box.insert("a", "1").unwrap();
/// assert_eq!(amp_box.serialize(), &b"\x00\x01a\x00\x011\x00\x01b\x00\x012"[..]);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AmpBox {
    pairs: Vec<(Bytes, Bytes)>,
}

impl AmpBox {
    /// An empty box.
    pub const fn new() -> Self {
        AmpBox { pairs: Vec::new() }
    }

    /// Parses the pairs of one box (what [`BoxCodec`] decodes), slicing without copying.
    pub fn parse(pairs: Bytes) -> Result<Self, BoxError> {
        // Most boxes carry a handful of pairs: one allocation, no intermediate list.
        let mut out = Vec::with_capacity(8);
        parse_pairs(&pairs, |key, value| {
            out.push((pairs.slice(key), pairs.slice(value)));
        })?;
        Ok(AmpBox { pairs: out })
    }

    /// Sets `key` to `value`, replacing an earlier value; refuses a key that is empty or over
    /// 255 bytes and a value over 65,535 bytes, before anything is sent.
    pub fn insert(
        &mut self,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<(), BoxError> {
        let (key, value) = (key.into(), value.into());
        if key.is_empty() {
            return Err(BoxError::EmptyKey);
        }
        if key.len() > MAX_KEY_LENGTH {
            return Err(BoxError::KeyTooLong { len: key.len() });
        }
        if value.len() > MAX_VALUE_LENGTH {
            return Err(BoxError::ValueTooLong { len: value.len() });
        }
        match self.pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => self.pairs.push((key, value)),
        }
        Ok(())
    }

    /// The value of `key` (the last one, if the peer sent it twice).
    pub fn get(&self, key: &[u8]) -> Option<&Bytes> {
        self.pairs
            .iter()
            .rev()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v)
    }

    /// True when the box carries `key`.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Removes `key` (every copy of it) and returns its last value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Bytes> {
        let value = self.get(key).cloned();
        self.pairs.retain(|(k, _)| k.as_ref() != key);
        value
    }

    /// The pairs, in arrival (or insertion) order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.pairs.iter().map(|(k, v)| (k, v))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// True for a box without pairs.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The pairs on the wire, keys sorted (Twisted's `AmpBox.serialize`), without the
    /// terminator: what [`BoxCodec`] frames.
    pub fn serialize(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.serialized_len());
        self.serialize_into(&mut out);
        out.freeze()
    }

    /// The whole box on the wire, terminator included (an element of an `AmpList`, say).
    pub fn to_wire(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.serialized_len() + 2);
        self.serialize_into(&mut out);
        out.put_u16(0);
        out.freeze()
    }

    fn serialized_len(&self) -> usize {
        self.pairs.iter().map(|(k, v)| 4 + k.len() + v.len()).sum()
    }

    fn serialize_into(&self, out: &mut BytesMut) {
        let mut sorted: Vec<&(Bytes, Bytes)> = self.pairs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        // Every length was checked on insert (or on parse), so the casts cannot truncate.
        for (key, value) in sorted {
            out.put_u16(key.len() as u16);
            out.extend_from_slice(key);
            out.put_u16(value.len() as u16);
            out.extend_from_slice(value);
        }
    }
}

impl fmt::Debug for AmpBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.pairs.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

/// Why bytes are not a box, or a key or value cannot go into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BoxError {
    /// A key of zero bytes (on the wire, that ends the box).
    EmptyKey,
    /// A key over 255 bytes.
    KeyTooLong {
        /// The key's length.
        len: usize,
    },
    /// A value over 65,535 bytes.
    ValueTooLong {
        /// The value's length.
        len: usize,
    },
    /// The bytes end inside a pair.
    Truncated,
}

impl fmt::Display for BoxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoxError::EmptyKey => f.write_str("AMP key is empty"),
            BoxError::KeyTooLong { len } => {
                write!(f, "AMP key too long: {len} bytes > {MAX_KEY_LENGTH}")
            }
            BoxError::ValueTooLong { len } => {
                write!(f, "AMP value too long: {len} bytes > {MAX_VALUE_LENGTH}")
            }
            BoxError::Truncated => f.write_str("AMP box ends inside a pair"),
        }
    }
}

impl core::error::Error for BoxError {}
