//! Fixed certificates and ready-made checks for tests and fuzz targets (feature `testing`).
//!
//! The certificates are committed PEM files (`tls/tests/fixtures/fuzz-*.pem`, an ECDSA P-256
//! CA and a leaf for `localhost` valid for a hundred years), so every run of a fuzz target
//! and every replay of its corpus sees the same server certificate: a recorded server flight
//! verifies against [`fixture_client_config`]'s roots run after run.
//!
//! ```
//! use loomwork::testing::Op;
//!
//! // A client's first flight, fed to a server under the driver's invariants.
//! let hello = loomwork_tls::testing::client_hello();
//! let check = loomwork_tls::testing::server_check();
//! check.run(vec![Op::Send { conn: 0, data: hello }]).unwrap();
//! ```

use std::sync::{Arc, OnceLock};

use bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork::testing::{EachConnection, Recorder, StreamCheck};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::Tls;

/// The fixture CA's certificate, PEM.
pub const CA_PEM: &[u8] = include_bytes!("../tests/fixtures/fuzz-ca.pem");
/// The fixture server's certificate (for `localhost`, issued by the CA), PEM.
pub const SERVER_CERT_PEM: &[u8] = include_bytes!("../tests/fixtures/fuzz-server.pem");
/// The fixture server's private key (PKCS#8, ECDSA P-256), PEM.
pub const SERVER_KEY_PEM: &[u8] = include_bytes!("../tests/fixtures/fuzz-server.key");

/// A server presenting the fixture certificate, TLS 1.3 and 1.2, no client certificates, with
/// the crate's [`provider`](crate::provider) (what [`server_config`](crate::server_config)
/// builds with).
pub fn fixture_server_config() -> Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let chain = CertificateDer::pem_slice_iter(SERVER_CERT_PEM)
            .collect::<Result<Vec<_>, _>>()
            .expect("fixture certificate");
        let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM).expect("fixture key");
        let config = ServerConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .expect("fixture protocol versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("fixture server config");
        Arc::new(config)
    }))
}

/// A client trusting the fixture CA only, TLS 1.3 and 1.2.
pub fn fixture_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(CA_PEM) {
            roots.add(cert.expect("fixture CA")).expect("fixture CA");
        }
        let config = ClientConfig::builder_with_provider(crate::provider())
            .with_safe_default_protocol_versions()
            .expect("fixture protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    }))
}

/// The name in the fixture server's certificate.
pub fn fixture_server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("a valid name")
}

/// Writes back whatever arrives and closes at the end of input: the plaintext protocol the
/// checks run inside TLS.
#[derive(Debug, Default)]
pub struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        tx.lose_connection();
    }
}

/// TLS servers (fixture certificate, echo inside) under the driver's invariants: what the
/// `tls` fuzz target runs, and what a replay of its corpus runs.
pub fn server_check() -> StreamCheck<EachConnection<Tls<Echo>>> {
    let config = fixture_server_config();
    StreamCheck::protocol(move || Tls::server(Arc::clone(&config), |_| Echo))
}

/// TLS clients (trusting the fixture CA, towards `localhost`, echo inside) under the
/// driver's invariants: each connection sends its ClientHello, the schedule plays the server.
pub fn client_check() -> StreamCheck<EachConnection<Tls<Echo>>> {
    let config = fixture_client_config();
    StreamCheck::protocol(move || Tls::client(Arc::clone(&config), fixture_server_name(), |_| Echo))
}

/// A fresh client's first flight (its ClientHello), as it leaves the client.
pub fn client_hello() -> Vec<u8> {
    let client = Tls::client(fixture_client_config(), fixture_server_name(), |_| Echo);
    Recorder::new(client).take_written().to_vec()
}
