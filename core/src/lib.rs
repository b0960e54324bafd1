//! # loomwork
//!
//! Twisted's protocol layer as pure state machines. A protocol is written once, as a plain
//! struct implementing [`stream::Protocol`], and runs anywhere: on blocking std sockets
//! (`loomwork-std`), on smol (`loomwork-smol`), in your own event loop, in memory under test.
//!
//! This crate does no I/O. It has no sockets, threads, clocks, futures or executors; it is
//! `#![no_std]` with `alloc`. Bytes, errors and the current time go in through `handle_*`
//! methods; writes, socket actions and the next deadline are pulled out.
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.
//!
//! ## One vocabulary, three run loops
//!
//! The three machines read alike. Inputs are `handle_*(now, ...)` methods for what the runtime
//! saw (bytes, EOF, a datagram, a connected socket, an error, the time, a message), plus the
//! owner's commands `start`, `close` and `abort`. Outputs are pulled: `poll_action()` gives the
//! next socket action (each module has its own `Action` enum), `next_timeout()` says when to
//! wake the machine next, and `is_ended()` with `reason()` says whether and why it is over. The
//! stream [`Connection`](stream::Connection) also lends its queued bytes for one vectored write
//! ([`poll_write`](stream::Connection::poll_write), reported back with `handle_written`), so
//! nothing is copied on the way out.
//!
//! Every runtime is one of these loops. Written out here with in-memory "sockets", they are
//! also tests.
//!
//! A stream [`Connection`](stream::Connection):
//!
//! ```
//! use bytes::BytesMut;
//! use loomwork::{Instant, stream::{Action, Config, Connection, Protocol, Transport}};
//!
//! /// Twisted's Echo, with backpressure for free.
//! struct Echo;
//! impl Protocol for Echo {
//!     type Message = ();
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         let _ = tx.write(data.split().freeze());
//!     }
//! }
//!
//! let addr = "127.0.0.1:7".parse().unwrap();
//! let mut conn = Connection::new(Echo, Config::default());
//! let mut now = Instant::ZERO;
//! conn.handle_connected(now, addr, addr);
//!
//! // What the peer sends, one read at a time; then it closes its side.
//! let mut reads = vec![b"hello ".to_vec(), b"world".to_vec()].into_iter();
//! let mut sent = Vec::new();
//! 'run: loop {
//!     // 1. Feed input: a read when the connection wants one, otherwise EOF.
//!     if conn.wants_read() {
//!         match reads.next() {
//!             Some(bytes) => conn.handle_data(now, &bytes),
//!             None => conn.handle_read_closed(now),
//!         }
//!     }
//!     // 2. Write: a real runtime does one vectored write of these slices.
//!     let chunk: Vec<u8> = conn.poll_write().flatten().copied().collect();
//!     if !chunk.is_empty() {
//!         sent.extend_from_slice(&chunk);
//!         conn.handle_written(now, chunk.len());
//!     }
//!     // 3. Carry out socket actions; Close and Abort end the socket.
//!     while let Some(action) = conn.poll_action() {
//!         match action {
//!             Action::ShutdownWrite => {}
//!             Action::Close | Action::Abort => break 'run,
//!         }
//!     }
//!     // 4. Sleep until the next deadline (or readiness), then tell the machine the time.
//!     if let Some(deadline) = conn.next_timeout() {
//!         now = now.max(deadline);
//!         conn.handle_timeout(now);
//!     }
//! }
//! assert_eq!(sent, b"hello world");
//! assert!(conn.is_ended() && conn.reason().unwrap().is_clean());
//! ```
//!
//! A datagram [`Endpoint`](datagram::Endpoint), in the same shape:
//!
//! ```
//! use bytes::Bytes;
//! use loomwork::datagram::{Action, Config, DatagramProtocol, DatagramTransport, Endpoint};
//! use loomwork::Instant;
//! use std::net::SocketAddr;
//!
//! /// Twisted's UDP Echo.
//! struct Echo;
//! impl DatagramProtocol for Echo {
//!     type Message = ();
//!     fn datagram_received(&mut self, data: Bytes, from: SocketAddr, _: bool,
//!                          tx: &mut DatagramTransport<'_>) {
//!         let _ = tx.send_to(data, from);
//!     }
//! }
//!
//! let local: SocketAddr = "127.0.0.1:9999".parse().unwrap();
//! let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
//! let mut endpoint = Endpoint::new(Echo, Config::default());
//! let mut now = Instant::ZERO;
//! endpoint.handle_started(now, local);
//!
//! let mut incoming = vec![Bytes::from_static(b"ping"), Bytes::from_static(b"pong")].into_iter();
//! let mut sent = Vec::new();
//! 'run: loop {
//!     // 1. Feed input: a datagram when the endpoint wants one; the owner closes at the end.
//!     if endpoint.wants_read() {
//!         match incoming.next() {
//!             Some(data) => endpoint.handle_datagram(now, data, peer, false),
//!             None => endpoint.close(now),
//!         }
//!     }
//!     // 2 and 3. Carry out sends and socket commands in order; Close ends the socket.
//!     while let Some(action) = endpoint.poll_action() {
//!         match action {
//!             Action::Send(transmit) => sent.push((transmit.data, transmit.to)),
//!             Action::Command(command) => endpoint.handle_command_result(now, command, Ok(())),
//!             Action::Close => break 'run,
//!         }
//!     }
//!     // 4. Sleep until the next deadline (or readiness), then tell the machine the time.
//!     if let Some(deadline) = endpoint.next_timeout() {
//!         now = now.max(deadline);
//!         endpoint.handle_timeout(now);
//!     }
//! }
//! assert_eq!(sent.len(), 2);
//! assert!(endpoint.is_ended() && endpoint.reason().unwrap().is_clean());
//! ```
//!
//! A reconnecting client's [`Connector`](connector::Connector), in the same shape again: it
//! says when to dial, the runtime reports how each attempt went.
//!
//! ```
//! # use bytes::BytesMut;
//! # use loomwork::stream::{Protocol, Transport};
//! use loomwork::connector::{self, Action, ClientFactory, Connector, Retry};
//! use loomwork::{Instant, Reason};
//! use std::net::SocketAddr;
//! # struct Hello;
//! # impl Protocol for Hello {
//! #     type Message = ();
//! #     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
//! # }
//!
//! /// Retries with backoff until one connection has been made, then stops.
//! struct Once;
//! impl ClientFactory for Once {
//!     type Protocol = Hello;
//!     fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Hello> { Some(Hello) }
//!     fn connection_failed(&mut self, _: &Reason) -> Retry { Retry::Backoff }
//!     fn connection_lost(&mut self, _: &Reason) -> Retry { Retry::Stop }
//! }
//!
//! let peer: SocketAddr = "127.0.0.1:1234".parse().unwrap();
//! let mut connector = Connector::new(Once, connector::Config::default());
//! let mut now = Instant::ZERO;
//! connector.start(now);
//!
//! // How each dial goes: refused twice, then connected.
//! let mut dials = vec![Err(Reason::Refused), Err(Reason::Refused), Ok(peer)].into_iter();
//! let mut ran = 0;
//! while !connector.is_ended() {
//!     // 1 and 3. Carry out actions; report each attempt's outcome as an input.
//!     while let Some(action) = connector.poll_action() {
//!         match (action, dials.next()) {
//!             (Action::Dial, Some(Ok(peer))) => {
//!                 connector.handle_connected(now, peer);
//!                 // A runtime runs this protocol in a `Connection` until it ends.
//!                 let _protocol = connector.poll_protocol().expect("the factory builds one");
//!                 ran += 1;
//!                 connector.handle_connection_lost(now, Reason::Done);
//!             }
//!             (Action::Dial, Some(Err(reason))) => connector.handle_connect_failed(now, reason),
//!             (Action::Dial, None) | (Action::CancelDial, _) => {}
//!         }
//!     }
//!     // 4. Sleep until the next deadline (the retry delay), then tell the machine the time.
//!     let Some(deadline) = connector.next_timeout() else { break };
//!     now = now.max(deadline);
//!     connector.handle_timeout(now);
//! }
//! assert_eq!((ran, connector.attempts()), (1, 3));
//! ```
//!
//! ## Map of the crate
//! - [`stream`]: [`Protocol`](stream::Protocol), [`Transport`](stream::Transport),
//!   [`Connection`](stream::Connection), [`ServerFactory`](stream::ServerFactory).
//! - [`connector`]: [`ClientFactory`](connector::ClientFactory), the reconnect
//!   [`Backoff`](connector::Backoff) and the [`Connector`](connector::Connector) state machine.
//! - [`framing`]: Twisted's line, netstring and length-prefixed receivers as
//!   [`Decoder`](framing::Decoder)/[`Encoder`](framing::Encoder) pairs and the
//!   [`Framed`](framing::Framed) adapter.
//! - [`datagram`] for UDP, connected UDP and multicast: the
//!   [`DatagramProtocol`](datagram::DatagramProtocol), its
//!   [`DatagramTransport`](datagram::DatagramTransport) and the [`Endpoint`](datagram::Endpoint)
//!   driver.
//! - [`proxy`]: the PROXY protocol (v1, v2): [`AcceptProxy`](proxy::AcceptProxy) shows a
//!   protocol behind a load balancer its real client; [`encode_v2`](proxy::encode_v2) sends one.
//! - [`relay`]: Twisted's `portforward` as two [`RelayLeg`](relay::RelayLeg)s with backpressure
//!   across them.
//! - [`resolve`] for IP literals and the typed [`DnsError`](resolve::DnsError).
//! - [`Reason`]: why a connection ended or failed, one taxonomy for every runtime.
//! - [`Instant`] and [`TimerTable`]: time as an input.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod amp;
#[cfg(feature = "std")]
mod clock;
pub mod connector;
pub mod datagram;
pub mod framing;
#[cfg(test)]
mod fuzz_corpus;
pub mod policy;
pub mod proxy;
pub mod rand;
mod reason;
pub mod relay;
pub mod resolve;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod timer;

#[cfg(feature = "std")]
pub use clock::MonotonicClock;
pub use reason::{IoKind, Limit, ProtocolError, Reason, Timeout, TlsError, TlsErrorKind};
pub use time::Instant;
pub use timer::{TimerId, TimerTable};

/// Re-export of the `bytes` crate, whose `Bytes`/`BytesMut` are in every signature.
pub use bytes;
