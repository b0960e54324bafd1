//! Properties of every framing (PR-4, FR-1): any chunking gives the reference's frames and
//! error at the same point; encode-then-decode is the identity; arbitrary bytes never panic
//! and never buffer past the limit.

use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::framing::reference::{self, feed_in_chunks, LengthLayout};
use crate::framing::{Decoder, Encoder, LengthCodec, LineCodec, NetstringCodec, Recovery};

/// Bytes from a small alphabet, so that delimiters, digits and colons actually occur.
fn noisy_bytes(alphabet: &'static [u8], max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(prop::sample::select(alphabet), 0..max_len)
}

fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    vec(1usize..12, 0..8)
}

fn delimiter() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        noisy_bytes(b"ab\r\n", 4).prop_filter("non-empty", |d| !d.is_empty()),
    ]
}

fn layout() -> impl Strategy<Value = LengthLayout> {
    (0usize..3, 1usize..=8, any::<bool>(), -4i64..4, 0usize..40).prop_flat_map(
        |(offset, width, big_endian, adjustment, max)| {
            (0..=offset + width).prop_map(move |strip| LengthLayout {
                offset,
                width,
                big_endian,
                adjustment,
                strip,
                max,
            })
        },
    )
}

fn length_codec(l: LengthLayout, recovery: Recovery) -> LengthCodec {
    let builder = LengthCodec::builder()
        .length_field_offset(l.offset)
        .length_field_width(l.width)
        .length_adjustment(l.adjustment)
        .strip(l.strip)
        .max_length(l.max)
        .recovery(recovery);
    let builder = if l.big_endian {
        builder
    } else {
        builder.little_endian()
    };
    builder.build().expect("generated layouts are valid")
}

/// Decodes `wire` in one piece and in `chunks`, requiring identical outcomes; returns it.
fn same_for_any_chunking<D: Decoder + Clone>(
    decoder: &D,
    wire: &[u8],
    chunks: &[usize],
    bound: usize,
) -> Result<reference::Outcome, TestCaseError> {
    let whole = feed_in_chunks(&mut decoder.clone(), wire, &[], bound);
    let split = feed_in_chunks(&mut decoder.clone(), wire, chunks, bound);
    let dribbled = feed_in_chunks(&mut decoder.clone(), wire, &[1], bound);
    let whole = whole.map_err(|v| TestCaseError::fail(alloc::format!("{v}")))?;
    prop_assert_eq!(Ok(whole.clone()), split);
    prop_assert_eq!(Ok(whole.clone()), dribbled);
    Ok(whole)
}

proptest! {
    #[test]
    fn lines_match_the_reference_for_any_chunking(
        input in noisy_bytes(b"ab\r\n", 64),
        delimiter in delimiter(),
        max in 0usize..10,
        chunks in chunk_sizes(),
    ) {
        let codec = LineCodec::new()
            .with_delimiter(Bytes::from(delimiter.clone()))
            .unwrap()
            .with_max_length(max);
        // LR-5: at most max + len(delimiter) - 1 bytes wait for a delimiter.
        let bound = max + delimiter.len() - 1;
        let outcome = same_for_any_chunking(&codec, &input, &chunks, bound)?;
        prop_assert_eq!(outcome, reference::lines(&input, &delimiter, max));
    }

    #[test]
    fn lines_skip_mode_is_chunking_independent_and_bounded(
        input in noisy_bytes(b"ab\r\n", 64),
        delimiter in delimiter(),
        max in 0usize..6,
        chunks in chunk_sizes(),
    ) {
        let codec = LineCodec::new()
            .with_delimiter(Bytes::from(delimiter.clone()))
            .unwrap()
            .with_max_length(max)
            .with_recovery(Recovery::Skip);
        let bound = max + delimiter.len() - 1;
        let outcome = same_for_any_chunking(&codec, &input, &chunks, bound)?;
        // Every delivered line respects the limit and holds no delimiter.
        for frame in &outcome.frames {
            prop_assert!(frame.len() <= max);
            prop_assert!(!frame.windows(delimiter.len()).any(|w| w == &delimiter[..]));
        }
    }

    #[test]
    fn lines_encode_then_decode_is_the_identity(
        lines in vec(noisy_bytes(b"ab\r\n", 12), 0..10),
        delimiter in delimiter(),
        chunks in chunk_sizes(),
    ) {
        let mut codec = LineCodec::new()
            .with_delimiter(Bytes::from(delimiter.clone()))
            .unwrap()
            .with_max_length(12);
        let mut wire = BytesMut::new();
        let mut sent = Vec::new();
        for line in lines {
            // Lines the peer would split are refused; everything accepted must round-trip.
            if let Ok(encoded) = codec.encode(Bytes::from(line.clone())) {
                encoded.write_to(&mut wire);
                sent.push(line);
            }
        }
        let outcome = feed_in_chunks(&mut codec, &wire, &chunks, usize::MAX).unwrap();
        prop_assert_eq!(outcome.frames, sent);
        prop_assert!(outcome.errors.is_empty());
    }

    #[test]
    fn netstrings_match_the_reference_for_any_chunking(
        input in prop_oneof![
            noisy_bytes(b"0123:,a", 48),
            vec(noisy_bytes(b"a:,", 12), 0..6).prop_map(|strings| {
                let mut wire = Vec::new();
                for s in strings {
                    wire.extend(alloc::format!("{}:", s.len()).as_bytes());
                    wire.extend(s);
                    wire.push(b',');
                }
                wire
            }),
        ],
        max in 0usize..15,
        chunks in chunk_sizes(),
    ) {
        let codec = NetstringCodec::new().with_max_length(max);
        // Length digits (at most 20 before an error), the colon, max payload bytes, the comma.
        let bound = 20 + 1 + max + 1;
        let outcome = same_for_any_chunking(&codec, &input, &chunks, bound)?;
        prop_assert_eq!(outcome, reference::netstrings(&input, max));
    }

    #[test]
    fn netstrings_skip_mode_is_chunking_independent_and_bounded(
        input in noisy_bytes(b"0123:,a", 64),
        max in 0usize..6,
        chunks in chunk_sizes(),
    ) {
        let codec = NetstringCodec::new().with_max_length(max).with_recovery(Recovery::Skip);
        let outcome = same_for_any_chunking(&codec, &input, &chunks, 20 + 1 + max + 1)?;
        for frame in &outcome.frames {
            prop_assert!(frame.len() <= max);
        }
    }

    #[test]
    fn netstrings_encode_then_decode_is_the_identity(
        strings in vec(vec(any::<u8>(), 0..40), 0..8),
        chunks in chunk_sizes(),
    ) {
        let mut codec = NetstringCodec::new().with_max_length(39);
        let mut wire = BytesMut::new();
        for s in &strings {
            codec.encode(Bytes::from(s.clone())).unwrap().write_to(&mut wire);
        }
        let outcome = feed_in_chunks(&mut codec, &wire, &chunks, usize::MAX).unwrap();
        prop_assert_eq!(outcome.frames, strings);
        prop_assert!(outcome.errors.is_empty());
    }

    #[test]
    fn length_prefixed_matches_the_reference_for_any_chunking(
        input in vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(3), any::<u8>()], 0..64),
        layout in layout(),
        chunks in chunk_sizes(),
    ) {
        let codec = length_codec(layout, Recovery::Close);
        // IN-2: the header and at most `max` body bytes.
        let bound = layout.offset + layout.width + layout.max;
        let outcome = same_for_any_chunking(&codec, &input, &chunks, bound)?;
        prop_assert_eq!(outcome, reference::length_prefixed(&input, layout));
    }

    #[test]
    fn length_prefixed_skip_mode_is_chunking_independent_and_bounded(
        input in vec(prop_oneof![Just(0u8), Just(1), Just(9), any::<u8>()], 0..64),
        layout in layout(),
        chunks in chunk_sizes(),
    ) {
        let codec = length_codec(layout, Recovery::Skip);
        let bound = layout.offset + layout.width + layout.max;
        same_for_any_chunking(&codec, &input, &chunks, bound)?;
    }

    #[test]
    fn length_prefixed_encode_then_decode_is_the_identity(
        payloads in vec(vec(any::<u8>(), 0..300), 0..8),
        width in prop::sample::select(&[1usize, 2, 3, 4, 8][..]),
        big_endian in any::<bool>(),
        chunks in vec(1usize..400, 0..8),
    ) {
        let layout = LengthLayout {
            offset: 0, width, big_endian, adjustment: 0, strip: width, max: 99_999,
        };
        let mut codec = length_codec(layout, Recovery::Close);
        let mut wire = BytesMut::new();
        let mut sent = Vec::new();
        for p in payloads {
            // Int8 cannot express 256+: refused, never truncated.
            match codec.encode(Bytes::from(p.clone())) {
                Ok(encoded) => {
                    encoded.write_to(&mut wire);
                    sent.push(p);
                }
                Err(_) => prop_assert!(width == 1 && p.len() > 255),
            }
        }
        let outcome = feed_in_chunks(&mut codec, &wire, &chunks, usize::MAX).unwrap();
        prop_assert_eq!(outcome.frames, sent);
        prop_assert!(outcome.errors.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic_any_framing(
        input in vec(any::<u8>(), 0..256),
        chunks in chunk_sizes(),
    ) {
        let _ = feed_in_chunks(&mut LineCodec::new().with_max_length(16), &input, &chunks, 17)
            .unwrap();
        let _ = feed_in_chunks(&mut NetstringCodec::new().with_max_length(16), &input, &chunks, 38)
            .unwrap();
        for codec in [LengthCodec::int8(), LengthCodec::int16(), LengthCodec::int32()] {
            let bound = codec.length_field_width() + 99_999;
            let _ = feed_in_chunks(&mut codec.clone(), &input, &chunks, bound).unwrap();
        }
    }
}
