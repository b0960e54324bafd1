//! The box codec against Twisted's bytes: splitting, limits, chunking.

use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

#[test]
fn twisted_call_boxes_decode_into_their_keys_and_values() {
    let mut buf = BytesMut::from(TWISTED_CALLS);
    let boxes = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(boxes.len(), 2);
    assert_eq!(boxes[0].get(b"_command").unwrap(), "Sum");
    assert_eq!(boxes[0].get(b"a").unwrap(), "13");
    assert_eq!(boxes[1].get(b"numerator").unwrap(), "1234");
    assert_eq!(boxes[1].get(b"_ask").unwrap(), "2");
}

#[test]
fn boxes_serialize_with_sorted_keys_byte_for_byte_as_twisted() {
    let mut sum = AmpBox::new();
    for (k, v) in [("b", "81"), ("a", "13"), ("_command", "Sum"), ("_ask", "1")] {
        sum.insert(k, v).unwrap();
    }
    assert_eq!(&sum.to_wire()[..], &TWISTED_CALLS[..sum.to_wire().len()]);
    // Decode then re-serialize: the same bytes.
    let mut buf = BytesMut::from(TWISTED_ANSWERS);
    let mut again = Vec::new();
    for b in decode_all(&mut BoxCodec::new(), &mut buf).unwrap() {
        again.extend_from_slice(&b.to_wire());
    }
    assert_eq!(again, TWISTED_ANSWERS);
}

#[test]
fn values_are_slices_of_the_received_bytes_not_copies() {
    let frame = Bytes::from_static(b"\x00\x01k\x00\x03abc");
    let amp_box = AmpBox::parse(frame.clone()).unwrap();
    let value = amp_box.get(b"k").unwrap();
    assert_eq!(value.as_ptr(), frame[5..].as_ptr());
}

#[test]
fn need_more_leaves_the_buffer_untouched_at_every_split() {
    let mut codec = BoxCodec::new();
    for cut in 0..SUM_ANSWER.len() {
        let mut buf = BytesMut::from(&SUM_ANSWER[..cut]);
        assert_eq!(codec.decode(&mut buf), Ok(None), "cut {cut}");
        assert_eq!(&buf[..], &SUM_ANSWER[..cut]);
        buf.extend_from_slice(&SUM_ANSWER[cut..]);
        assert!(codec.decode(&mut buf).unwrap().is_some(), "cut {cut}");
    }
}

#[test]
fn a_key_over_255_bytes_is_malformed_from_its_length_alone() {
    let mut codec = BoxCodec::new();
    let mut buf = BytesMut::from(&b"\x01\x00"[..]);
    let error = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(error, FrameError::Malformed(_)));
    assert_eq!(
        Reason::from(error),
        Reason::protocol("amp: key longer than 255 bytes")
    );
    // Sticky until reset.
    let mut fine = BytesMut::from(SUM_ANSWER);
    assert_eq!(codec.decode(&mut fine), Err(error));
}

#[test]
fn a_box_over_the_bound_is_refused_before_its_end_arrives() {
    let mut codec = BoxCodec::new().with_max_length(64);
    let mut buf = BytesMut::from(&b"\x00\x01a\x00\xff"[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong { max: 64, seen: 262 })
    );
    assert_eq!(
        Reason::from(FrameError::TooLong { max: 64, seen: 262 }),
        Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max: 64,
            seen: 262
        }
    );
}

#[test]
fn a_value_of_exactly_65535_bytes_goes_through_the_codec() {
    let mut amp_box = AmpBox::new();
    amp_box.insert("v", vec![7u8; 65_535]).unwrap();
    assert_eq!(
        amp_box.insert("w", vec![7u8; 65_536]),
        Err(BoxError::ValueTooLong { len: 65_536 })
    );
    let mut buf = BytesMut::from(&amp_box.to_wire()[..]);
    let back = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert_eq!(back[0].get(b"v").unwrap().len(), 65_535);
}

#[test]
fn the_encoder_adds_the_terminator_and_refuses_what_is_not_pairs() {
    let mut codec = BoxCodec::new();
    let encoded = codec
        .encode(Bytes::from_static(b"\x00\x01a\x00\x011"))
        .unwrap();
    assert_eq!(encoded.to_vec(), b"\x00\x01a\x00\x011\x00\x00");
    for bad in [&b"\x00\x01a"[..], b"\x00\x00", b"\x01\x00"] {
        assert!(
            codec.encode(Bytes::copy_from_slice(bad)).is_err(),
            "{bad:?}"
        );
    }
}

/// Bytes that often form boxes: small lengths, short keys.
fn boxy_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(vec![0u8, 0]),
            (1u8..4).prop_map(|n| vec![0, n]),
            Just(b"ab".to_vec()),
            Just(vec![1u8, 0]),
            any::<u8>().prop_map(|b| vec![b]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn outcome_in_chunks(input: &[u8], sizes: &[usize]) -> (Vec<AmpBox>, Option<FrameError>) {
    let mut codec = BoxCodec::new().with_max_length(48);
    let mut buf = BytesMut::new();
    let mut boxes = Vec::new();
    let mut rest = input;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).min(rest.len()).max(1);
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let before = buf.clone();
            match codec.decode(&mut buf) {
                Ok(Some(pairs)) => boxes.push(AmpBox::parse(pairs).unwrap()),
                Ok(None) => {
                    assert_eq!(buf, before, "need more must leave the buffer alone");
                    assert!(buf.len() <= 48, "buffered past the bound");
                    break;
                }
                Err(error) => return (boxes, Some(error)),
            }
        }
    }
    (boxes, None)
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_boxes_and_error(
        input in boxy_bytes(),
        sizes in proptest::collection::vec(1usize..9, 1..6),
    ) {
        let whole = outcome_in_chunks(&input, &[usize::MAX]);
        prop_assert_eq!(outcome_in_chunks(&input, &sizes), whole.clone());
        prop_assert_eq!(outcome_in_chunks(&input, &[1]), whole);
    }

    #[test]
    fn serialized_boxes_decode_to_themselves(
        pairs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..8), proptest::collection::vec(any::<u8>(), 0..20)),
            0..6,
        ),
    ) {
        let mut amp_box = AmpBox::new();
        for (k, v) in pairs {
            amp_box.insert(k, v).unwrap();
        }
        let mut buf = BytesMut::from(&amp_box.to_wire()[..]);
        let back = BoxCodec::new().decode(&mut buf).unwrap().unwrap();
        let back = AmpBox::parse(back).unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(back.serialize(), amp_box.serialize());
    }
}
