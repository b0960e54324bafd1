//! A certificate authority made on the spot (feature `self-signed`): the examples' and tests'
//! certificates, never a production PKI.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

use crate::config::{ConfigError, Identity};

/// The names a development server certificate covers: `localhost`, `127.0.0.1` and `::1`.
pub const LOCALHOST_NAMES: &[&str] = &["localhost", "127.0.0.1", "::1"];

/// A self-signed certificate authority (ECDSA P-256) that issues server and client
/// certificates, for examples and tests: a server started without a certificate makes one,
/// writes [`pem`](Self::pem) to a file, and clients trust that file.
///
/// ```
/// use loomwork_tls::{client_config, server_config, SelfSignedCa, LOCALHOST_NAMES};
///
/// let ca = SelfSignedCa::new("loomwork example CA").unwrap();
/// let server = ca.issue_server(LOCALHOST_NAMES).unwrap();
/// let alice = ca.issue_client("alice").unwrap();
/// let identity = server.identity().unwrap();
/// let config = server_config(identity.chain, identity.key, Some(ca.roots()), &[]).unwrap();
/// let client = client_config(ca.roots(), Some(alice.identity().unwrap()), &[]).unwrap();
/// # let _ = (config, client);
/// assert!(ca.pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// ```
pub struct SelfSignedCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A certificate issued by a [`SelfSignedCa`], with its key, as PEM text.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (PEM); the CA is not included, since clients trust it directly.
    pub cert_pem: String,
    /// Its private key (PKCS#8 PEM).
    pub key_pem: String,
}

impl Issued {
    /// The certificate and key, parsed: what [`server_config`](crate::server_config) and
    /// [`client_config`](crate::client_config) take.
    pub fn identity(&self) -> Result<Identity, ConfigError> {
        Identity::from_pem(self.cert_pem.as_bytes(), self.key_pem.as_bytes())
    }
}

impl SelfSignedCa {
    /// A new CA whose subject's common name is `common_name`.
    pub fn new(common_name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key)?;
        Ok(SelfSignedCa { cert, key })
    }

    /// The CA certificate, as PEM: the file clients are given to trust.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// The CA certificate, as DER.
    pub fn certificate(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A root store holding this CA alone.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        // A certificate this crate just made always parses as a trust anchor.
        let _ = roots.add(self.certificate());
        roots
    }

    /// A server certificate for `names` (DNS names and IP addresses; the first is also the
    /// subject's common name).
    pub fn issue_server(&self, names: &[&str]) -> Result<Issued, rcgen::Error> {
        self.issue(
            names,
            names.first().copied().unwrap_or("server"),
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate whose subject's common name is `common_name` (what a mutual-TLS
    /// server reads as the client's identity, see
    /// [`TlsInfo::peer_common_name`](crate::TlsInfo::peer_common_name)).
    pub fn issue_client(&self, common_name: &str) -> Result<Issued, rcgen::Error> {
        self.issue(&[], common_name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(
        &self,
        names: &[&str],
        common_name: &str,
        usage: ExtendedKeyUsagePurpose,
    ) -> Result<Issued, rcgen::Error> {
        let key = KeyPair::generate()?;
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let mut params = CertificateParams::new(names)?;
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = params.signed_by(&key, &self.cert, &self.key)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl core::fmt::Debug for SelfSignedCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SelfSignedCa").finish_non_exhaustive()
    }
}
