//! `TlsFactory`: a server factory whose connections speak TLS.

use alloc::sync::Arc;
use core::net::SocketAddr;
use core::time::Duration;

use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::ServerFactory;
use loomwork::Reason;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use crate::layer::DEFAULT_HANDSHAKE_TIMEOUT;
use crate::Tls;

/// Wraps a [`ServerFactory`] so that every connection it accepts speaks TLS.
///
/// The wrapped factory decides at accept time, as without TLS (refusals and connection limits
/// work unchanged, and it hears every `connection_closed` with the reason, TLS failures
/// included). Its protocols are built before the handshake, so they learn the peer's identity
/// only through the layer; a protocol that needs it before its first byte is built by
/// [`Tls::server`] instead, from any closure factory:
/// `move |_peer| Tls::server(config.clone(), |info| MyProtocol::new(info))`.
///
/// ```
/// # use std::sync::Arc;
/// use loomwork::bytes::BytesMut;
/// use loomwork::stream::{Protocol, ServerFactory, Transport};
/// use loomwork_tls::TlsFactory;
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// # let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
/// # let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
/// # let config = Arc::new(rustls::ServerConfig::builder()
/// #     .with_no_client_auth()
/// #     .with_single_cert(vec![cert.cert.der().clone()], key).unwrap());
/// let mut factory = TlsFactory::new(config, |_peer| Echo);
/// let protocol = factory.build_protocol("127.0.0.1:4433".parse().unwrap()).unwrap();
/// assert!(protocol.is_handshaking());
/// ```
pub struct TlsFactory<F> {
    config: Arc<ServerConfig>,
    factory: F,
    handshake_timeout: Option<Duration>,
}

impl<F: ServerFactory> TlsFactory<F> {
    /// TLS with `config` around the protocols `factory` builds.
    pub fn new(config: Arc<ServerConfig>, factory: F) -> Self {
        TlsFactory {
            config,
            factory,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets every connection's handshake timeout (see [`Tls::handshake_timeout`]).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.factory
    }

    /// The wrapped factory, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.factory
    }
}

impl<F: ServerFactory> ServerFactory for TlsFactory<F> {
    type Protocol = Tls<F::Protocol>;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let protocol = self.factory.build_protocol(peer)?;
        Some(
            Tls::server_with_protocol(Arc::clone(&self.config), protocol)
                .handshake_timeout(self.handshake_timeout),
        )
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        self.factory.connection_closed(peer, reason);
    }
}

/// Wraps a [`ClientFactory`] so that every connection a
/// [`Connector`](loomwork::connector::Connector) makes speaks TLS to the server `name`.
///
/// The connector's reconnect backoff works unchanged: a refused or timed-out attempt reaches
/// the wrapped factory's `connection_failed`, and a connection that ends, including by a
/// failed handshake (its `Reason::Tls` says why), reaches its `connection_lost`, which decides
/// whether to try again.
///
/// ```
/// # use std::sync::Arc;
/// use loomwork::bytes::BytesMut;
/// use loomwork::connector::ClientFactory;
/// use loomwork::stream::{Protocol, Transport};
/// use loomwork_tls::TlsClientFactory;
/// use rustls::pki_types::ServerName;
///
/// struct Quiet;
/// impl Protocol for Quiet {
///     type Message = ();
///     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
/// }
/// struct Once;
/// impl ClientFactory for Once {
///     type Protocol = Quiet;
///     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Quiet> {
///         Some(Quiet)
///     }
/// }
///
/// let config = rustls::ClientConfig::builder()
///     .with_root_certificates(rustls::RootCertStore::empty())
///     .with_no_client_auth();
/// let name = ServerName::try_from("example.com").unwrap();
/// let mut factory = TlsClientFactory::new(Arc::new(config), name, Once);
/// let tls = factory.build_protocol("192.0.2.1:443".parse().unwrap()).unwrap();
/// assert!(tls.is_handshaking());
/// ```
pub struct TlsClientFactory<F> {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    factory: F,
    handshake_timeout: Option<Duration>,
}

impl<F: ClientFactory> TlsClientFactory<F> {
    /// TLS with `config` towards the server `name` around the protocols `factory` builds.
    pub fn new(config: Arc<ClientConfig>, name: ServerName<'static>, factory: F) -> Self {
        TlsClientFactory {
            config,
            name,
            factory,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets every connection's handshake timeout (see [`Tls::handshake_timeout`]).
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.factory
    }

    /// The wrapped factory, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.factory
    }
}

impl<F: ClientFactory> ClientFactory for TlsClientFactory<F> {
    type Protocol = Tls<F::Protocol>;

    fn started_connecting(&mut self) {
        self.factory.started_connecting();
    }

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let protocol = self.factory.build_protocol(peer)?;
        Some(
            Tls::client_with_protocol(Arc::clone(&self.config), self.name.clone(), protocol)
                .handshake_timeout(self.handshake_timeout),
        )
    }

    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.factory.connection_failed(reason)
    }

    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.factory.connection_lost(reason)
    }
}
