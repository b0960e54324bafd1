//! Length-prefixed framing: IN-1..IN-4, DF-4, DF-5, and the builder's layouts.

use alloc::vec;

use bytes::{Bytes, BytesMut};

use super::{decode_all, owned};
use crate::framing::{Decoder, EncodeError, Encoder, FrameError, LengthCodec, Recovery};

#[test]
fn twisted_prefixes_are_unsigned_big_endian() {
    // DF-5
    let (frames, _) = decode_all(&mut LengthCodec::int8(), b"\x02hi\xff");
    assert_eq!(frames, owned(&[b"hi"]));
    let (frames, _) = decode_all(&mut LengthCodec::int16(), b"\x00\x02hi");
    assert_eq!(frames, owned(&[b"hi"]));
    let (frames, _) = decode_all(
        &mut LengthCodec::int32(),
        b"\x00\x00\x00\x02hi\x00\x00\x00\x00",
    );
    assert_eq!(
        frames,
        owned(&[b"hi", b""]),
        "IN-1: zero-length frames are valid"
    );
}

#[test]
fn int16_length_of_255_and_above_uses_both_bytes() {
    let mut input = vec![0x01, 0x00];
    input.extend(core::iter::repeat_n(7u8, 256));
    let (frames, error) = decode_all(&mut LengthCodec::int16(), &input);
    assert_eq!((frames[0].len(), error), (256, None));
}

#[test]
fn over_limit_prefix_is_refused_before_any_payload() {
    // IN-2 (probed): the prefix alone triggers it; earlier frames were delivered.
    let (frames, error) = decode_all(
        &mut LengthCodec::int32(),
        b"\x00\x00\x00\x01a\x00\x01\x86\xa0",
    );
    assert_eq!(frames, owned(&[b"a"]));
    assert_eq!(
        error,
        Some(FrameError::TooLong {
            max: 99_999,
            seen: 100_000
        })
    );
    // Exactly the maximum is accepted (IN-1).
    let mut max = vec![0x00, 0x01, 0x86, 0x9f];
    max.extend(core::iter::repeat_n(1u8, 99_999));
    let (frames, error) = decode_all(&mut LengthCodec::int32(), &max);
    assert_eq!((frames[0].len(), error), (99_999, None));
}

#[test]
fn need_more_leaves_a_partial_header_and_body_in_place() {
    let mut codec = LengthCodec::int32();
    let mut buf = BytesMut::from(&b"\x00\x00"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\x00\x03ab");
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 6);
    buf.extend_from_slice(b"c");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "abc");
}

#[test]
fn encoder_refuses_what_the_peer_would_refuse() {
    // IN-4: Twisted's Int32 sender emits 100,000 bytes its peer refuses; ours does not.
    assert_eq!(
        LengthCodec::int32().encode(Bytes::from(vec![0; 100_000])),
        Err(EncodeError::TooLong {
            max: 99_999,
            len: 100_000
        })
    );
    // Int8 is limited by its prefix (DF-4): 255.
    assert_eq!(
        LengthCodec::int8().encode(Bytes::from(vec![0; 256])),
        Err(EncodeError::TooLong { max: 255, len: 256 })
    );
    let e = LengthCodec::int16()
        .encode(Bytes::from_static(b"abc"))
        .unwrap();
    assert_eq!(e.header.as_slice(), b"\x00\x03");
    assert_eq!(e.payload, "abc");
}

#[test]
fn builder_layouts_little_endian_three_and_eight_bytes() {
    let mut le3 = LengthCodec::builder()
        .length_field_width(3)
        .little_endian()
        .build()
        .unwrap();
    let wire = le3.encode(Bytes::from_static(b"xyz")).unwrap().to_vec();
    assert_eq!(wire, b"\x03\x00\x00xyz");
    assert_eq!(decode_all(&mut le3, &wire).0, owned(&[b"xyz"]));

    let mut be8 = LengthCodec::builder()
        .length_field_width(8)
        .build()
        .unwrap();
    let wire = be8.encode(Bytes::from_static(b"q")).unwrap().to_vec();
    assert_eq!(wire, b"\x00\x00\x00\x00\x00\x00\x00\x01q");
    assert_eq!(decode_all(&mut be8, &wire).0, owned(&[b"q"]));
    // An 8-byte field declaring 2^64 - 1 bytes is refused from the header.
    let (_, error) = decode_all(&mut be8, &[0xff; 8]);
    assert!(matches!(error, Some(FrameError::TooLong { .. })));
}

#[test]
fn builder_offset_adjustment_and_strip_keep_the_header_when_asked() {
    // Field counts the whole frame (header included): adjustment -3; keep the header.
    let mut codec = LengthCodec::builder()
        .length_field_offset(1)
        .length_field_width(2)
        .length_adjustment(-3)
        .strip(0)
        .build()
        .unwrap();
    let (frames, error) = decode_all(&mut codec, b"T\x00\x05hiU\x00\x03");
    assert_eq!(frames, owned(&[b"T\x00\x05hi", b"U\x00\x03"]));
    assert_eq!(error, None);
    // Encoding moves the offset bytes in front of the length field.
    let wire = codec.encode(Bytes::from_static(b"Thi")).unwrap().to_vec();
    assert_eq!(wire, b"T\x00\x05hi");
    // A field smaller than the adjustment is malformed, not a huge length.
    let (_, error) = decode_all(&mut codec, b"T\x00\x01");
    assert_eq!(
        error,
        Some(FrameError::malformed(
            "length-prefixed: length field minus adjustment is negative"
        ))
    );
}

#[test]
fn builder_refuses_impossible_layouts() {
    assert!(LengthCodec::builder()
        .length_field_width(0)
        .build()
        .is_err());
    assert!(LengthCodec::builder()
        .length_field_width(9)
        .build()
        .is_err());
    assert!(LengthCodec::builder().strip(5).build().is_err());
    assert!(LengthCodec::builder()
        .length_field_offset(40)
        .build()
        .is_err());
}

#[test]
fn skip_recovery_discards_the_body_as_it_arrives() {
    let mut codec = LengthCodec::int16()
        .with_max_length(2)
        .with_recovery(Recovery::Skip);
    let mut buf = BytesMut::from(&b"\x00\x05ab"[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong { max: 2, seen: 5 })
    );
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert!(buf.is_empty(), "the skipped body is never buffered");
    buf.extend_from_slice(b"cde\x00\x02ok");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "ok");
}
