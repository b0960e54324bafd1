//! Netstring framing: NS-1..NS-5, DF-3.

use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use super::{decode_all, owned};
use crate::framing::{Decoder, EncodeError, Encoder, FrameError, NetstringCodec, Recovery};
use crate::{Limit, Reason};

fn malformed(message: &'static str) -> Option<FrameError> {
    Some(FrameError::malformed(message))
}

#[test]
fn wire_format_examples() {
    // NS-1: payload bytes are arbitrary, `:` `,` and CRLF included; 0:, is an empty string.
    let (frames, error) = decode_all(&mut NetstringCodec::new(), b"3:abc,0:,5:a:,\r\n,");
    assert_eq!(frames, owned(&[b"abc", b"", b"a:,\r\n"]));
    assert_eq!(error, None);
}

#[test]
fn length_grammar_table() {
    // NS-2 (probed): `0` or a non-zero digit then digits; everything else is a parse error.
    let table: &[(&[u8], Option<FrameError>)] = &[
        (b"0:,", None),
        (b"10:0123456789,", None),
        (
            b"03:abc,",
            malformed("netstring: length has a leading zero"),
        ),
        (b"00:,", malformed("netstring: length has a leading zero")),
        (b"-1:a,", malformed("netstring: invalid length")),
        (b"+1:a,", malformed("netstring: invalid length")),
        (b" 3:abc,", malformed("netstring: invalid length")),
        (b"3 :abc,", malformed("netstring: invalid length")),
        (b"0x3:abc,", malformed("netstring: invalid length")),
        (b"a:", malformed("netstring: invalid length")),
        (b":abc,", malformed("netstring: missing length")),
        (b"3:abcd", malformed("netstring: missing comma")),
        (b"3:abc;", malformed("netstring: missing comma")),
    ];
    for (input, expected) in table {
        let (_, error) = decode_all(&mut NetstringCodec::new(), input);
        assert_eq!(
            &error,
            expected,
            "input {:?}",
            Bytes::copy_from_slice(input)
        );
    }
}

#[test]
fn over_limit_length_is_rejected_from_the_digits_before_the_colon() {
    // NS-3 (probed): `1000000` without a colon fails at once, `99999` keeps waiting.
    let mut codec = NetstringCodec::new();
    let mut buf = BytesMut::from(&b"99999"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), 5, "need-more leaves the digits in place");
    let (_, error) = decode_all(&mut NetstringCodec::new(), b"100000");
    assert_eq!(
        error,
        Some(FrameError::TooLong {
            max: 99_999,
            seen: 100_000
        })
    );
    // A length equal to MAX_LENGTH is accepted (NS-1).
    let mut max = b"99999:".to_vec();
    max.extend(core::iter::repeat_n(b'x', 99_999));
    max.push(b',');
    let (frames, error) = decode_all(&mut NetstringCodec::new(), &max);
    assert_eq!((frames.len(), frames[0].len(), error), (1, 99_999, None));
}

#[test]
fn complete_over_limit_length_never_waits_for_the_payload() {
    // NS-4
    let (_, error) = decode_all(&mut NetstringCodec::new().with_max_length(10), b"11:");
    assert_eq!(error, Some(FrameError::TooLong { max: 10, seen: 11 }));
}

#[test]
fn strings_before_an_error_are_delivered() {
    // NS-6
    let (frames, error) = decode_all(&mut NetstringCodec::new(), b"1:a,2:bc,x");
    assert_eq!(frames, owned(&[b"a", b"bc"]));
    assert_eq!(error, malformed("netstring: invalid length"));
}

#[test]
fn errors_map_onto_reasons() {
    let reason = Reason::from(FrameError::TooLong { max: 9, seen: 10 });
    assert_eq!(
        reason,
        Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max: 9,
            seen: 10
        }
    );
    assert_eq!(
        Reason::from(FrameError::malformed("netstring: missing comma")),
        Reason::protocol("netstring: missing comma")
    );
}

#[test]
fn skip_recovery_discards_the_declared_length_and_goes_on() {
    let mut codec = NetstringCodec::new()
        .with_max_length(3)
        .with_recovery(Recovery::Skip);
    let mut buf = BytesMut::from(&b"2:ok,12:skipthispart,3:yes,"[..]);
    let mut frames = Vec::new();
    let mut errors = Vec::new();
    loop {
        match codec.decode(&mut buf) {
            Ok(Some(f)) => frames.push(f),
            Ok(None) => break,
            Err(e) => errors.push(e),
        }
    }
    assert_eq!(frames, ["ok", "yes"]);
    assert_eq!(errors, [FrameError::TooLong { max: 3, seen: 12 }]);
    // Malformed input is never skippable.
    assert_eq!(
        codec.recovery(&FrameError::malformed("netstring: missing comma")),
        Recovery::Close
    );
}

#[test]
fn encoder_formats_ns1_and_refuses_over_limit() {
    let mut codec = NetstringCodec::new().with_max_length(12);
    let e = codec.encode(Bytes::from_static(b"hello world!")).unwrap();
    assert_eq!(e.header.as_slice(), b"12:");
    assert_eq!(e.to_vec(), b"12:hello world!,");
    assert_eq!(
        codec.encode(Bytes::from_static(b"hello world!!")),
        Err(EncodeError::TooLong { max: 12, len: 13 })
    );
    assert_eq!(codec.encode(Bytes::new()).unwrap().to_vec(), b"0:,");
}
