//! Certificates, keys and CA sets from PEM, and the rustls configurations built from them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// Why a certificate, a key, a CA set or a configuration could not be made.
///
/// Every variant that comes from a file names it, so the one line a program prints says which
/// file is wrong and how.
///
/// ```
/// use loomwork_tls::{load_certificates, ConfigError};
///
/// let err = load_certificates("/nonexistent/cert.pem").unwrap_err();
/// assert!(matches!(err, ConfigError::Io { .. }));
/// assert!(err.to_string().starts_with("cannot read /nonexistent/cert.pem: "));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        error: std::io::Error,
    },
    /// The PEM text is malformed (a section without its end, bad base64, ...).
    Pem {
        /// The file, when the PEM came from one.
        path: Option<PathBuf>,
        /// What the PEM parser said.
        error: pem::Error,
    },
    /// No `CERTIFICATE` section where a certificate chain or a CA set was expected.
    NoCertificates {
        /// The file, when the PEM came from one.
        path: Option<PathBuf>,
    },
    /// No private key section (`PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`).
    NoPrivateKey {
        /// The file, when the PEM came from one.
        path: Option<PathBuf>,
    },
    /// A CA certificate that rustls cannot use as a trust anchor.
    BadCaCertificate(rustls::Error),
    /// The client-certificate verifier could not be built (an empty CA set, say).
    ClientVerifier(VerifierBuilderError),
    /// rustls refused the certificate chain and key (the key does not match the certificate,
    /// or its algorithm is not supported).
    Rejected(rustls::Error),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = |path: &Option<PathBuf>| match path {
            Some(path) => format!(" in {}", path.display()),
            None => String::new(),
        };
        match self {
            ConfigError::Io { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            ConfigError::Pem { path, error } => write!(f, "malformed PEM{}: {error}", from(path)),
            ConfigError::NoCertificates { path } => write!(f, "no certificate found{}", from(path)),
            ConfigError::NoPrivateKey { path } => write!(f, "no private key found{}", from(path)),
            ConfigError::BadCaCertificate(error) => write!(f, "unusable CA certificate: {error}"),
            ConfigError::ClientVerifier(error) => {
                write!(f, "cannot verify client certificates: {error}")
            }
            ConfigError::Rejected(error) => write!(f, "certificate and key refused: {error}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { error, .. } => Some(error),
            ConfigError::Pem { error, .. } => Some(error),
            ConfigError::BadCaCertificate(error) | ConfigError::Rejected(error) => Some(error),
            ConfigError::ClientVerifier(error) => Some(error),
            ConfigError::NoCertificates { .. } | ConfigError::NoPrivateKey { .. } => None,
        }
    }
}

/// A certificate chain (end-entity first) and its private key: what a server presents, and
/// what a client presents to a server that asks for client certificates.
#[derive(Debug)]
pub struct Identity {
    /// The chain, end-entity certificate first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The end-entity certificate's private key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// Reads the chain from `cert` and the key from `key` (PEM files).
    pub fn from_pem_files(
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<Self, ConfigError> {
        Ok(Identity {
            chain: load_certificates(cert)?,
            key: load_private_key(key)?,
        })
    }

    /// Reads the chain and the key from PEM text.
    pub fn from_pem(cert: &[u8], key: &[u8]) -> Result<Self, ConfigError> {
        Ok(Identity {
            chain: certificates_from_pem(cert, None)?,
            key: private_key_from_pem(key, None)?,
        })
    }
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

/// Reads every `CERTIFICATE` section of a PEM file, in order (a chain: leaf first).
///
/// Sections of other kinds (a key kept in the same file) are skipped; a file without any
/// certificate is [`ConfigError::NoCertificates`].
pub fn load_certificates(
    path: impl AsRef<Path>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let path = path.as_ref();
    certificates_from_pem(&read(path)?, Some(path))
}

/// Reads the first private key of a PEM file: PKCS#8 (`PRIVATE KEY`, RSA, ECDSA or Ed25519),
/// PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
pub fn load_private_key(path: impl AsRef<Path>) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let path = path.as_ref();
    private_key_from_pem(&read(path)?, Some(path))
}

/// Reads a set of trusted CA certificates from a PEM file (every `CERTIFICATE` section).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("loomwork-tls-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// # let path = dir.join("ca.pem");
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// # std::fs::write(&path, made.cert.pem()).unwrap();
/// let roots = loomwork_tls::load_roots(&path).unwrap();
/// assert_eq!(roots.len(), 1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn load_roots(path: impl AsRef<Path>) -> Result<RootCertStore, ConfigError> {
    let path = path.as_ref();
    roots_from_pem(&read(path)?, Some(path))
}

/// A set of trusted CA certificates from PEM text.
pub fn roots_from_pem(pem: &[u8], path: Option<&Path>) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem, path)? {
        roots.add(cert).map_err(ConfigError::BadCaCertificate)?;
    }
    Ok(roots)
}

/// Every `CERTIFICATE` section of PEM text, in order. `path` only names the source in errors.
pub fn certificates_from_pem(
    pem: &[u8],
    path: Option<&Path>,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| ConfigError::Pem {
            path: path.map(Path::to_path_buf),
            error,
        })?;
    if chain.is_empty() {
        return Err(ConfigError::NoCertificates {
            path: path.map(Path::to_path_buf),
        });
    }
    Ok(chain)
}

/// The first private key of PEM text (PKCS#8, PKCS#1 or SEC1). `path` only names the source
/// in errors.
pub fn private_key_from_pem(
    pem: &[u8],
    path: Option<&Path>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|error| match error {
        pem::Error::NoItemsFound => ConfigError::NoPrivateKey {
            path: path.map(Path::to_path_buf),
        },
        error => ConfigError::Pem {
            path: path.map(Path::to_path_buf),
            error,
        },
    })
}

/// A server configuration presenting `chain` and `key`, TLS 1.3 and 1.2.
///
/// With `client_ca`, every client must present a certificate issued by one of those CAs
/// (mutual TLS); its verified chain is in [`TlsInfo::peer_certificates`](crate::TlsInfo).
/// `alpn` lists the application protocols offered, most preferred first (empty: no ALPN).
///
/// ```
/// use loomwork_tls::{server_config, Identity};
/// # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
/// # let (cert_pem, key_pem) = (made.cert.pem(), made.key_pair.serialize_pem());
///
/// let identity = Identity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
/// let config = server_config(identity.chain, identity.key, None, &[b"h2"]).unwrap();
/// assert_eq!(config.alpn_protocols, [b"h2".to_vec()]);
/// ```
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_ca: Option<RootCertStore>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, ConfigError> {
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(ConfigError::Rejected)?;
    let builder = match client_ca {
        Some(roots) => builder.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(ConfigError::ClientVerifier)?,
        ),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(ConfigError::Rejected)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A client configuration that trusts the CAs in `ca` (and nothing else), TLS 1.3 and 1.2,
/// presenting `client_identity` to servers that ask for a client certificate.
///
/// ```
/// let config = loomwork_tls::client_config(rustls::RootCertStore::empty(), None, &[]).unwrap();
/// assert!(config.alpn_protocols.is_empty());
/// ```
pub fn client_config(
    ca: RootCertStore,
    client_identity: Option<Identity>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, ConfigError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(ConfigError::Rejected)?
        .with_root_certificates(ca);
    let mut config = match client_identity {
        Some(Identity { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(ConfigError::Rejected)?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The crypto provider the configurations are built with: the process default if one is
/// installed, otherwise the one this crate's features chose (`aws-lc-rs` over `ring` when both
/// are on).
pub fn provider() -> Arc<CryptoProvider> {
    if let Some(installed) = CryptoProvider::get_default() {
        return Arc::clone(installed);
    }
    Arc::new(feature_provider())
}

#[cfg(feature = "aws-lc-rs")]
fn feature_provider() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
#[allow(deprecated)] // rustls 0.23.48: ring has no post-quantum key exchange (see the crate docs)
fn feature_provider() -> CryptoProvider {
    use rustls::crypto::ring::kx_group::{SECP256R1, SECP384R1, X25519};
    let mut provider = rustls::crypto::ring::default_provider();
    // rustls 0.23.48's ring provider lists P-384 first, so a client offers it and every full
    // handshake pays for it: X25519 first makes a full handshake (both sides) about 4.7x
    // cheaper (2.45 ms -> 0.52 ms on this project's machine, measured in memory). X25519 is
    // what the other providers and most TLS 1.3 stacks offer first; P-256 and P-384 stay
    // available for peers that ask for them.
    provider.kx_groups = vec![X25519, SECP256R1, SECP384R1];
    provider
}

#[cfg(not(any(feature = "ring", feature = "aws-lc-rs")))]
fn feature_provider() -> CryptoProvider {
    panic!(
        "loomwork-tls was built without a crypto provider feature (ring, aws-lc-rs): \
         install a process-default rustls CryptoProvider first"
    )
}

fn read(path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|error| ConfigError::Io {
        path: path.to_path_buf(),
        error,
    })
}
