//! Sending: the bytes of a v1 or v2 header, for a relay or any client to write first.

use core::fmt::Write as _;
use core::net::{IpAddr, SocketAddr};

use bytes::{BufMut, BytesMut};

use crate::proxy::header::{Addresses, Command, Header, SocketKind};
use crate::proxy::{v2, EncodeError};

/// Appends `header` in the v1 text form to `out`.
///
/// `LOCAL` and unknown addresses are sent as `PROXY UNKNOWN\r\n`. An IPv4 address paired with
/// an IPv6 one is sent as IPv4-mapped IPv6 (`TCP6`). v1 cannot carry Unix sockets, UDP or
/// TLVs: such a header is refused with [`EncodeError::NotInV1`] and nothing is appended.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::proxy::{encode_v1, Header};
/// let header = Header::proxy("192.0.2.7:50000".parse().unwrap(), "10.0.0.1:80".parse().unwrap());
/// let mut out = BytesMut::new();
/// encode_v1(&header, &mut out).unwrap();
/// assert_eq!(&out[..], b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 80\r\n");
/// ```
pub fn encode_v1(header: &Header, out: &mut BytesMut) -> Result<(), EncodeError> {
    if !header.tlvs.is_empty() {
        return Err(EncodeError::NotInV1);
    }
    let (source, destination) = match (header.command, &header.addresses) {
        (Command::Local, _) | (_, Addresses::Unknown) => {
            out.put_slice(b"PROXY UNKNOWN\r\n");
            return Ok(());
        }
        (_, Addresses::Unix { .. }) => return Err(EncodeError::NotInV1),
        (_, Addresses::Inet { kind, .. }) if *kind == SocketKind::Datagram => {
            return Err(EncodeError::NotInV1)
        }
        (
            _,
            Addresses::Inet {
                source,
                destination,
                ..
            },
        ) => same_family(*source, *destination),
    };
    let family = if source.is_ipv4() { "TCP4" } else { "TCP6" };
    // BytesMut's fmt::Write grows as needed and never fails.
    let _ = write!(
        out,
        "PROXY {family} {} {} {} {}\r\n",
        source.ip(),
        destination.ip(),
        source.port(),
        destination.port()
    );
    Ok(())
}

/// Appends `header` in the v2 binary form (with its TLVs) to `out`.
///
/// An IPv4 address paired with an IPv6 one is sent as IPv4-mapped IPv6. A header whose
/// addresses and TLVs exceed 65,535 bytes is refused and nothing is appended.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::proxy::{decode, encode_v2, Header, MAX_V2_LEN};
/// let header = Header::proxy("[2001:db8::7]:50000".parse().unwrap(), "[2001:db8::1]:443".parse().unwrap())
///     .with_tlv(loomwork::proxy::kind::AUTHORITY, "example.com")
///     .unwrap();
/// let mut out = BytesMut::new();
/// encode_v2(&header, &mut out).unwrap();
/// assert_eq!(out.len(), 16 + 36 + 3 + 11);
/// assert_eq!(decode(&mut out, MAX_V2_LEN).unwrap(), Some(header));
/// ```
pub fn encode_v2(header: &Header, out: &mut BytesMut) -> Result<(), EncodeError> {
    let command = match header.command {
        Command::Local => 0x20,
        Command::Proxy => 0x21,
    };
    let kind_bits = |kind: &SocketKind| match kind {
        SocketKind::Unspecified => 0x0,
        SocketKind::Stream => 0x1,
        SocketKind::Datagram => 0x2,
    };
    let (family, block_len) = match &header.addresses {
        Addresses::Unknown => (0x00, 0),
        Addresses::Inet {
            source,
            destination,
            kind,
        } => {
            let (source, _) = same_family(*source, *destination);
            if source.is_ipv4() {
                (0x10 | kind_bits(kind), 12)
            } else {
                (0x20 | kind_bits(kind), 36)
            }
        }
        Addresses::Unix {
            source,
            destination,
            kind,
        } => {
            if source.len() > 108 || destination.len() > 108 {
                return Err(EncodeError::TooLong);
            }
            (0x30 | kind_bits(kind), 216)
        }
    };
    let len = u16::try_from(block_len + header.tlvs.len()).map_err(|_| EncodeError::TooLong)?;
    out.reserve(16 + usize::from(len));
    out.put_slice(&v2::SIGNATURE);
    out.put_u8(command);
    out.put_u8(family);
    out.put_u16(len);
    match &header.addresses {
        Addresses::Unknown => {}
        Addresses::Inet {
            source,
            destination,
            ..
        } => {
            let (source, destination) = same_family(*source, *destination);
            put_ip(out, source.ip());
            put_ip(out, destination.ip());
            out.put_u16(source.port());
            out.put_u16(destination.port());
        }
        Addresses::Unix {
            source,
            destination,
            ..
        } => {
            for path in [source, destination] {
                out.put_slice(path);
                out.put_bytes(0, 108 - path.len());
            }
        }
    }
    out.put_slice(&header.tlvs);
    Ok(())
}

fn put_ip(out: &mut BytesMut, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
}

/// Both addresses in one family: IPv6 (IPv4-mapped) when they differ.
pub(crate) fn same_family(source: SocketAddr, destination: SocketAddr) -> (SocketAddr, SocketAddr) {
    if source.is_ipv4() == destination.is_ipv4() {
        return (source, destination);
    }
    let widen = |addr: SocketAddr| match addr {
        SocketAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port()),
        v6 => v6,
    };
    (widen(source), widen(destination))
}
