//! # loomwork-tokio
//!
//! Runs [`loomwork`] protocols on [tokio](https://docs.rs/tokio), inside the runtime a service
//! already has: one task per connection over a socket registered with tokio's reactor, one
//! `tokio::time::Sleep` for the connection's next deadline, and a mailbox for the messages its
//! [`Handle`](loomwork::stream::Handle) posts. The adapter moves bytes and time only;
//! everything else happens in the sans-IO core. Switching from `loomwork-smol` changes the
//! crate name: the functions and types have the same names and module paths.
//!
//! - Servers: [`listen_tcp`] / [`listen_tcp_with`] on the current runtime
//!   (`Handle::current()`, multi-thread or current-thread), [`listen_tcp_on`] on a runtime
//!   given by its `Handle` (from any thread, in a runtime or not), [`listen_tcp_local`] on a
//!   `tokio::task::LocalSet` for protocols that are not `Send`. They return a [`Server`] with a
//!   graceful [`shutdown`](Server::shutdown) and
//!   [`serve_until_signal`](Server::serve_until_signal).
//! - Clients: [`connect_tcp`] / [`connect_tcp_with`], [`connect_tcp_on`],
//!   [`connect_tcp_local`] drive a [`Connector`](loomwork::connector::Connector), retrying as the
//!   [`ClientFactory`](loomwork::connector::ClientFactory) decides. They return a [`Client`].
//! - Relays: [`relay_dialer`] gives a [`RelayFactory`](loomwork::relay::RelayFactory) upstream
//!   legs that run in their client leg's task.
//! - Datagrams: [`listen_udp`], [`listen_multicast`], [`adopt_udp`] return a [`UdpEndpoint`];
//!   [`udp::endpoint`] gives the bare future, to spawn on a `LocalSet`.
//! - [`resolve`] looks a name up on tokio's blocking pool.
//!
//! The runtime must have IO and time enabled (`Builder::enable_all`). Functions that return an
//! `io::Result` fail with an error outside a runtime; `connect_tcp` and `connect_tcp_with`
//! panic there, as `tokio::spawn` does.
//!
//! ```
//! use loomwork::bytes::BytesMut;
//! use loomwork::stream::{Protocol, Transport};
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//!
//! /// Twisted's Echo.
//! struct Echo;
//! impl Protocol for Echo {
//!     type Message = ();
//!     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
//!         let _ = tx.write(data.split().freeze());
//!     }
//! }
//!
//! let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
//! rt.block_on(async {
//!     let server = loomwork_tokio::listen_tcp("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
//!     let mut client = tokio::net::TcpStream::connect(server.local_addr()).await?;
//!     client.write_all(b"hello").await?;
//!     let mut echoed = [0; 5];
//!     client.read_exact(&mut echoed).await?;
//!     assert_eq!(&echoed, b"hello");
//!     server.shutdown(std::time::Duration::from_secs(1)).await;
//!     std::io::Result::Ok(())
//! })?;
//! # std::io::Result::Ok(())
//! ```
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.
//!
//! ## What a connection task does
//! Each wake-up it delivers queued handle messages, fires expired deadlines, reads once (at
//! most 64 KiB, only while the connection wants to read), writes once (a vectored write of up
//! to 64 queued chunks), and carries out the connection's socket action (half-close, close,
//! abort with `SO_LINGER` 0). Those socket operations are `loomwork-net`'s, the same calls
//! every runtime makes, on the std socket that `tokio::io::unix::AsyncFd` registers with the
//! reactor: tokio's own `TcpStream` would send without `MSG_NOSIGNAL` in its vectored writes.
//! tokio watches the socket edge-triggered and remembers its readiness; a read that finds the
//! socket drained, or a send that finds it full, tells it to forget that readiness, and only
//! then does the task wait. While there is more to do it loops, yielding to the scheduler
//! every 16 rounds so one busy peer cannot starve the others; otherwise it sleeps until the
//! socket is ready, a message arrives or the next deadline passes. There is no polling tick.
//!
//! ## Memory
//! Reads go straight into the connection's receive buffer, with storage lent by a small pool per
//! thread (`loomwork_net::tcp::read_pooled`) that a connection gives back before it waits
//! (`release_buffer`): a relayed or echoed chunk is never copied in user space, and a waiting
//! connection holds no I/O buffer (a partial frame of up to 1 KiB moves into storage of its own
//! size). The timer is
//! allocated only once a connection has a deadline. The task waits in one `poll_fn` over the
//! socket's reader and writer slots, its mailbox and its timer, so its future is about 240
//! bytes; an idle connection costs the server about 1.9 KiB of resident memory (measured by
//! `tests/memory.rs` and the side-by-side suite), against about 9 KiB for a plain tokio echo
//! task with its copy buffer.

#![forbid(unsafe_code)]

mod client;
mod companion;
mod driver;
mod listener;
mod mailbox;
mod registry;
mod relay;
mod resolve;
mod server;

pub mod udp;

pub use client::{connect_tcp, connect_tcp_local, connect_tcp_on, connect_tcp_with, Client};
pub use loomwork::{connector::ClientMessage, stream::ServerMessage};
pub use loomwork_net::ListenConfig;
pub use relay::relay_dialer;
pub use resolve::resolve;
pub use server::{
    listen_tcp, listen_tcp_local, listen_tcp_on, listen_tcp_with, Server, ShutdownReport,
};
pub use udp::{
    adopt_udp, listen_multicast, listen_multicast_with, listen_udp, listen_udp_with, UdpEndpoint,
    UdpHandle,
};
