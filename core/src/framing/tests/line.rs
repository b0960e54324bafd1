//! Line framing: LR-1..LR-5, LR-12, LO-5, DF-1, DF-2.

use alloc::vec;

use bytes::{Bytes, BytesMut};

use super::{decode_all, owned};
use crate::framing::{Decoder, EncodeError, Encoder, FrameError, LineCodec, Recovery};

#[test]
fn defaults_are_twisteds_crlf_and_16384() {
    // DF-1, DF-2
    let codec = LineCodec::new();
    assert_eq!(codec.delimiter(), b"\r\n");
    assert_eq!(codec.max_length(), 16_384);
}

#[test]
fn lone_cr_and_lf_are_ordinary_bytes_and_empty_lines_are_frames() {
    // LR-3 (probed): `a\rb\nc` is one line; empty lines are delivered as b"".
    let (frames, error) = decode_all(&mut LineCodec::new(), b"a\rb\nc\r\n\r\n\r\nx");
    assert_eq!(frames, owned(&[b"a\rb\nc", b"", b""]));
    assert_eq!(error, None);
}

#[test]
fn boundary_max_5_waits_at_6_bytes_and_fails_at_7() {
    // LR-5 (probed: MAX 5 -> 6 buffered bytes wait, 7 trigger).
    let mut codec = LineCodec::new().with_max_length(5);
    let mut buf = BytesMut::from(&b"12345\r"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    assert_eq!(buf, &b"12345\r"[..], "need-more leaves the buffer intact");
    // The \n of a MAX-length line arriving in its own chunk is still accepted (Twisted #6556).
    buf.extend_from_slice(b"\n");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "12345");

    let mut buf = BytesMut::from(&b"123456"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"7");
    assert_eq!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong { max: 5, seen: 7 })
    );
}

#[test]
fn complete_line_one_over_the_maximum_is_too_long() {
    // LR-4: strictly greater than MAX_LENGTH; exactly MAX_LENGTH is accepted.
    let (frames, error) = decode_all(&mut LineCodec::new().with_max_length(3), b"abc\r\nabcd\r\n");
    assert_eq!(frames, owned(&[b"abc"]));
    assert_eq!(error, Some(FrameError::TooLong { max: 3, seen: 5 }));
}

#[test]
fn line_only_boundary_follows_lr5_not_lo5() {
    // LO-5 rejects a MAX-length line whose \r and \n are split; we follow LR-5 for both.
    let mut codec = LineCodec::new().with_max_length(4);
    let mut buf = BytesMut::from(&b"abcd\r"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"\n");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "abcd");
}

#[test]
fn errors_are_sticky_until_reset() {
    let mut codec = LineCodec::new().with_max_length(1);
    let mut buf = BytesMut::from(&b"abc"[..]);
    let error = codec.decode(&mut buf).unwrap_err();
    let mut buf = BytesMut::from(&b"ok\r\n"[..]);
    assert_eq!(codec.decode(&mut buf), Err(error));
    codec.reset();
    let mut buf = BytesMut::from(&b"k\r\n"[..]);
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "k");
}

#[test]
fn skip_recovery_drops_the_long_line_and_goes_on() {
    let mut codec = LineCodec::new()
        .with_max_length(3)
        .with_recovery(Recovery::Skip);
    let mut buf = BytesMut::new();
    let mut frames = vec![];
    let mut errors = 0;
    // The long line arrives in pieces: it is discarded as it comes, never buffered whole.
    for chunk in [
        &b"ok\r\nwaytoo"[..],
        b"longline",
        b"stillgoing\r",
        b"\nyes\r\n",
    ] {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => {
                    assert!(buf.len() <= 4, "never more than max + delimiter - 1");
                    break;
                }
                Err(FrameError::TooLong { max: 3, seen: 5 }) => errors += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
    }
    assert_eq!(frames, ["ok", "yes"]);
    assert_eq!(errors, 1);
}

#[test]
fn single_byte_and_long_delimiters_split_at_the_first_full_occurrence() {
    let mut nul = LineCodec::new().with_delimiter(&b"\0"[..]).unwrap();
    assert_eq!(decode_all(&mut nul, b"a\0\0b").0, owned(&[b"a", b""]));
    let mut boundary = LineCodec::new().with_delimiter(&b"--END--"[..]).unwrap();
    let (frames, _) = decode_all(&mut boundary, b"x--END-y--END----END--z");
    assert_eq!(frames, owned(&[b"x--END-y", b""]));
}

#[test]
fn delimiter_straddling_two_reads_is_found() {
    // FR-1: the search resumes `len - 1` bytes before the mark.
    let mut codec = LineCodec::new().with_delimiter(&b"<>!"[..]).unwrap();
    let mut buf = BytesMut::from(&b"hello<"[..]);
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b">");
    assert_eq!(codec.decode(&mut buf), Ok(None));
    buf.extend_from_slice(b"!rest");
    assert_eq!(codec.decode(&mut buf).unwrap().unwrap(), "hello");
    assert_eq!(buf, &b"rest"[..]);
}

#[test]
fn empty_delimiter_is_refused() {
    assert!(LineCodec::new().with_delimiter(Bytes::new()).is_err());
}

#[test]
fn encoder_appends_the_delimiter_and_refuses_what_the_peer_would_split() {
    // LR-12 sends anything; we refuse frames the peer would read differently.
    let mut codec = LineCodec::new().with_max_length(8);
    let line = codec.encode(Bytes::from_static(b"hi")).unwrap();
    assert_eq!(line.to_vec(), b"hi\r\n");
    assert!(
        line.header.is_empty(),
        "payload kept apart from the delimiter"
    );
    assert_eq!(
        codec.encode(Bytes::from_static(b"a\r\nb")),
        Err(EncodeError::ContainsDelimiter)
    );
    assert_eq!(
        codec.encode(Bytes::from_static(b"123456789")),
        Err(EncodeError::TooLong { max: 8, len: 9 })
    );
    // "ab\r" + "\r\n" reads back as "ab\r": allowed.
    assert!(codec.encode(Bytes::from_static(b"ab\r")).is_ok());
    // With a self-overlapping delimiter the tail can complete it early.
    let mut aba = LineCodec::new().with_delimiter(&b"aba"[..]).unwrap();
    assert_eq!(
        aba.encode(Bytes::from_static(b"xab")),
        Err(EncodeError::ContainsDelimiter)
    );
    assert!(aba.encode(Bytes::from_static(b"ab")).is_err()); // "ababa"
    assert!(aba.encode(Bytes::from_static(b"xa")).is_ok()); // "xaaba" ends after "xa"
}

#[test]
fn frames_share_the_receive_buffer_instead_of_copying() {
    let mut codec = LineCodec::new();
    let mut buf = BytesMut::from(&b"first\r\nsecond\r\n"[..]);
    let base = buf.as_ptr();
    let first = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(first.as_ptr(), base);
    let second = codec.decode(&mut buf).unwrap().unwrap();
    assert_eq!(second.as_ptr(), base.wrapping_add(7));
}
