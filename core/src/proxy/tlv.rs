//! TLVs: the type-length-value extensions of a v2 header, read without copying.

use bytes::Bytes;

use crate::proxy::header::kind;

/// One TLV of a v2 header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    /// Its type (see [`kind`](crate::proxy::kind)).
    pub kind: u8,
    /// Its value, sharing the header's buffer.
    pub value: Bytes,
}

/// An iterator over the TLVs of a [`Header`](crate::proxy::Header) (or of an [`Ssl`] TLV).
///
/// The decoder has already checked that the area is a whole number of TLVs, so nothing is
/// skipped; an area built otherwise ends the iteration at its first malformed TLV.
#[derive(Clone, Debug)]
pub struct Tlvs {
    rest: Bytes,
}

impl Tlvs {
    pub(crate) fn new(area: Bytes) -> Self {
        Tlvs { rest: area }
    }

    /// Where the value of the first TLV of type `kind` lies in `area`: (start, length).
    pub(crate) fn locate(area: &[u8], kind: u8) -> Option<(usize, usize)> {
        let mut at = 0;
        while let Some(&[k, hi, lo]) = area.get(at..at + 3) {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            let start = at + 3;
            if area.len() - start < len {
                return None;
            }
            if k == kind {
                return Some((start, len));
            }
            at = start + len;
        }
        None
    }
}

impl Iterator for Tlvs {
    type Item = Tlv;

    fn next(&mut self) -> Option<Tlv> {
        let &[kind, hi, lo] = self.rest.get(..3)? else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if self.rest.len() - 3 < len {
            self.rest = Bytes::new();
            return None;
        }
        let mut value = self.rest.split_to(3 + len);
        let _ = value.split_to(3);
        Some(Tlv { kind, value })
    }
}

/// Why a TLV area is malformed, for the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AreaError {
    /// A TLV runs past the end of the area.
    Truncated,
    /// The SSL TLV is shorter than its fixed part, or its sub-TLVs are malformed.
    Ssl,
    /// The unique id is longer than 128 bytes.
    UniqueIdTooLong,
    /// The CRC-32C TLV is not 4 bytes long.
    Crc32cLength,
}

/// Checks that `area` is a whole number of well-formed TLVs (and that the ones with a
/// structure the specification fixes have it). Returns where the CRC-32C value lies, if any.
#[inline]
pub(crate) fn validate(area: &[u8]) -> Result<Option<usize>, AreaError> {
    let mut crc = None;
    let mut at = 0;
    while at < area.len() {
        let Some(&[k, hi, lo]) = area.get(at..at + 3) else {
            return Err(AreaError::Truncated);
        };
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let start = at + 3;
        let Some(value) = area.get(start..start + len) else {
            return Err(AreaError::Truncated);
        };
        match k {
            kind::SSL => {
                let sub = value.get(5..).ok_or(AreaError::Ssl)?;
                validate_plain(sub).map_err(|_| AreaError::Ssl)?;
            }
            kind::UNIQUE_ID if len > 128 => return Err(AreaError::UniqueIdTooLong),
            kind::CRC32C if len != 4 => return Err(AreaError::Crc32cLength),
            kind::CRC32C if crc.is_none() => crc = Some(start),
            _ => {}
        }
        at = start + len;
    }
    Ok(crc)
}

fn validate_plain(area: &[u8]) -> Result<(), AreaError> {
    let mut at = 0;
    while at < area.len() {
        let Some(&[_, hi, lo]) = area.get(at..at + 3) else {
            return Err(AreaError::Truncated);
        };
        at += 3 + usize::from(u16::from_be_bytes([hi, lo]));
        if at > area.len() {
            return Err(AreaError::Truncated);
        }
    }
    Ok(())
}

/// The SSL TLV (`PP2_TYPE_SSL`): whether the client used TLS and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ssl {
    /// Bit field: `0x01` the client connected over TLS, `0x02` it sent a certificate on this
    /// connection, `0x04` it sent one on this session.
    pub client: u8,
    /// Zero when the client's certificate was verified (or none was sent).
    pub verify: u32,
    sub: Bytes,
}

impl Ssl {
    /// `PP2_CLIENT_SSL`: the client connected over TLS.
    pub const CLIENT_SSL: u8 = 0x01;
    /// `PP2_CLIENT_CERT_CONN`: the client presented a certificate on this connection.
    pub const CLIENT_CERT_CONN: u8 = 0x02;
    /// `PP2_CLIENT_CERT_SESS`: the client presented a certificate on this session.
    pub const CLIENT_CERT_SESS: u8 = 0x04;

    pub(crate) fn parse(mut value: Bytes) -> Option<Self> {
        let &[client, a, b, c, d] = value.get(..5)? else {
            return None;
        };
        let _ = value.split_to(5);
        Some(Ssl {
            client,
            verify: u32::from_be_bytes([a, b, c, d]),
            sub: value,
        })
    }

    /// The sub-TLVs (version, common name, cipher, algorithms).
    pub fn tlvs(&self) -> Tlvs {
        Tlvs::new(self.sub.clone())
    }

    /// The TLS version the client used, as text (`TLSv1.3`).
    pub fn version(&self) -> Option<Bytes> {
        self.sub_value(kind::SSL_VERSION)
    }

    /// The common name of the client's certificate.
    pub fn common_name(&self) -> Option<Bytes> {
        self.sub_value(kind::SSL_CN)
    }

    /// The cipher suite, as text.
    pub fn cipher(&self) -> Option<Bytes> {
        self.sub_value(kind::SSL_CIPHER)
    }

    fn sub_value(&self, kind: u8) -> Option<Bytes> {
        self.tlvs()
            .find(|tlv| tlv.kind == kind)
            .map(|tlv| tlv.value)
    }
}
