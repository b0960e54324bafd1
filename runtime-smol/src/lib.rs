//! # loomwork-smol
//!
//! Runs [`loomwork`] protocols over TCP on [smol](https://docs.rs/smol): one task per
//! connection over `async_io::Async<TcpStream>`, an `async_io::Timer` for the connection's next
//! deadline, and a channel for the messages its [`Handle`](loomwork::stream::Handle) posts.
//! The adapter moves bytes and time only; everything else happens in the sans-IO core.
//!
//! - Servers: [`listen_tcp`] / [`listen_tcp_with`] on smol's global executor,
//!   [`listen_tcp_on`] on your `Arc<Executor>`, [`listen_tcp_local`] on a `LocalExecutor` for
//!   protocols that are not `Send`. They return a [`Server`] with a graceful
//!   [`shutdown`](Server::shutdown).
//! - Clients: [`connect_tcp`] / [`connect_tcp_with`], [`connect_tcp_on`],
//!   [`connect_tcp_local`] drive a [`Connector`](loomwork::connector::Connector), retrying as the
//!   [`ClientFactory`](loomwork::connector::ClientFactory) decides. They return a [`Client`].
//! - Relays: [`relay_dialer`] gives a [`RelayFactory`](loomwork::relay::RelayFactory) upstream
//!   legs that run in their client leg's task.
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.
//!
//! ## What a connection task does
//! Each wake-up it delivers queued handle messages, fires expired deadlines, reads once (at
//! most 64 KiB, only while the connection wants to read), writes once (a vectored write of up
//! to 64 queued chunks), and carries out the connection's socket action (half-close, close,
//! abort with `SO_LINGER` 0). Those socket operations are `loomwork-net`'s, the same calls
//! loomwork-std makes, so both runtimes treat every socket outcome alike. While there is more
//! to do it loops, yielding to the executor every 16 rounds so one busy peer cannot starve the others; otherwise it sleeps until the
//! socket is ready, a message arrives or the next deadline passes. There is no polling tick.
//!
//! ## Memory
//! Reads go straight into the connection's receive buffer, with storage lent by a small pool per
//! thread (`loomwork_net::tcp::read_pooled`) that a connection gives back before it waits
//! (`release_buffer`): a relayed or echoed chunk is never copied in user space, and a waiting
//! connection holds no I/O buffer (a partial frame of up to 1 KiB moves into storage of its own
//! size). A connection task's future is about 500 bytes, its state
//! one more allocation; an idle connection costs the server about 1.8 KiB of resident memory
//! (measured by `tests/memory.rs`).
//!
//! ## Executors
//! [`Spawner`] covers executors that run `Send` tasks ([`GlobalExecutor`],
//! `Arc<async_executor::Executor>`), [`LocalSpawner`] a thread's `Rc<LocalExecutor>`. The
//! server's accept tasks keep a clone of the spawner until the [`Server`] is shut down or
//! dropped.

#![forbid(unsafe_code)]

mod client;
mod companion;
mod driver;
mod listener;
mod mailbox;
mod readiness;
mod registry;
mod relay;
mod resolve;
mod server;
mod spawn;

pub mod udp;

pub use client::{connect_tcp, connect_tcp_local, connect_tcp_on, connect_tcp_with, Client};
pub use loomwork::{connector::ClientMessage, stream::ServerMessage};
pub use loomwork_net::ListenConfig;
pub use relay::{relay_dialer, relay_dialer_on};
pub use resolve::resolve;
pub use server::{
    listen_tcp, listen_tcp_local, listen_tcp_on, listen_tcp_with, Server, ShutdownReport,
};
pub use spawn::{GlobalExecutor, LocalSpawner, Spawner};
pub use udp::{
    adopt_udp, listen_multicast, listen_multicast_with, listen_udp, listen_udp_with, UdpEndpoint,
    UdpHandle,
};
