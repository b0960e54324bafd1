//! `decode`: takes a PROXY header, v1 or v2, off the front of a receive buffer.

use bytes::{Buf, BytesMut};

use crate::proxy::{v1, v2, Header, ParseError};

/// Whether the bytes at the start of a connection are a PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Detected {
    /// A v1 header (`PROXY `) starts here.
    V1,
    /// A v2 header (its 12-byte signature) starts here.
    V2,
    /// These bytes cannot start a header.
    NotProxy,
    /// Too few bytes to tell: they are a prefix of a header's start.
    NeedMore,
}

/// Tells from the first bytes of a connection whether a header starts there, as soon as the
/// bytes allow (one byte suffices for most other protocols).
#[inline]
pub fn detect(buf: &[u8]) -> Detected {
    // The common case first: a whole signature or prefix.
    if buf.starts_with(&v2::SIGNATURE) {
        return Detected::V2;
    }
    if buf.starts_with(v1::PREFIX) {
        return Detected::V1;
    }
    let matches = |magic: &[u8]| {
        let n = buf.len().min(magic.len());
        buf[..n] == magic[..n]
    };
    if matches(&v2::SIGNATURE) {
        if buf.len() >= v2::SIGNATURE.len() {
            Detected::V2
        } else {
            Detected::NeedMore
        }
    } else if matches(v1::PREFIX) {
        if buf.len() >= v1::PREFIX.len() {
            Detected::V1
        } else {
            Detected::NeedMore
        }
    } else {
        Detected::NotProxy
    }
}

/// Takes a PROXY header (v1 or v2) off the front of `buf`.
///
/// `Ok(None)`: not all of it is here yet, and `buf` is untouched. `Ok(Some(header))`: the
/// header's bytes are split off `buf` (its TLVs and Unix paths share them, no copy) and what
/// follows it stays in `buf`. `Err`: the bytes are not a valid header; `buf` is untouched, and
/// the connection should end. An error is reported as soon as the bytes in hand prove it, so a
/// peer cannot hold a connection open by sending a header that can never be valid; and the
/// outcome is the same however the bytes were split across reads.
///
/// A header longer than `max` bytes is refused with [`ParseError::TooLong`] (v1 headers are
/// never longer than 107 bytes; v2 headers at most [`MAX_V2_LEN`](crate::proxy::MAX_V2_LEN)).
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::proxy::{decode, MAX_V2_LEN};
///
/// let mut buf = BytesMut::from(&b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\nGET /"[..]);
/// let header = decode(&mut buf, MAX_V2_LEN).unwrap().unwrap();
/// assert_eq!(header.source(), Some("192.0.2.7:50000".parse().unwrap()));
/// assert_eq!(&buf[..], b"GET /");
///
/// let mut partial = BytesMut::from(&b"PROXY TCP4 192.0.2.7"[..]);
/// assert_eq!(decode(&mut partial, MAX_V2_LEN), Ok(None));
/// assert_eq!(partial.len(), 20);
/// ```
#[inline]
pub fn decode(buf: &mut BytesMut, max: usize) -> Result<Option<Header>, ParseError> {
    match detect(buf) {
        Detected::NeedMore => Ok(None),
        Detected::NotProxy => Err(ParseError::NotProxy),
        Detected::V1 => {
            let Some((header, len)) = v1::parse(buf)? else {
                return Ok(None);
            };
            if len > max {
                return Err(ParseError::TooLong);
            }
            buf.advance(len);
            Ok(Some(header))
        }
        Detected::V2 => {
            let Some(layout) = v2::check(buf, max)? else {
                return Ok(None);
            };
            Ok(Some(v2::take(buf, layout)))
        }
    }
}
