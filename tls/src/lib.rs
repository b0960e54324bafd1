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
//! rustls's `pki_types` (re-exported as `rustls::pki_types`) reads PEM: certificate chains
//! with `CertificateDer::pem_file_iter` / `pem_slice_iter`, keys (PKCS#8, PKCS#1 RSA, SEC1
//! EC) with `PrivateKeyDer::from_pem_file` / `from_pem_slice`:
//!
//! ```
//! use std::sync::Arc;
//! use rustls::pki_types::pem::PemObject;
//! use rustls::pki_types::{CertificateDer, PrivateKeyDer};
//!
//! # let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
//! # let (cert_pem, key_pem) = (made.cert.pem(), made.key_pair.serialize_pem());
//! // `cert_pem` and `key_pem` hold the contents of `cert.pem` and `key.pem`.
//! let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
//!     .collect::<Result<_, _>>()
//!     .unwrap();
//! let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
//! let config = rustls::ServerConfig::builder()
//!     .with_no_client_auth()
//!     .with_single_cert(chain, key)
//!     .unwrap();
//! let _server = loomwork_tls::TlsFactory::new(Arc::new(config), |_peer| Quiet);
//! # struct Quiet;
//! # impl loomwork::stream::Protocol for Quiet {
//! #     type Message = ();
//! #     fn data_received(&mut self, _: &mut loomwork::bytes::BytesMut, _: &mut loomwork::stream::Transport<'_>) {}
//! # }
//! ```
//!
//! # Crypto provider
//! The crate builds rustls with its `ring` provider: `ring` needs only a C compiler, so a
//! fresh machine builds it, where `aws-lc-rs` (rustls's default) also needs CMake (and Go for
//! some targets). With one provider compiled in, `ServerConfig::builder()` and
//! `ClientConfig::builder()` use it. Know the trade: rustls 0.23.48 marks
//! `rustls::crypto::ring::default_provider` deprecated because `ring` offers no post-quantum
//! key exchange (X25519MLKEM768), which `aws-lc-rs` does; making the provider a feature of
//! this crate, with `aws-lc-rs` as the alternative, is the next step.
//!
//! # `no_std`
//! Not yet: this crate enables rustls's `std` feature and names `std` paths. rustls's
//! unbuffered API itself works with `core` + `alloc`, and this crate needs from `std` only
//! what `core` and `alloc` also have (`Arc`, `Duration`, socket addresses), so the crate's own
//! code is not the obstacle (not yet checked by a `no_std` build). What is: rustls without
//! `std` has no default `TimeProvider` (certificate validity checks need the wall-clock time,
//! which the runtime would have to supply through `ServerConfig::builder_with_details`), and
//! `ring` draws its randomness from `getrandom`, which needs an operating system or a custom
//! backend on bare metal.
//!
//! # Not yet in this crate
//! STARTTLS (upgrading a running connection), the crypto provider as a feature and the
//! runtime examples are later slices of the TLS work.
//!
//! A graceful close asked from outside (a connection [`Handle`](loomwork::stream::Handle), a
//! server shutdown) reaches the layer as `Protocol::close_requested`: it passes the close to
//! the wrapped protocol's own connection (which hears `close_requested` too, for its last
//! words), encrypts everything that protocol queued, sends `close_notify`, then closes.

#![forbid(unsafe_code)]

mod engine;
mod error;
mod factory;
mod info;
mod layer;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::reason_for;
pub use factory::{TlsClientFactory, TlsFactory};
pub use info::TlsInfo;
pub use layer::{Tls, DEFAULT_HANDSHAKE_TIMEOUT};

pub use rustls;
