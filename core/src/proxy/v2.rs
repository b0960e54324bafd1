//! Version 2: the binary header, a 16-byte fixed part, the addresses, then TLVs.

use core::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{Buf, Bytes, BytesMut};

use crate::proxy::header::{Addresses, Command, Header, SocketKind, Version};
use crate::proxy::tlv;
use crate::proxy::ParseError;

/// The 12 bytes every v2 header starts with.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest v2 header there can be: the fixed part and a 16-bit length.
pub const MAX_V2_LEN: usize = 16 + u16::MAX as usize;

/// The fixed part's length.
const FIXED: usize = 16;

/// Sizes of the address blocks by family.
const INET_LEN: usize = 12;
const INET6_LEN: usize = 36;
const UNIX_LEN: usize = 216;
const UNIX_PATH: usize = 108;

/// The family byte, parsed.
#[derive(Clone, Copy)]
enum Family {
    Unspecified,
    Inet,
    Inet6,
    Unix,
}

/// What the fixed part says, once the whole header is known to be well-formed.
#[derive(Clone, Copy)]
pub(crate) struct Layout {
    pub(crate) len: usize,
    command: Command,
    family: Family,
    kind: SocketKind,
    /// Where the TLVs start.
    tlvs: usize,
}

/// Checks a v2 header at the start of `buf` (which starts with [`SIGNATURE`]): its layout
/// once it is complete and valid, `None` while bytes are missing. Each check needs only the
/// bytes up to the field it looks at, so an error shows as soon as those bytes are in, and the
/// outcome is the same however the header arrives.
#[inline]
pub(crate) fn check(buf: &[u8], max: usize) -> Result<Option<Layout>, ParseError> {
    let Some(&version_command) = buf.get(12) else {
        return Ok(None);
    };
    if version_command >> 4 != 2 {
        return Err(ParseError::V2Version);
    }
    let command = match version_command & 0x0f {
        0 => Command::Local,
        1 => Command::Proxy,
        _ => return Err(ParseError::V2Command),
    };
    let Some(&family_byte) = buf.get(13) else {
        return Ok(None);
    };
    let family = match family_byte >> 4 {
        0 => Family::Unspecified,
        1 => Family::Inet,
        2 => Family::Inet6,
        3 => Family::Unix,
        _ => return Err(ParseError::V2Family),
    };
    let kind = match family_byte & 0x0f {
        0 => SocketKind::Unspecified,
        1 => SocketKind::Stream,
        2 => SocketKind::Datagram,
        _ => return Err(ParseError::V2Family),
    };
    let Some(&[hi, lo]) = buf.get(14..16) else {
        return Ok(None);
    };
    let len = FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if len > max {
        return Err(ParseError::TooLong);
    }
    let addresses = match family {
        Family::Unspecified => 0,
        Family::Inet => INET_LEN,
        Family::Inet6 => INET6_LEN,
        Family::Unix => UNIX_LEN,
    };
    if len - FIXED < addresses {
        // A LOCAL header's addresses are ignored, but they must still fit in it.
        return Err(ParseError::V2AddressLength);
    }
    let Some(header) = buf.get(..len) else {
        return Ok(None);
    };
    let mut tlvs = FIXED + addresses;
    let crc = match (tlv::validate(&header[tlvs..]), family) {
        (Ok(crc), _) => crc,
        // An UNSPEC block has no layout the specification fixes: what cannot be read as TLVs
        // is skipped, as HAProxy does.
        (Err(_), Family::Unspecified) => {
            tlvs = len;
            None
        }
        (Err(_), _) => return Err(ParseError::V2Tlv),
    };
    if let Some(at) = crc {
        let at = tlvs + at;
        let expected = header
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes);
        if expected != Some(crc32c_zeroed(header, at)) {
            return Err(ParseError::V2Checksum);
        }
    }
    Ok(Some(Layout {
        len,
        command,
        family,
        kind,
        tlvs,
    }))
}

/// Takes the header (exactly `layout.len` bytes, checked by [`check`]) off `buf`.
///
/// Only a header with TLVs or Unix paths keeps a reference to the buffer (one reference
/// count, shared by its TLVs and paths); any other is read in place and the bytes dropped.
#[inline]
pub(crate) fn take(buf: &mut BytesMut, layout: Layout) -> Header {
    let keeps_bytes = layout.tlvs < layout.len || matches!(layout.family, Family::Unix);
    let block = &buf[FIXED..layout.tlvs];
    let addresses = match (layout.command, layout.family) {
        // "the receiver must ignore the address information" for LOCAL.
        (Command::Local, _) | (_, Family::Unspecified) => Addresses::Unknown,
        (_, Family::Inet) => {
            let ip =
                |at: usize| Ipv4Addr::new(block[at], block[at + 1], block[at + 2], block[at + 3]);
            Addresses::Inet {
                source: SocketAddr::V4(SocketAddrV4::new(ip(0), port(block, 8))),
                destination: SocketAddr::V4(SocketAddrV4::new(ip(4), port(block, 10))),
                kind: layout.kind,
            }
        }
        (_, Family::Inet6) => {
            let ip = |at: usize| {
                let mut octets = [0; 16];
                octets.copy_from_slice(&block[at..at + 16]);
                Ipv6Addr::from(octets)
            };
            Addresses::Inet {
                source: SocketAddr::V6(SocketAddrV6::new(ip(0), port(block, 32), 0, 0)),
                destination: SocketAddr::V6(SocketAddrV6::new(ip(16), port(block, 34), 0, 0)),
                kind: layout.kind,
            }
        }
        // Filled in below, from the bytes kept.
        (_, Family::Unix) => Addresses::Unknown,
    };
    if !keeps_bytes {
        buf.advance(layout.len);
        return Header {
            version: Version::V2,
            command: layout.command,
            addresses,
            tlvs: Bytes::new(),
        };
    }
    if !matches!(layout.family, Family::Unix) || layout.command == Command::Local {
        // The TLVs alone: one reference, no slicing.
        let mut tlvs = buf.split_to(layout.len);
        tlvs.advance(layout.tlvs);
        return Header {
            version: Version::V2,
            command: layout.command,
            addresses,
            tlvs: tlvs.freeze(),
        };
    }
    let raw = buf.split_to(layout.len).freeze();
    let path = |at: usize| {
        let field = &raw[FIXED + at..FIXED + at + UNIX_PATH];
        let len = field.iter().position(|&b| b == 0).unwrap_or(UNIX_PATH);
        raw.slice(FIXED + at..FIXED + at + len)
    };
    Header {
        version: Version::V2,
        command: layout.command,
        addresses: Addresses::Unix {
            source: path(0),
            destination: path(UNIX_PATH),
            kind: layout.kind,
        },
        tlvs: raw.slice(layout.tlvs..layout.len),
    }
}

#[inline]
fn port(block: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([block[at], block[at + 1]])
}

/// CRC-32C (Castagnoli) of `header` with the four bytes at `zeroed` taken as zero, as the
/// specification computes it.
pub(crate) fn crc32c_zeroed(header: &[u8], zeroed: usize) -> u32 {
    let mut crc = !0u32;
    for (at, &byte) in header.iter().enumerate() {
        let byte = if (zeroed..zeroed + 4).contains(&at) {
            0
        } else {
            byte
        };
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0x82f6_3b78 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}
