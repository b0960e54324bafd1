//! Datagram endpoints (UDP, connected UDP, multicast): the protocol trait, its transport, and
//! the sans-IO driver (docs/twisted-behaviour.md §7–§9).
//!
//! A [`DatagramProtocol`] reacts to datagrams and acts through a [`DatagramTransport`]; an
//! [`Endpoint`] runs it without touching the world. The runtime feeds the endpoint what the
//! socket did ([`Endpoint::handle_datagram`], [`Endpoint::handle_send_error`], ...) and carries out
//! what the endpoint asks, pulled in order with [`Endpoint::poll_action`]: sends, socket commands
//! (connect, join a group, set the TTL, ...) and finally the close.
//!
//! ```
//! use bytes::Bytes;
//! use loomwork::Instant;
//! use loomwork::datagram::{Config, DatagramProtocol, DatagramTransport, Endpoint, Action};
//!
//! /// Twisted's UDP `Echo`.
//! struct Echo;
//! impl DatagramProtocol for Echo {
//!     type Message = ();
//!     fn datagram_received(
//!         &mut self,
//!         data: Bytes,
//!         from: std::net::SocketAddr,
//!         _truncated: bool,
//!         tx: &mut DatagramTransport<'_>,
//!     ) {
//!         let _ = tx.send_to(data, from);
//!     }
//! }
//!
//! let local = "127.0.0.1:9999".parse().unwrap();
//! let peer = "127.0.0.1:5000".parse().unwrap();
//! let mut endpoint = Endpoint::new(Echo, Config::default());
//! endpoint.handle_started(Instant::ZERO, local);
//! endpoint.handle_datagram(Instant::ZERO, Bytes::from_static(b"ping"), peer, false);
//! match endpoint.poll_action() {
//!     Some(Action::Send(t)) => assert_eq!((&t.data[..], t.to), (&b"ping"[..], Some(peer))),
//!     other => panic!("expected a send, got {other:?}"),
//! }
//! assert_eq!(endpoint.poll_action(), None);
//! ```

mod command;
mod config;
mod endpoint;
mod error;
#[cfg(feature = "fuzz")]
pub mod fuzzing;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod network;
mod protocol;
mod stats;
mod transport;

pub use command::{Action, Command, Interface, Transmit};
pub use config::{Config, MAX_IPV4_PAYLOAD, MAX_IPV6_PAYLOAD};
pub use endpoint::Endpoint;
pub use error::{CommandError, SendError};
pub use protocol::DatagramProtocol;
pub use stats::Stats;
pub use transport::DatagramTransport;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
