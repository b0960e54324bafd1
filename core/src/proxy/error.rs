//! Why a PROXY header was refused, and why one could not be encoded.

use core::fmt;

use crate::reason::{ProtocolError, Reason};

/// Why [`decode`](crate::proxy::decode) refused the bytes at the start of a connection.
///
/// Every one ends the connection (the stream after a bad header cannot be trusted); the
/// [`AcceptProxy`](crate::proxy::AcceptProxy) wrapper reports it as
/// `Reason::Protocol` with [`message`](Self::message) as the description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ParseError {
    /// The bytes are neither a v1 (`PROXY `) nor a v2 (the 12-byte signature) header.
    NotProxy,
    /// A v1 line reached 107 bytes without its `\r\n`.
    V1TooLong,
    /// A v1 line is malformed: wrong protocol word, spacing, address or port.
    V1Malformed,
    /// A v2 header's version nibble is not 2.
    V2Version,
    /// A v2 header's command is neither `LOCAL` nor `PROXY`.
    V2Command,
    /// A v2 header's address family or transport protocol is not one the specification
    /// assigns.
    V2Family,
    /// A v2 header's length is too short for the addresses of its family.
    V2AddressLength,
    /// A v2 header's TLVs are malformed (truncated, or a known TLV of the wrong shape).
    V2Tlv,
    /// A v2 header's CRC-32C TLV does not match the header.
    V2Checksum,
    /// The header is longer than the receiver allows.
    TooLong,
    /// The connection ended (EOF) before the header was complete.
    Truncated,
}

impl ParseError {
    /// A short, stable description, as `Reason::Protocol` carries it.
    pub const fn message(&self) -> &'static str {
        match self {
            ParseError::NotProxy => "PROXY: not a PROXY protocol header",
            ParseError::V1TooLong => "PROXY v1: no CRLF within 107 bytes",
            ParseError::V1Malformed => "PROXY v1: malformed header line",
            ParseError::V2Version => "PROXY v2: unsupported version",
            ParseError::V2Command => "PROXY v2: unknown command",
            ParseError::V2Family => "PROXY v2: unknown address family or protocol",
            ParseError::V2AddressLength => "PROXY v2: length too short for the addresses",
            ParseError::V2Tlv => "PROXY v2: malformed TLV",
            ParseError::V2Checksum => "PROXY v2: CRC-32C mismatch",
            ParseError::TooLong => "PROXY: header longer than allowed",
            ParseError::Truncated => "PROXY: connection ended inside the header",
        }
    }

    /// The reason a connection ends with when its header is refused.
    pub const fn reason(&self) -> Reason {
        Reason::Protocol(ProtocolError::new(self.message()))
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl core::error::Error for ParseError {}

/// Why [`encode_v1`](crate::proxy::encode_v1) or [`encode_v2`](crate::proxy::encode_v2)
/// refused a header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncodeError {
    /// v1 carries only TCP over IPv4 or IPv6 (or `UNKNOWN`): no Unix sockets, no UDP, no TLVs.
    NotInV1,
    /// The source and destination are not of the same IP family.
    MixedFamilies,
    /// The addresses and TLVs do not fit v2's 16-bit length (or a TLV its own).
    TooLong,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EncodeError::NotInV1 => "PROXY v1 cannot carry this header (Unix, UDP or TLVs)",
            EncodeError::MixedFamilies => "PROXY: source and destination families differ",
            EncodeError::TooLong => "PROXY v2: header longer than 65,535 bytes",
        })
    }
}

impl core::error::Error for EncodeError {}
