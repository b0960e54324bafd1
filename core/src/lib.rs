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
//! ## The run loop
//!
//! Every runtime is this loop around a [`stream::Connection`]. Written out here once, with an
//! in-memory "socket", it is also a test:
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
//! loop {
//!     // 1. Feed input: a read when the connection wants one, otherwise EOF.
//!     if conn.wants_read() {
//!         match reads.next() {
//!             Some(bytes) => conn.handle_data(now, &bytes),
//!             None => conn.handle_read_closed(now),
//!         }
//!     }
//!     // 2. Drain writes: a real runtime does one vectored write of these slices.
//!     let chunk: Vec<u8> = conn.poll_write().flatten().copied().collect();
//!     if !chunk.is_empty() {
//!         sent.extend_from_slice(&chunk);
//!         conn.handle_written(now, chunk.len());
//!     }
//!     // 3. Carry out socket actions; Close and Abort end the connection.
//!     match conn.poll_action() {
//!         Some(Action::Close) | Some(Action::Abort) => break,
//!         Some(Action::ShutdownWrite) | None => {}
//!     }
//!     // 4. Sleep until the next deadline (or readiness), then tell the machine the time.
//!     if let Some(deadline) = conn.next_timeout() {
//!         now = now.max(deadline);
//!         conn.handle_timeout(now);
//!     }
//! }
//! assert_eq!(sent, b"hello world");
//! assert!(conn.reason().unwrap().is_clean());
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
//! - [`resolve`] for IP literals and the typed [`DnsError`](resolve::DnsError).
//! - [`Reason`]: why a connection ended or failed, one taxonomy for every runtime.
//! - [`Instant`] and [`TimerTable`]: time as an input.

#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "std")]
mod clock;
pub mod connector;
pub mod datagram;
pub mod framing;
#[cfg(test)]
mod fuzz_corpus;
pub mod policy;
pub mod rand;
mod reason;
pub mod resolve;
pub mod stream;
#[cfg(feature = "testing")]
pub mod testing;
mod time;
mod timer;

#[cfg(feature = "std")]
pub use clock::MonotonicClock;
pub use reason::{IoKind, Limit, ProtocolError, Reason, Timeout};
pub use time::Instant;
pub use timer::{TimerId, TimerTable};

/// Re-export of the `bytes` crate, whose `Bytes`/`BytesMut` are in every signature.
pub use bytes;
