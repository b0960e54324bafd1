//! TLS for loomwork: rustls's unbuffered API as a sans-IO wrapper protocol.
//!
//! [`Tls`] is a stream [`Protocol`](loomwork::stream::Protocol) like any other: it wraps the
//! user's protocol (a plain one, a [`Framed`](loomwork::framing::Framed) handler, a policy
//! wrapper) and runs inside or outside any policy, on every runtime, in the test kit and under
//! the fuzzer. It does no I/O and reads no clock: records come in through the connection's
//! `data_received`, go out through its transport, and time comes from the transport like
//! everywhere else. The wrapped protocol runs on a real plaintext
//! [`Connection`](loomwork::stream::Connection) that this layer drives, and is built once the
//! handshake has finished, from the verified [`TlsInfo`] (peer certificates, SNI, ALPN,
//! version, cipher suite), so a server that asks for client certificates knows who it talks
//! to before the first byte.
//!
//! How the connection ends is typed: a failed handshake is `Reason::Tls` with the kind of
//! failure (unknown CA, bad certificate, certificate required, no shared parameters, ...) and
//! whether the peer reported it; an EOF without `close_notify` is `Reason::Tls` of kind
//! [`Truncated`](loomwork::TlsErrorKind::Truncated), never a clean end; a stalled handshake is
//! `Reason::TimedOut(Timeout::Handshake)` after 10 s by default. The full rustls error stays
//! readable with [`Tls::error`].
//!
//! A client and a server in memory, with certificates made on the spot:
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use loomwork::bytes::BytesMut;
//! use loomwork::stream::{Protocol, Transport};
//! use loomwork::testing::{Pair, PairConfig};
//! use loomwork_tls::Tls;
//! use rustls::pki_types::{PrivateKeyDer, ServerName};
//!
//! struct Echo;
//! impl Protocol for Echo {
//!     type Message = ();
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         let _ = tx.write(data.split().freeze());
//!     }
//! }
//!
//! #[derive(Default)]
//! struct Ask(Vec<u8>);
//! impl Protocol for Ask {
//!     type Message = ();
//!     fn connection_made(&mut self, tx: &mut Transport<'_>) {
//!         let _ = tx.write_slice(b"hello over TLS");
//!     }
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         self.0.extend_from_slice(&data.split());
//!         if self.0.len() == 14 {
//!             tx.lose_connection();
//!         }
//!     }
//! }
//!
//! // A self-signed server certificate, trusted by the client.
//! let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
//! let key = PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
//! let server_config = rustls::ServerConfig::builder()
//!     .with_no_client_auth()
//!     .with_single_cert(vec![cert.cert.der().clone()], key)
//!     .unwrap();
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(cert.cert.der().clone()).unwrap();
//! let client_config = rustls::ClientConfig::builder()
//!     .with_root_certificates(roots)
//!     .with_no_client_auth();
//!
//! let name = ServerName::try_from("localhost").unwrap();
//! let client = Tls::client(Arc::new(client_config), name, |_info| Ask::default());
//! let server = Tls::server(Arc::new(server_config), |_info| Echo);
//! let mut pair = Pair::new(client, server, PairConfig::default());
//! assert!(pair.run(Duration::from_secs(5)));
//! assert_eq!(pair.client.protocol().protocol().unwrap().0, b"hello over TLS");
//! assert!(pair.client.reason().unwrap().is_clean());
//! assert!(pair.server.reason().unwrap().is_clean());
//! ```
//!
//! # Certificates and keys from PEM
//! [`load_certificates`], [`load_private_key`] and [`load_roots`] read PEM files with
//! rustls's `pki_types` parser (keys as PKCS#8, PKCS#1 RSA or SEC1 EC); [`server_config`]
//! and [`client_config`] build the configurations (TLS 1.3 and 1.2, client certificates
//! required from a CA set for mutual TLS, ALPN). Every failure is a [`ConfigError`] naming
//! the file:
//!
//! ```
//! use std::sync::Arc;
//! use loomwork_tls::{client_config, server_config, Identity};
//!
//! # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
//! # let (cert_pem, key_pem) = (made.cert.pem(), made.key_pair.serialize_pem());
//! // `cert_pem` and `key_pem` hold the contents of `cert.pem` and `key.pem`;
//! // `Identity::from_pem_files("cert.pem", "key.pem")` reads the files themselves.
//! let identity = Identity::from_pem(cert_pem.as_bytes(), key_pem.as_bytes()).unwrap();
//! let mut roots = rustls::RootCertStore::empty();
//! roots.add(identity.chain[0].clone()).unwrap();
//! let server = server_config(identity.chain, identity.key, None, &[]).unwrap();
//! let client = client_config(roots, None, &[]).unwrap();
//! let _factory = loomwork_tls::TlsFactory::new(server, |_peer| Quiet);
//! # let _ = client;
//! # struct Quiet;
//! # impl loomwork::stream::Protocol for Quiet {
//! #     type Message = ();
//! #     fn data_received(&mut self, _: &mut loomwork::bytes::BytesMut, _: &mut loomwork::stream::Transport<'_>) {}
//! # }
//! ```
//!
//! With the feature `self-signed`, `SelfSignedCa` makes a CA on the spot and issues server
//! certificates (for `localhost`, `127.0.0.1` and `::1`, say) and client certificates from
//! it: what the examples use when they are given no certificate, and what tests use. It
//! brings in `rcgen`, which the default build does without.
//!
//! # STARTTLS
//! [`StartTls`] runs a protocol in plaintext until the protocol asks for TLS with an
//! [`UpgradeRequest`] (through [`StartTlsProtocol`], which [`Framed`](loomwork::framing::Framed)
//! forwards from its handler), then switches the same connection to a TLS session around the
//! same protocol, which keeps its state. What the protocol wrote before the request leaves in
//! plaintext (`READY`); the bytes it received after the command go to TLS first, exactly
//! once, however the reads split them.
//!
//! # Crypto provider
//! The provider is a feature: `ring` (the default) or `aws-lc-rs`. `ring` needs only a C
//! compiler, so a fresh machine builds it. `aws-lc-rs` (rustls's own default) is a much
//! larger C build (`aws-lc-sys` 0.47 builds without CMake on Linux x86-64, as checked here;
//! some targets still need CMake or NASM) and brings post-quantum key exchange
//! (X25519MLKEM768), which `ring` lacks: rustls 0.23.48 marks
//! `rustls::crypto::ring::default_provider` deprecated for that reason. Build with
//! `--no-default-features --features aws-lc-rs` to switch. [`server_config`] and
//! [`client_config`] use the process-default provider if one is installed, otherwise the
//! feature's ([`provider`]); with both features on, `aws-lc-rs`. rustls's own
//! `ServerConfig::builder()` picks the provider alone only when exactly one is compiled in.
//!
//! # `no_std`
//! With `default-features = false, features = ["ring"]` the crate is `#![no_std]` + `alloc`
//! (CI builds it so and checks that no dependency's `std` feature is enabled): the layer,
//! STARTTLS, the factories and [`TlsInfo`] need only `core` and `alloc`, and so does rustls's
//! unbuffered API with `ring`. What needs `std` (feature `std`, on by default): loading PEM
//! files and the configuration helpers ([`server_config`], [`client_config`],
//! [`ConfigError`]), because rustls without `std` has no default `TimeProvider`: a `no_std`
//! user builds the configurations with `ServerConfig::builder_with_details` and a time
//! source of their own (certificate validity needs the wall-clock time). `ring` draws its
//! randomness from `getrandom`, which needs an operating system or, on bare metal, a custom
//! backend. `aws-lc-rs` has not been tried without `std`.
//!
//! # Closing from outside
//! A graceful close asked from outside (a connection [`Handle`](loomwork::stream::Handle), a
//! server shutdown) reaches the layer as `Protocol::close_requested`: it passes the close to
//! the wrapped protocol's own connection (which hears `close_requested` too, for its last
//! words), encrypts everything that protocol queued, sends `close_notify`, then closes.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(feature = "std")]
mod config;
mod engine;
mod error;
mod factory;
mod info;
mod layer;
#[cfg(feature = "self-signed")]
mod self_signed;
mod starttls;
mod subject;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "std")]
pub use config::{
    certificates_from_pem, client_config, load_certificates, load_private_key, load_roots,
    private_key_from_pem, provider, roots_from_pem, server_config, ConfigError, Identity,
};
pub use error::reason_for;
pub use factory::{TlsClientFactory, TlsFactory};
pub use info::TlsInfo;
pub use layer::{Tls, DEFAULT_HANDSHAKE_TIMEOUT};
#[cfg(feature = "self-signed")]
pub use self_signed::{Issued, SelfSignedCa, LOCALHOST_NAMES};
pub use starttls::{StartTls, StartTlsProtocol, UpgradeRequest};
pub use subject::common_name;

pub use rustls;
