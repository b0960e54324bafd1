//! Certificates made at test time, configurations, small protocols and a tapped link.

#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Protocol, Transport};
use loomwork::testing::Recorder;
use loomwork::Reason;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

/// A certificate authority made for one test.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate with its key.
pub struct Leaf {
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        roots
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }

    pub fn server_leaf(&self, name: &str) -> Leaf {
        self.issue(&[name], ExtendedKeyUsagePurpose::ServerAuth)
    }

    pub fn client_leaf(&self, name: &str) -> Leaf {
        self.issue(&[name], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

pub const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
pub const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// A server presenting `leaf`, asking for client certificates from `client_ca` if given.
pub fn server_config(
    leaf: &Leaf,
    client_ca: Option<&Ca>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ServerConfig> {
    let builder = ServerConfig::builder_with_protocol_versions(versions);
    let builder = match client_ca {
        Some(ca) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder(Arc::new(ca.roots()))
                .build()
                .unwrap(),
        ),
        None => builder.with_no_client_auth(),
    };
    Arc::new(
        builder
            .with_single_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .unwrap(),
    )
}

/// A client trusting `ca`, presenting `identity` if given.
pub fn client_config(
    ca: &Ca,
    identity: Option<&Leaf>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let builder =
        ClientConfig::builder_with_protocol_versions(versions).with_root_certificates(ca.roots());
    Arc::new(match identity {
        Some(leaf) => builder
            .with_client_auth_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

pub fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// Writes back whatever arrives; records how it ended.
#[derive(Default)]
pub struct Echo {
    pub lost: Option<Reason>,
    pub read_closed: bool,
}

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        self.read_closed = true;
        tx.lose_connection();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost = Some(reason.clone());
    }
}

/// Sends `payload`, collects the reply, closes once it has all of it.
#[derive(Default)]
pub struct Ask {
    pub payload: Vec<u8>,
    pub reply: Vec<u8>,
    pub lost: Option<Reason>,
}

impl Ask {
    pub fn new(payload: &[u8]) -> Self {
        Ask {
            payload: payload.to_vec(),
            ..Ask::default()
        }
    }
}

impl Protocol for Ask {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write(self.payload.clone());
        if self.payload.is_empty() {
            tx.lose_connection();
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.reply.extend_from_slice(&data.split());
        if self.reply.len() >= self.payload.len() {
            tx.lose_connection();
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost = Some(reason.clone());
    }
}

/// Two recorders joined by hand, every byte each way kept: the wire, tapped.
pub struct Link<C: Protocol, S: Protocol> {
    pub client: Recorder<C>,
    pub server: Recorder<S>,
    pub to_server: Vec<u8>,
    pub to_client: Vec<u8>,
}

impl<C: Protocol, S: Protocol> Link<C, S>
where
    C::Message: Send + 'static,
    S::Message: Send + 'static,
{
    pub fn new(client: C, server: S) -> Self {
        let mut link = Link {
            server: Recorder::new(server),
            client: Recorder::new(client),
            to_server: Vec::new(),
            to_client: Vec::new(),
        };
        link.pump();
        link
    }

    /// Moves bytes both ways until neither side writes.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let up: Bytes = self.client.take_written();
            let down: Bytes = self.server.take_written();
            if up.is_empty() && down.is_empty() {
                return;
            }
            self.to_server.extend_from_slice(&up);
            self.to_client.extend_from_slice(&down);
            if !up.is_empty() {
                self.server.receive(&up);
            }
            if !down.is_empty() {
                self.client.receive(&down);
            }
        }
        panic!("the link never went quiet");
    }
}

/// The TLS records in `wire`: (content type, length of the payload).
pub fn records(mut wire: &[u8]) -> Vec<(u8, usize)> {
    let mut out = Vec::new();
    while wire.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
        out.push((wire[0], len));
        wire = &wire[(5 + len).min(wire.len())..];
    }
    assert!(wire.is_empty(), "a partial record on the wire");
    out
}
