//! The fuzz targets' checks (feature `testing`), kept in core so that a plain `cargo test`
//! replays the committed corpora through exactly the same code as `cargo fuzz`.
//!
//! Each check reads a small configuration from the first bytes of `data` (so the fuzzer
//! explores limits, delimiters, layouts and chunkings too) and decodes the rest:
//!
//! | bytes | meaning |
//! |---|---|
//! | `data[0]` | maximum frame length (times 4 for length-prefixed) |
//! | `data[1]` | flags: bit 0 = skip over-long frames; other bits per framing |
//! | `data[2]`, `data[3]` | framing-specific (length-prefixed: adjustment, strip) |
//! | `data[4..8]` | chunk sizes, each `1 + b % 16` |
//! | `data[8..]` | the input stream |
//!
//! Checked: the decoder never panics, never leaves more than its bound buffered, leaves the
//! buffer alone on "need more", and yields the same frames and errors however the input is
//! chunked; in close mode these equal the [`reference`](mod@super::reference) oracle's.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use bytes::Bytes;

use crate::framing::reference::{self, feed_in_chunks, LengthLayout, Outcome};
use crate::framing::{Decoder, LengthCodec, LineCodec, NetstringCodec, Recovery};

const HEADER: usize = 8;

/// The configuration bytes and the input, split apart.
struct Case<'a> {
    max: u8,
    flags: u8,
    extra: [u8; 2],
    chunks: Vec<usize>,
    input: &'a [u8],
}

fn case(data: &[u8]) -> Option<Case<'_>> {
    let (head, input) = data.split_at_checked(HEADER)?;
    Some(Case {
        max: head[0],
        flags: head[1],
        extra: [head[2], head[3]],
        chunks: head[4..].iter().map(|b| 1 + usize::from(b % 16)).collect(),
        input,
    })
}

fn recovery(flags: u8) -> Recovery {
    if flags & 1 == 1 {
        Recovery::Skip
    } else {
        Recovery::Close
    }
}

/// Runs `decoder` over the input whole, in the case's chunks and byte by byte; requires one
/// outcome for all three (and, when given, the oracle's).
fn check<D: Decoder + Clone>(
    decoder: &D,
    case: &Case<'_>,
    bound: usize,
    oracle: Option<Outcome>,
) -> Result<(), String> {
    let run = |chunks: &[usize]| {
        feed_in_chunks(&mut decoder.clone(), case.input, chunks, bound)
            .map_err(|v| format!("{v} (chunks {chunks:?})"))
    };
    let whole = run(&[])?;
    for chunks in [&case.chunks[..], &[1]] {
        let split = run(chunks)?;
        if split != whole {
            return Err(format!(
                "chunking {chunks:?} changed the outcome: {split:?} vs whole {whole:?}"
            ));
        }
    }
    match oracle {
        Some(expected) if expected != whole => Err(format!(
            "decoder {whole:?} differs from reference {expected:?}"
        )),
        _ => Ok(()),
    }
}

/// Lines: flags bits 1-2 pick the delimiter (`\r\n`, `\n`, `\0`, `aba`).
pub fn check_lines(data: &[u8]) -> Result<(), String> {
    let Some(case) = case(data) else {
        return Ok(());
    };
    let delimiter: &'static [u8] = match (case.flags >> 1) & 3 {
        0 => b"\r\n",
        1 => b"\n",
        2 => b"\0",
        _ => b"aba",
    };
    let max = usize::from(case.max);
    let on_too_long = recovery(case.flags);
    let codec = LineCodec::new()
        .with_delimiter(Bytes::from_static(delimiter))
        .map_err(|e| format!("{e}"))?
        .with_max_length(max)
        .with_recovery(on_too_long);
    let oracle =
        (on_too_long == Recovery::Close).then(|| reference::lines(case.input, delimiter, max));
    check(&codec, &case, max + delimiter.len() - 1, oracle)
}

/// Netstrings.
pub fn check_netstrings(data: &[u8]) -> Result<(), String> {
    let Some(case) = case(data) else {
        return Ok(());
    };
    let max = usize::from(case.max);
    let on_too_long = recovery(case.flags);
    let codec = NetstringCodec::new()
        .with_max_length(max)
        .with_recovery(on_too_long);
    let oracle = (on_too_long == Recovery::Close).then(|| reference::netstrings(case.input, max));
    check(&codec, &case, 20 + 1 + max + 1, oracle)
}

/// Length-prefixed: flags bit 1 = little-endian, bits 2-4 = width - 1, bits 5-6 = offset;
/// `extra[0]` = adjustment (as `i8`, divided by 16), `extra[1]` = strip (modulo header + 1).
pub fn check_length_prefixed(data: &[u8]) -> Result<(), String> {
    let Some(case) = case(data) else {
        return Ok(());
    };
    let width = usize::from((case.flags >> 2) & 7) + 1;
    let offset = usize::from((case.flags >> 5) & 3);
    let layout = LengthLayout {
        offset,
        width,
        big_endian: case.flags & 2 == 0,
        adjustment: i64::from(case.extra[0] as i8 / 16),
        strip: usize::from(case.extra[1]) % (offset + width + 1),
        max: usize::from(case.max) * 4,
    };
    let on_too_long = recovery(case.flags);
    let builder = LengthCodec::builder()
        .length_field_offset(layout.offset)
        .length_field_width(layout.width)
        .length_adjustment(layout.adjustment)
        .strip(layout.strip)
        .max_length(layout.max)
        .recovery(on_too_long);
    let builder = if layout.big_endian {
        builder
    } else {
        builder.little_endian()
    };
    let codec = builder.build().map_err(|e| format!("{e}"))?;
    let oracle =
        (on_too_long == Recovery::Close).then(|| reference::length_prefixed(case.input, layout));
    check(&codec, &case, offset + width + layout.max, oracle)
}
