//! What the TLS examples share (docs/examples.md): the certificate flags, a self-signed CA
//! when no certificate is given, the client's server name, and a server factory that logs
//! each client's verified name and each failed handshake.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use loomwork::stream::ServerFactory;
use loomwork::Reason;
use loomwork_tls::rustls::pki_types::ServerName;
use loomwork_tls::rustls::{ClientConfig, ServerConfig};
use loomwork_tls::{
    client_config, load_roots, server_config, ConfigError, Identity, SelfSignedCa, Tls,
    LOCALHOST_NAMES,
};

/// The server's certificate flags (`tls_echo_server`, `starttls_server`, `chat_server`).
#[derive(Args, Clone, Debug, Default)]
pub struct ServerCertArgs {
    /// The certificate chain to present (PEM, leaf first). Without it, a self-signed CA and a
    /// leaf for localhost, 127.0.0.1 and ::1 are made at start.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Require client certificates issued by the CAs in this PEM file (mutual TLS).
    #[arg(long)]
    pub client_ca: Option<PathBuf>,
    /// Where to write the self-signed CA certificate made when --cert is not given (default:
    /// a file in the temporary directory, named on stderr).
    #[arg(long, conflicts_with = "cert")]
    pub write_ca: Option<PathBuf>,
}

impl ServerCertArgs {
    /// True when the flags ask for TLS at all (for servers where TLS is optional).
    pub fn any(&self) -> bool {
        self.cert.is_some() || self.client_ca.is_some() || self.write_ca.is_some()
    }

    /// The server configuration these flags describe; on a bad file, says why on stderr and
    /// exits with status 1. Without --cert, makes the CA and the leaf, writes the CA
    /// certificate and names its path on stderr.
    pub fn server_config_or_exit(&self) -> Arc<ServerConfig> {
        self.server_config().unwrap_or_else(|err| {
            eprintln!("error: {err}");
            std::process::exit(1);
        })
    }

    fn server_config(&self) -> Result<Arc<ServerConfig>, String> {
        let client_ca = match &self.client_ca {
            Some(path) => Some(load_roots(path).map_err(|e| e.to_string())?),
            None => None,
        };
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                Identity::from_pem_files(cert, key).map_err(|e| e.to_string())?
            }
            _ => self.self_signed()?,
        };
        server_config(identity.chain, identity.key, client_ca, &[]).map_err(|e| e.to_string())
    }

    fn self_signed(&self) -> Result<Identity, String> {
        let ca = SelfSignedCa::new("loomwork example CA").map_err(|e| e.to_string())?;
        let leaf = ca
            .issue_server(LOCALHOST_NAMES)
            .map_err(|e| e.to_string())?;
        let path = self.write_ca.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("loomwork-example-ca-{}.pem", std::process::id()))
        });
        std::fs::write(&path, ca.pem())
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        eprintln!("CA certificate written to {}", path.display());
        leaf.identity().map_err(|e: ConfigError| e.to_string())
    }
}

/// The client's TLS flags (`tls_echo_client`, `starttls_client`).
#[derive(Args, Clone, Debug)]
pub struct ClientCertArgs {
    /// Trust the CAs in this PEM file (and nothing else) for the server's certificate.
    #[arg(long)]
    pub ca: PathBuf,
    /// The name to verify the server's certificate against (default: the host part of
    /// --connect).
    #[arg(long)]
    pub server_name: Option<String>,
    /// A client certificate chain to present (PEM), for servers that ask for one.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
}

impl ClientCertArgs {
    /// The client configuration and the server name to verify for a connection to
    /// `connect`; on a bad file or name, says why on stderr and exits with status 1.
    pub fn client_config_or_exit(&self, connect: &str) -> (Arc<ClientConfig>, ServerName<'static>) {
        let config = (|| {
            let roots = load_roots(&self.ca)?;
            let identity = match (&self.cert, &self.key) {
                (Some(cert), Some(key)) => Some(Identity::from_pem_files(cert, key)?),
                _ => None,
            };
            client_config(roots, identity, &[])
        })()
        .unwrap_or_else(|err: ConfigError| {
            eprintln!("error: {err}");
            std::process::exit(1);
        });
        let host = match &self.server_name {
            Some(name) => name.clone(),
            None => host_of(connect).to_owned(),
        };
        let name = ServerName::try_from(host.clone()).unwrap_or_else(|_| {
            eprintln!("error: invalid server name: {host}");
            std::process::exit(1);
        });
        (config, name)
    }
}

/// The host part of `HOST:PORT`, `IP:PORT` or `[IPv6]:PORT`.
///
/// ```
/// use loomwork_examples::tls::host_of;
/// assert_eq!(host_of("localhost:8443"), "localhost");
/// assert_eq!(host_of("127.0.0.1:8443"), "127.0.0.1");
/// assert_eq!(host_of("[::1]:8443"), "::1");
/// ```
pub fn host_of(connect: &str) -> &str {
    let host = connect.rsplit_once(':').map_or(connect, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// True when `reason` says the handshake failed or never finished (rather than an
/// established TLS connection ending): what a client reports as `Connection failed`.
pub fn is_handshake_failure(reason: &Reason) -> bool {
    matches!(
        reason,
        Reason::Tls(err) if err.kind != loomwork::TlsErrorKind::Truncated
    ) || matches!(reason, Reason::TimedOut(loomwork::Timeout::Handshake))
}

/// A server factory whose connections speak TLS, built around `factory`'s protocols: logs
/// `client <subject CN>` to stderr for each client that presented a verified certificate
/// (mutual TLS), before its protocol runs, and each connection that ended badly (a failed
/// handshake among them) with its reason.
pub struct LoggedTls<F> {
    config: Arc<ServerConfig>,
    factory: F,
}

impl<F> LoggedTls<F> {
    /// TLS with `config` around what `factory` builds.
    pub fn new(config: Arc<ServerConfig>, factory: F) -> Self {
        LoggedTls { config, factory }
    }
}

impl<F> ServerFactory for LoggedTls<F>
where
    F: ServerFactory,
    F::Protocol: Send + 'static,
{
    type Protocol = Tls<F::Protocol>;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let protocol = self.factory.build_protocol(peer)?;
        Some(Tls::server(Arc::clone(&self.config), move |info| {
            if let Some(name) = info.peer_common_name() {
                eprintln!("client {name}");
            }
            protocol
        }))
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        if !reason.is_clean() {
            eprintln!("connection from {peer} failed: {reason}");
        }
        self.factory.connection_closed(peer, reason);
    }
}

/// Logs how each connection that ended badly ended, for protocols that are not
/// [`LoggedTls`] (STARTTLS): `connection from PEER failed: REASON`.
pub struct LogFailures<F>(pub F);

impl<F: ServerFactory> ServerFactory for LogFailures<F> {
    type Protocol = F::Protocol;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<F::Protocol> {
        self.0.build_protocol(peer)
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        if !reason.is_clean() {
            eprintln!("connection from {peer} failed: {reason}");
        }
        self.0.connection_closed(peer, reason);
    }
}
