//! Version 1: the text header, `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::Bytes;

use crate::proxy::header::{Addresses, Command, Header, SocketKind, Version};
use crate::proxy::ParseError;

/// The longest v1 header the specification allows, `\r\n` included.
pub const MAX_V1_LEN: usize = 107;

/// What every v1 header starts with.
pub(crate) const PREFIX: &[u8] = b"PROXY ";

/// Parses a v1 header at the start of `buf` (which starts with [`PREFIX`]): the header and its
/// length, `None` when the line is not complete yet.
///
/// Only the bytes up to the line's `\n` (or the first 107) are looked at, so whatever follows
/// the header cannot change the outcome, and an error is reported as soon as the bytes seen
/// prove it (a binary byte, 107 bytes without a line end).
#[inline]
pub(crate) fn parse(buf: &[u8]) -> Result<Option<(Header, usize)>, ParseError> {
    let window = &buf[..buf.len().min(MAX_V1_LEN)];
    let Some(end) = memchr::memchr(b'\n', window) else {
        // No line end yet: refuse now if what is here can never become a header.
        if !window.iter().all(|&b| printable(b)) {
            return Err(ParseError::V1Malformed);
        }
        return if window.len() == MAX_V1_LEN {
            Err(ParseError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    if !window[..end].iter().all(|&b| printable(b)) {
        return Err(ParseError::V1Malformed);
    }
    let line = buf
        .get(PREFIX.len()..end)
        .and_then(|line| line.strip_suffix(b"\r"))
        .ok_or(ParseError::V1Malformed)?;
    Ok(Some((parse_line(line)?, end + 1)))
}

/// What a v1 line may hold before its `\n`: printable ASCII, spaces and `\r`.
#[inline]
fn printable(byte: u8) -> bool {
    matches!(byte, b'\r' | 0x20..=0x7e)
}

/// The part after `PROXY ` and before `\r\n`, read byte by byte (no UTF-8 pass, no
/// string splitting: this is the hot path of a PROXY listener).
fn parse_line(line: &[u8]) -> Result<Header, ParseError> {
    let (family, rest) = match memchr::memchr(b' ', line) {
        Some(at) => (&line[..at], &line[at + 1..]),
        None => (line, &[][..]),
    };
    let (source, destination) = match family {
        // "the receiver must ignore anything presented before the CRLF is found"
        b"UNKNOWN" => return Ok(unknown()),
        b"TCP4" => {
            let [s, d, sp, dp] = fields(rest)?;
            (
                (IpAddr::V4(ipv4(s)?), port(sp)?),
                (IpAddr::V4(ipv4(d)?), port(dp)?),
            )
        }
        b"TCP6" => {
            let [s, d, sp, dp] = fields(rest)?;
            (
                (IpAddr::V6(ipv6(s)?), port(sp)?),
                (IpAddr::V6(ipv6(d)?), port(dp)?),
            )
        }
        _ => return Err(ParseError::V1Malformed),
    };
    Ok(Header {
        version: Version::V1,
        command: Command::Proxy,
        addresses: Addresses::Inet {
            source: SocketAddr::from(source),
            destination: SocketAddr::from(destination),
            kind: SocketKind::Stream,
        },
        tlvs: Bytes::new(),
    })
}

fn unknown() -> Header {
    Header {
        version: Version::V1,
        command: Command::Proxy,
        addresses: Addresses::Unknown,
        tlvs: Bytes::new(),
    }
}

/// Exactly four non-empty fields separated by single spaces.
fn fields(rest: &[u8]) -> Result<[&[u8]; 4], ParseError> {
    let mut out: [&[u8]; 4] = [&[]; 4];
    let mut tail = rest;
    for (i, slot) in out.iter_mut().enumerate() {
        let field = if i == 3 {
            core::mem::take(&mut tail)
        } else {
            let at = memchr::memchr(b' ', tail).ok_or(ParseError::V1Malformed)?;
            let field = &tail[..at];
            tail = &tail[at + 1..];
            field
        };
        if field.is_empty() || (i == 3 && memchr::memchr(b' ', field).is_some()) {
            return Err(ParseError::V1Malformed);
        }
        *slot = field;
    }
    Ok(out)
}

/// A dotted-quad IPv4 address, as strict as `Ipv4Addr::from_str`: four decimal octets of at
/// most 255, no leading zero but for `0` itself.
pub(crate) fn ipv4(text: &[u8]) -> Result<Ipv4Addr, ParseError> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for octet in &mut octets {
        let part = parts.next().ok_or(ParseError::V1Malformed)?;
        *octet = u8::try_from(decimal(part, 3)?).map_err(|_| ParseError::V1Malformed)?;
    }
    if parts.next().is_some() {
        return Err(ParseError::V1Malformed);
    }
    Ok(Ipv4Addr::from(octets))
}

fn ipv6(text: &[u8]) -> Result<Ipv6Addr, ParseError> {
    core::str::from_utf8(text)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or(ParseError::V1Malformed)
}

/// A decimal port, 0 to 65535, digits only (no sign, no leading zero but for `0` itself).
fn port(text: &[u8]) -> Result<u16, ParseError> {
    u16::try_from(decimal(text, 5)?).map_err(|_| ParseError::V1Malformed)
}

/// One to `max_digits` decimal digits without a leading zero (but for `0` itself).
fn decimal(text: &[u8], max_digits: usize) -> Result<u32, ParseError> {
    if text.is_empty() || text.len() > max_digits || (text.len() > 1 && text[0] == b'0') {
        return Err(ParseError::V1Malformed);
    }
    text.iter().try_fold(0u32, |n, &b| match b {
        b'0'..=b'9' => Ok(n * 10 + u32::from(b - b'0')),
        _ => Err(ParseError::V1Malformed),
    })
}
