//! Version 1: the text header, `PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n`.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use core::str::FromStr;

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
    // Printable ASCII only (checked above), so this cannot fail.
    let line = core::str::from_utf8(line).map_err(|_| ParseError::V1Malformed)?;
    Ok(Some((parse_line(line)?, end + 1)))
}

/// What a v1 line may hold before its `\n`: printable ASCII, spaces and `\r`.
fn printable(byte: u8) -> bool {
    matches!(byte, b'\r' | 0x20..=0x7e)
}

/// The part after `PROXY ` and before `\r\n`.
fn parse_line(line: &str) -> Result<Header, ParseError> {
    let (family, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (source, destination) = match family {
        // "the receiver must ignore anything presented before the CRLF is found"
        "UNKNOWN" => return Ok(unknown()),
        "TCP4" => {
            let (s, d, sp, dp) = fields(rest)?;
            (
                (IpAddr::V4(ip::<Ipv4Addr>(s)?), port(sp)?),
                (IpAddr::V4(ip::<Ipv4Addr>(d)?), port(dp)?),
            )
        }
        "TCP6" => {
            let (s, d, sp, dp) = fields(rest)?;
            (
                (IpAddr::V6(ip::<Ipv6Addr>(s)?), port(sp)?),
                (IpAddr::V6(ip::<Ipv6Addr>(d)?), port(dp)?),
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

/// Exactly four fields separated by single spaces.
fn fields(rest: &str) -> Result<(&str, &str, &str, &str), ParseError> {
    let mut parts = rest.split(' ');
    let mut next = || parts.next().filter(|p| !p.is_empty());
    let found = (next(), next(), next(), next());
    match (found, parts.next()) {
        ((Some(s), Some(d), Some(sp), Some(dp)), None) => Ok((s, d, sp, dp)),
        _ => Err(ParseError::V1Malformed),
    }
}

fn ip<T: FromStr>(text: &str) -> Result<T, ParseError> {
    text.parse().map_err(|_| ParseError::V1Malformed)
}

/// A decimal port, 0 to 65535, digits only (no sign, no leading zero but for `0` itself).
fn port(text: &str) -> Result<u16, ParseError> {
    let digits = text.bytes().all(|b| b.is_ascii_digit());
    if !digits || text.is_empty() || text.len() > 5 || (text.len() > 1 && text.starts_with('0')) {
        return Err(ParseError::V1Malformed);
    }
    text.parse().map_err(|_| ParseError::V1Malformed)
}
