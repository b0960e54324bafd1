//! # loomwork-std
//!
//! Runs loomwork protocols over blocking-style std TCP sockets, one thread per connection.
//!
//! - [`listen_tcp`] / [`listen_tcp_with`]: a server; [`Server`] reports its address, lists its
//!   connections' [`Handle`](loomwork::stream::Handle)s and shuts down gracefully.
//! - [`connect_tcp`] / [`connect_tcp_with`]: a client driving a
//!   [`Connector`](loomwork::connector::Connector) with reconnects; [`Client`] stops it and
//!   gives the factory back.
//! - [`relay_dialer`]: the [`Dialer`](loomwork::relay::Dialer) of a
//!   [`RelayFactory`](loomwork::relay::RelayFactory), which runs each relay's upstream leg on
//!   its client leg's thread.
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.
//!
//! ```
//! use loomwork::bytes::BytesMut;
//! use loomwork::connector::{ClientFactory, Retry};
//! use loomwork::stream::{Protocol, Transport};
//! use loomwork::Reason;
//! use std::time::Duration;
//!
//! /// The server: Twisted's Echo.
//! struct Echo;
//! impl Protocol for Echo {
//!     type Message = ();
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         let _ = tx.write(data.split().freeze());
//!     }
//! }
//!
//! /// The client: says hello, waits for the echo, closes.
//! #[derive(Default)]
//! struct Hello { echoed: Vec<u8> }
//! impl Protocol for Hello {
//!     type Message = ();
//!     fn connection_made(&mut self, tx: &mut Transport<'_>) {
//!         let _ = tx.write_slice(b"hello");
//!     }
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         self.echoed.extend_from_slice(&data.split());
//!         if self.echoed.len() == 5 {
//!             tx.lose_connection();
//!         }
//!     }
//! }
//!
//! /// Connects once and keeps the client protocol's verdict.
//! #[derive(Default)]
//! struct Once { lost: Option<Reason> }
//! impl ClientFactory for Once {
//!     type Protocol = Hello;
//!     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Hello> {
//!         Some(Hello::default())
//!     }
//!     fn connection_lost(&mut self, reason: &Reason) -> Retry {
//!         self.lost = Some(reason.clone());
//!         Retry::Stop
//!     }
//! }
//!
//! let server = loomwork_std::listen_tcp("127.0.0.1:0".parse()?, |_| Echo)?;
//! let client = loomwork_std::connect_tcp(server.local_addr(), Once::default());
//! assert_eq!(client.join().lost, Some(Reason::Done));
//! server.shutdown(Duration::from_secs(1));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Design: one thread, one non-blocking socket, one `poll` per connection
//!
//! Each connection runs on its own named thread, which owns a non-blocking socket and an
//! eventfd that its mailbox signals, and sleeps in one `poll(2)` over the two. The alternative,
//! blocking reads on a reader thread beside a writer/driver thread, needs two or three threads
//! per connection, a channel per direction, and still cannot interrupt a blocking `write` to a
//! peer that stopped reading (so close deadlines and shutdown aborts would wait on the peer).
//! With one `poll` per thread:
//!
//! - the thread sleeps in exactly one place, until the socket is ready for what the connection
//!   wants, the connection's next deadline, or a notification from its mailbox: messages,
//!   closes and aborts posted through a handle are handled at once, and nothing ever wakes on a
//!   tick;
//! - a sleep is one system call, and a read that comes back short is taken as "drained" (the
//!   level-triggered `poll` reports anything that arrives later), so a burst of traffic costs
//!   a `recv`, a `sendmsg` and a `poll`, against a `read` and a `write` for a plain blocking
//!   echo loop; bytes are received straight into the connection's buffer, with no copy;
//! - backpressure is exact: when the connection does not want to read, read interest is
//!   simply not asked for, the kernel buffer fills and TCP flow control pushes back on the peer;
//!   a reset is still noticed at once;
//! - a slow or stalled peer blocks only its own thread, and never blocks it in a system call:
//!   graceful-close deadlines and shutdown aborts always get through;
//! - everything else is the sans-IO core's business; this crate only moves bytes and time, and
//!   the socket operations themselves (reading, sending without `SIGPIPE`, half-closing, the
//!   accept back-off, UDP) are `loomwork-net`'s, shared with `loomwork-smol`.
//!
//! The cost is a thread and two descriptors per connection (the socket and the eventfd; a
//! socket pair instead of the eventfd where there is none) and tens of KiB of resident memory,
//! mostly the thread's stack, which suits this runtime's purpose: simple, blocking style, a few
//! thousand connections. For more, use `loomwork-smol`.
//!
//! A connection's thread can also drive *companions* beside its connection: work attached
//! through the connection's [`Handle`](loomwork::stream::Handle) (`Handle::attach`), turned by
//! the same loop and sleeping in the same `poll(2)`, whose descriptor list then holds the
//! companions' sockets too. [`relay_dialer`] uses this to run a relay's upstream leg on the
//! client leg's thread: one thread per relay, and the legs pass their bytes without a context
//! switch. When the connection ends, its thread runs the companions to their end before it
//! counts as gone (a server shutdown waits for them).
//!
//! Accept threads and UDP endpoint threads sleep in the same kind of `poll(2)`, over their
//! socket and a wake-up descriptor that a stop request signals: one wake mechanism throughout.
//!
//! A connection's thread does not end with it: it waits up to 10 s for the server's next
//! connection (at most 64 threads wait at once), which spares short connections the cost of
//! making and ending a thread (about thirty system calls and a fresh stack's page faults).
//!
//! Every thread is named (`loomwork-accept-PORT-N`, `loomwork-conn`, `loomwork-client-ADDR`)
//! and joined: [`Server::shutdown`] returns only after all of the server's threads have exited,
//! and [`Client::join`] after the client's. Dropping the [`Server`] lets waiting threads go.

#![forbid(unsafe_code)]

mod client;
mod companion;
mod driver;
mod listener;
mod mailbox;
mod pool;
mod registry;
mod relay;
mod serve;
mod server;
mod wait;

pub mod udp;

pub use client::{connect_tcp, connect_tcp_with, Client};
pub use listener::{listen_tcp, listen_tcp_with};
pub use loomwork::{connector::ClientMessage, stream::ServerMessage};
pub use loomwork_net::{resolve, ListenConfig};
pub use relay::relay_dialer;
pub use server::{Server, ShutdownReport};
pub use udp::{
    adopt_udp, listen_multicast, listen_multicast_with, listen_udp, listen_udp_with, UdpEndpoint,
    UdpHandle,
};
