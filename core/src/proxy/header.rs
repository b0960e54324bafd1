//! `Header`: a parsed PROXY protocol header, v1 or v2, with its TLVs as zero-copy `Bytes`.

use core::net::SocketAddr;

use bytes::Bytes;

use crate::proxy::tlv::{Ssl, Tlv, Tlvs};
use crate::proxy::EncodeError;

/// A PROXY protocol header: who the proxy's client really is, and what the proxy knows about
/// the connection (TLVs, v2 only).
///
/// Built by [`decode`](crate::proxy::decode) from the bytes a proxy sent, or by hand with
/// [`Header::proxy`] / [`Header::local`] to send one with [`encode_v1`](crate::proxy::encode_v1)
/// or [`encode_v2`](crate::proxy::encode_v2).
///
/// ```
/// use loomwork::proxy::{Command, Header};
/// let source = "192.0.2.7:50000".parse().unwrap();
/// let destination = "198.51.100.1:443".parse().unwrap();
/// let header = Header::proxy(source, destination).with_tlv(0x01, b"h2").unwrap();
/// assert_eq!(header.command(), Command::Proxy);
/// assert_eq!(header.source(), Some(source));
/// assert_eq!(header.alpn(), Some(&b"h2"[..]));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub(crate) version: Version,
    pub(crate) command: Command,
    pub(crate) addresses: Addresses,
    /// The TLV area as received (validated: a whole number of well-formed TLVs).
    pub(crate) tlvs: Bytes,
}

/// Which version of the protocol a header came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Version {
    /// The text form (`PROXY TCP4 ...\r\n`), at most 107 bytes.
    V1,
    /// The binary form, with TLVs.
    V2,
}

/// What the proxy asks of the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// The proxy opened the connection itself (a health check): the addresses carry nothing
    /// and the receiver uses the connection's real endpoints (v2 only).
    Local,
    /// The connection is relayed on behalf of a client whose addresses follow.
    Proxy,
}

/// The transport protocol of the proxied connection (v2's low nibble of the family byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// Unspecified (`UNSPEC`, and every v1 `UNKNOWN`).
    Unspecified,
    /// A byte stream (TCP).
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

/// The addresses a header carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addresses {
    /// No usable addresses: v1 `UNKNOWN`, v2 `AF_UNSPEC`, or a `LOCAL` command. The receiver
    /// keeps the connection's real endpoints (as the specification says).
    Unknown,
    /// IPv4 or IPv6 endpoints.
    Inet {
        /// The client, as the proxy saw it.
        source: SocketAddr,
        /// The address the client connected to (on the proxy).
        destination: SocketAddr,
        /// TCP or UDP.
        kind: SocketKind,
    },
    /// Unix socket paths (v2 `AF_UNIX`, 108 bytes each, NUL-padded; padding removed here).
    Unix {
        /// The client's path.
        source: Bytes,
        /// The path it connected to.
        destination: Bytes,
        /// Stream or datagram socket.
        kind: SocketKind,
    },
}

/// TLV types of the specification (section 2.2), for [`Header::tlv`].
pub mod kind {
    /// Application-Layer Protocol Negotiation: the protocol the client picked (`h2`).
    pub const ALPN: u8 = 0x01;
    /// The host name the client asked for (TLS SNI or HTTP authority).
    pub const AUTHORITY: u8 = 0x02;
    /// CRC-32C of the whole header (checked by the decoder when present).
    pub const CRC32C: u8 = 0x03;
    /// Padding: to be ignored.
    pub const NOOP: u8 = 0x04;
    /// An opaque connection id of at most 128 bytes.
    pub const UNIQUE_ID: u8 = 0x05;
    /// What the proxy knows of the client's TLS session (see [`Ssl`](super::Ssl)).
    pub const SSL: u8 = 0x20;
    /// Inside [`SSL`]: the TLS version, as text (`TLSv1.3`).
    pub const SSL_VERSION: u8 = 0x21;
    /// Inside [`SSL`]: the client certificate's common name.
    pub const SSL_CN: u8 = 0x22;
    /// Inside [`SSL`]: the cipher suite, as text.
    pub const SSL_CIPHER: u8 = 0x23;
    /// Inside [`SSL`]: the certificate's signature algorithm.
    pub const SSL_SIG_ALG: u8 = 0x24;
    /// Inside [`SSL`]: the certificate's key algorithm.
    pub const SSL_KEY_ALG: u8 = 0x25;
    /// The network namespace the connection was accepted in, by name.
    pub const NETNS: u8 = 0x30;
}

impl Header {
    /// A `PROXY` header for a TCP connection from `source` to `destination` (an IPv4 address
    /// paired with an IPv6 one is taken as IPv4-mapped IPv6, as the wire needs one family).
    pub fn proxy(source: SocketAddr, destination: SocketAddr) -> Self {
        let (source, destination) = crate::proxy::encode::same_family(source, destination);
        Header {
            version: Version::V2,
            command: Command::Proxy,
            addresses: Addresses::Inet {
                source,
                destination,
                kind: SocketKind::Stream,
            },
            tlvs: Bytes::new(),
        }
    }

    /// A `LOCAL` header (v2) or an `UNKNOWN` one (v1): the connection is the proxy's own.
    pub fn local() -> Self {
        Header {
            version: Version::V2,
            command: Command::Local,
            addresses: Addresses::Unknown,
            tlvs: Bytes::new(),
        }
    }

    /// Adds a TLV of type `kind` (see [`kind`]) for [`encode_v2`](crate::proxy::encode_v2);
    /// refused with [`EncodeError::TooLong`] when the value is longer than 65,535 bytes.
    pub fn with_tlv(mut self, kind: u8, value: impl AsRef<[u8]>) -> Result<Self, EncodeError> {
        let value = value.as_ref();
        let len = u16::try_from(value.len()).map_err(|_| EncodeError::TooLong)?;
        let mut area = alloc::vec::Vec::with_capacity(self.tlvs.len() + 3 + value.len());
        area.extend_from_slice(&self.tlvs);
        area.push(kind);
        area.extend_from_slice(&len.to_be_bytes());
        area.extend_from_slice(value);
        self.tlvs = Bytes::from(area);
        Ok(self)
    }

    /// The version the header came in (headers built by hand say `V2`).
    pub fn version(&self) -> Version {
        self.version
    }

    /// `Proxy` or `Local`.
    pub fn command(&self) -> Command {
        self.command
    }

    /// The addresses as carried.
    pub fn addresses(&self) -> &Addresses {
        &self.addresses
    }

    /// The real client, when the header carries IP addresses for a `PROXY` command (`None`
    /// for `LOCAL`, `UNKNOWN`, `UNSPEC` and Unix sockets: then the connection's own peer
    /// stands).
    pub fn source(&self) -> Option<SocketAddr> {
        self.inet().map(|(source, _)| source)
    }

    /// The address the client connected to, under the same conditions as
    /// [`source`](Self::source).
    pub fn destination(&self) -> Option<SocketAddr> {
        self.inet().map(|(_, destination)| destination)
    }

    /// Every TLV, in the order received (v1 headers have none).
    pub fn tlvs(&self) -> Tlvs {
        Tlvs::new(self.tlvs.clone())
    }

    /// The raw TLV area (a whole number of well-formed TLVs).
    pub fn tlv_bytes(&self) -> &Bytes {
        &self.tlvs
    }

    /// The value of the first TLV of type `kind`, without copying.
    pub fn tlv(&self, kind: u8) -> Option<Bytes> {
        self.tlvs()
            .find(|tlv| tlv.kind == kind)
            .map(|tlv| tlv.value)
    }

    /// The ALPN TLV: the application protocol the client negotiated.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tlv_slice(kind::ALPN)
    }

    /// The authority TLV: the host name the client asked for.
    pub fn authority(&self) -> Option<&[u8]> {
        self.tlv_slice(kind::AUTHORITY)
    }

    /// The unique-id TLV.
    pub fn unique_id(&self) -> Option<&[u8]> {
        self.tlv_slice(kind::UNIQUE_ID)
    }

    /// The SSL TLV: what the proxy knows of the client's TLS session.
    pub fn ssl(&self) -> Option<Ssl> {
        Ssl::parse(self.tlv(kind::SSL)?)
    }

    fn tlv_slice(&self, kind: u8) -> Option<&[u8]> {
        let (start, len) = Tlvs::locate(&self.tlvs, kind)?;
        self.tlvs.get(start..start + len)
    }

    fn inet(&self) -> Option<(SocketAddr, SocketAddr)> {
        match (self.command, &self.addresses) {
            (
                Command::Proxy,
                Addresses::Inet {
                    source,
                    destination,
                    ..
                },
            ) => Some((*source, *destination)),
            _ => None,
        }
    }
}

impl Tlv {
    /// True for the TLV types the specification defines (section 2.2).
    pub fn is_known(&self) -> bool {
        matches!(
            self.kind,
            kind::ALPN
                | kind::AUTHORITY
                | kind::CRC32C
                | kind::NOOP
                | kind::UNIQUE_ID
                | kind::SSL
                | kind::NETNS
        )
    }
}
