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
//!
//! Memory per idle connection is kept small: reads go into one 64 KiB buffer per thread and
//! are handed to the connection as a slice, and no I/O buffer lives in a task.

mod client;
mod config;
mod driver;
mod listener;
mod mailbox;
mod registry;
mod server;
mod socket;
mod spawn;

pub use client::{connect_tcp, connect_tcp_local, connect_tcp_on, connect_tcp_with, Client};
pub use config::ListenConfig;
pub use server::{
    listen_tcp, listen_tcp_local, listen_tcp_on, listen_tcp_with, Server, ShutdownReport,
};
pub use spawn::{GlobalExecutor, LocalSpawner, Spawner};
