//! Oracles for testing framings (feature `testing`): deliberately naive decoders written
//! straight from docs/twisted-behaviour.md §5 over a whole input, and a driver that feeds a real
//! decoder the same input in arbitrary chunks.
//!
//! The property every framing must have (PR-4, FR-1): however the input is chunked, the real
//! decoder yields exactly the reference's frames and error. The fuzz targets and the proptests
//! both check it.
//!
//! ```
//! use loomwork::framing::{reference, LineCodec};
//!
//! let input = b"one\r\ntwo\r\nthr";
//! let expected = reference::lines(input, b"\r\n", 16_384);
//! let actual = reference::feed_in_chunks(&mut LineCodec::new(), input, &[1, 3, 2], 16_385);
//! assert_eq!(actual.unwrap(), expected);
//! ```

use alloc::vec::Vec;
use core::fmt;

use bytes::BytesMut;

use crate::framing::{Decoder, FrameError, Recovery};

/// What decoding a whole input produced: the frames in order, then the error that stopped it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Every frame delivered (under [`Recovery::Skip`], skipped frames are absent).
    pub frames: Vec<Vec<u8>>,
    /// The errors reported, in order; a fatal one is last.
    pub errors: Vec<FrameError>,
}

/// A decoder broke an invariant while being fed in chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// After `Ok(None)` the buffer held more than the bound the caller gave.
    Overbuffered {
        /// Bytes buffered.
        buffered: usize,
        /// The bound.
        bound: usize,
    },
    /// `Ok(None)` changed the buffer while decoding frames normally.
    TouchedOnNeedMore,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Overbuffered { buffered, bound } => {
                write!(
                    f,
                    "decoder left {buffered} bytes buffered, more than {bound}"
                )
            }
            Violation::TouchedOnNeedMore => f.write_str("decoder changed the buffer on Ok(None)"),
        }
    }
}

/// Feeds `input` to `decoder` in chunks of the given sizes (cycled; a 0 is read as 1), decoding
/// after each chunk until it needs more, and checks that at most `bound` bytes stay buffered.
///
/// Stops at the first fatal error (per [`Decoder::recovery`]); under [`Recovery::Skip`] it
/// records the error and goes on. With an empty `chunks` the whole input is one chunk.
pub fn feed_in_chunks<D: Decoder>(
    decoder: &mut D,
    input: &[u8],
    chunks: &[usize],
    bound: usize,
) -> Result<Outcome, Violation> {
    let mut outcome = Outcome::default();
    let mut buf = BytesMut::new();
    let mut rest = input;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let size = sizes.next().unwrap_or(rest.len()).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.clone();
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => outcome.frames.push(frame.to_vec()),
                Ok(None) => {
                    if buf.len() > bound {
                        return Err(Violation::Overbuffered {
                            buffered: buf.len(),
                            bound,
                        });
                    }
                    // Skipping discards as it goes; only plain need-more must be a no-op.
                    let skipping = outcome.errors.last().is_some_and(|e| {
                        decoder.recovery(e) == Recovery::Skip && buf.len() < before.len()
                    });
                    if buf != before && !skipping {
                        return Err(Violation::TouchedOnNeedMore);
                    }
                    break;
                }
                Err(error) => {
                    outcome.errors.push(error);
                    if decoder.recovery(&error) == Recovery::Close {
                        return Ok(outcome);
                    }
                }
            }
        }
    }
    Ok(outcome)
}

/// `LineReceiver` over a whole input (LR-3, LR-4, LR-5), closing on the first error.
pub fn lines(input: &[u8], delimiter: &[u8], max: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rest = input;
    let too_long = FrameError::TooLong {
        max,
        seen: max.saturating_add(delimiter.len()),
    };
    loop {
        let end = (0..rest.len()).find(|&i| rest[i..].starts_with(delimiter));
        match end {
            Some(at) if at > max => {
                outcome.errors.push(too_long);
                return outcome;
            }
            Some(at) => {
                outcome.frames.push(rest[..at].to_vec());
                rest = &rest[at + delimiter.len()..];
            }
            None => {
                if rest.len() >= max.saturating_add(delimiter.len()) {
                    outcome.errors.push(too_long);
                }
                return outcome;
            }
        }
    }
}

/// `NetstringReceiver` over a whole input (NS-1..NS-5), closing on the first error.
pub fn netstrings(input: &[u8], max: usize) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rest = input;
    let malformed = FrameError::malformed;
    loop {
        // The length: digits up to the colon, checked one at a time as they would arrive.
        let mut value: u128 = 0;
        let mut digits = 0;
        let error = loop {
            let Some(&byte) = rest.get(digits) else {
                return outcome; // incomplete length: wait
            };
            if byte == b':' {
                break None;
            }
            if !byte.is_ascii_digit() {
                break Some(malformed("netstring: invalid length"));
            }
            if digits == 20 {
                break Some(malformed("netstring: length field too long"));
            }
            if digits == 1 && value == 0 {
                break Some(malformed("netstring: length has a leading zero"));
            }
            value = value * 10 + u128::from(byte - b'0');
            digits += 1;
            if value > usize::MAX as u128 {
                break Some(malformed("netstring: length field too long"));
            }
            if value > max as u128 {
                break Some(FrameError::TooLong {
                    max,
                    seen: value as usize,
                });
            }
        };
        if let Some(error) = error {
            outcome.errors.push(error);
            return outcome;
        }
        if digits == 0 {
            outcome.errors.push(malformed("netstring: missing length"));
            return outcome;
        }
        let len = value as usize;
        let body = &rest[digits + 1..];
        if body.len() < len + 1 {
            return outcome;
        }
        if body[len] != b',' {
            outcome.errors.push(malformed("netstring: missing comma"));
            return outcome;
        }
        outcome.frames.push(body[..len].to_vec());
        rest = &body[len + 1..];
    }
}

/// A length-prefixed layout for [`length_prefixed`] (mirrors `LengthCodecBuilder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LengthLayout {
    /// Bytes before the length field.
    pub offset: usize,
    /// Width of the field, 1 to 8.
    pub width: usize,
    /// Byte order of the field.
    pub big_endian: bool,
    /// Added to the field to get the body length.
    pub adjustment: i64,
    /// Bytes dropped from the front of each frame.
    pub strip: usize,
    /// Maximum body length.
    pub max: usize,
}

/// Length-prefixed frames over a whole input (IN-1, IN-2), closing on the first error.
pub fn length_prefixed(input: &[u8], layout: LengthLayout) -> Outcome {
    let mut outcome = Outcome::default();
    let mut rest = input;
    let head = layout.offset + layout.width;
    loop {
        if rest.len() < head {
            return outcome;
        }
        let mut field = rest[layout.offset..head].to_vec();
        if !layout.big_endian {
            field.reverse();
        }
        let value = field
            .iter()
            .fold(0u128, |acc, &b| acc * 256 + u128::from(b));
        let body = value as i128 + i128::from(layout.adjustment);
        if body < 0 {
            outcome.errors.push(FrameError::malformed(
                "length-prefixed: length field minus adjustment is negative",
            ));
            return outcome;
        }
        if body > layout.max as i128 {
            let seen = usize::try_from(body.min(u64::MAX as i128)).unwrap_or(usize::MAX);
            outcome.errors.push(FrameError::TooLong {
                max: layout.max,
                seen,
            });
            return outcome;
        }
        let total = head + body as usize;
        if rest.len() < total {
            return outcome;
        }
        outcome.frames.push(rest[layout.strip..total].to_vec());
        rest = &rest[total..];
    }
}
