//! `TlsInfo`: what the handshake established, handed to the wrapped protocol's builder.

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use rustls::pki_types::CertificateDer;
use rustls::{CipherSuite, CommonState, ProtocolVersion};

/// What a completed handshake established: the verified peer, and what was negotiated.
///
/// The wrapped protocol is built from this, so it knows who it talks to before its first byte
/// (mutual TLS: the client certificate stands in for a password).
///
/// ```
/// use loomwork_tls::TlsInfo;
///
/// let info = TlsInfo::default();
/// assert!(info.peer_certificates.is_empty());
/// assert_eq!(info.server_name, None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The peer's certificate chain, end-entity first, as DER; verified against the
    /// configured roots. Empty when the peer presented none (a server that does not ask for
    /// client certificates sees none).
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// The server name: on a client, the name it asked for and verified; on a server, the SNI
    /// the client sent, if it sent a valid DNS name.
    pub server_name: Option<String>,
    /// The application protocol agreed with ALPN, if any.
    pub alpn_protocol: Option<Vec<u8>>,
    /// The protocol version (TLS 1.3 or 1.2).
    pub protocol_version: Option<ProtocolVersion>,
    /// The cipher suite.
    pub cipher_suite: Option<CipherSuite>,
}

impl TlsInfo {
    /// The common name in the subject of the peer's (verified) end-entity certificate: the
    /// client's name on a mutual-TLS server. `None` when the peer presented no certificate or
    /// its subject has no textual common name.
    ///
    /// ```
    /// assert_eq!(loomwork_tls::TlsInfo::default().peer_common_name(), None);
    /// ```
    pub fn peer_common_name(&self) -> Option<String> {
        self.peer_certificates.first().and_then(crate::common_name)
    }

    /// Reads what a finished handshake established from rustls's state.
    pub(crate) fn from_state(state: &CommonState, server_name: Option<String>) -> Self {
        TlsInfo {
            peer_certificates: state
                .peer_certificates()
                .map(|chain| chain.iter().map(|cert| cert.clone().into_owned()).collect())
                .unwrap_or_default(),
            server_name,
            alpn_protocol: state.alpn_protocol().map(<[u8]>::to_vec),
            protocol_version: state.protocol_version(),
            cipher_suite: state.negotiated_cipher_suite().map(|suite| suite.suite()),
        }
    }
}

/// The server name indication of a ClientHello that starts `record`, if the first record holds
/// all of it and the name is a valid DNS name.
///
/// rustls 0.23's unbuffered server keeps the SNI it saw to itself, so the server reads it from
/// the first record, exactly as rustls did; rustls checks the same bytes, so a name reported
/// here is one the handshake accepted.
pub(crate) fn client_hello_sni(record: &[u8]) -> Option<String> {
    let mut r = Reader(record);
    // Record header: handshake (22), version, length.
    if r.u8()? != 22 {
        return None;
    }
    r.skip(2)?;
    let mut r = r.prefixed16()?;
    // Handshake header: client_hello (1), 24-bit length.
    if r.u8()? != 1 {
        return None;
    }
    let len = (usize::from(r.u8()?) << 16) | usize::from(r.u16()?);
    let mut hello = Reader(r.take(len)?);
    hello.skip(2 + 32)?; // legacy_version, random
    let session_id = usize::from(hello.u8()?);
    hello.skip(session_id)?;
    let suites = usize::from(hello.u16()?);
    hello.skip(suites)?;
    let compression = usize::from(hello.u8()?);
    hello.skip(compression)?;
    let mut extensions = hello.prefixed16()?;
    while !extensions.0.is_empty() {
        let kind = extensions.u16()?;
        let mut body = extensions.prefixed16()?;
        if kind != 0 {
            continue;
        }
        // server_name: a list of (type, name); type 0 is a host name.
        let mut names = body.prefixed16()?;
        while !names.0.is_empty() {
            let name_type = names.u8()?;
            let name = names.prefixed16()?.0;
            if name_type == 0 {
                let name = core::str::from_utf8(name).ok()?;
                return rustls::pki_types::DnsName::try_from(name)
                    .ok()
                    .map(|dns| dns.as_ref().to_owned());
            }
        }
        return None;
    }
    None
}

/// A cursor over untrusted bytes: every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.take(n).map(drop)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }

    /// The bytes that a 16-bit length prefix announces.
    fn prefixed16(&mut self) -> Option<Reader<'a>> {
        let len = usize::from(self.u16()?);
        self.take(len).map(Reader)
    }

    fn u16(&mut self) -> Option<u16> {
        let bytes = self.take(2)?;
        Some(u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]))
    }
}
