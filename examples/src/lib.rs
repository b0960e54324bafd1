//! Shared plumbing for the example programs: the command-line contract of docs/examples.md
//! (flags, the `listening on` line, one-line errors with exit status 2, clean stop on
//! SIGINT/SIGTERM).
//!
//! Ids such as `LR-5` cite Twisted behaviours listed in `docs/twisted-behaviour.md` in the
//! repository; references such as "docs/architecture.md §7" point into the same `docs/` folder.

pub mod amp;
pub mod chat;
mod client;
mod serve;
pub mod tls;

pub use client::{connect_and_join, outcome_or_exit};
pub use serve::{serve_tcp, serve_tcp_as, serve_tcp_proxied, ServeOptions};

use std::io::Write;
use std::net::SocketAddr;
use std::sync::mpsc;

use clap::Parser;
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};

/// Which adapter drives the sans-IO core (`--runtime std|smol|tokio`, default `smol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Blocking std sockets (`loomwork-std`).
    Std,
    /// smol / async-io (`loomwork-smol`).
    #[default]
    Smol,
    /// tokio, on a multi-thread runtime with a worker per core (`loomwork-tokio`).
    Tokio,
}

/// The tokio runtime of `--runtime tokio`: multi-thread, a worker per core, IO and time on,
/// started on first use.
pub fn tokio_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|err| {
                eprintln!("error: cannot start the tokio runtime: {err}");
                std::process::exit(1);
            })
    })
}

/// Parses the command line; on a bad flag prints one line to stderr and exits with status 2.
/// `--help` prints the usage and exits 0.
pub fn parse_args<T: Parser>() -> T {
    match T::try_parse() {
        Ok(args) => args,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                std::process::exit(0);
            }
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .next()
                .unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            std::process::exit(2);
        }
    }
}

/// Prints the one `listening on <kind> <addr>` line to stdout and flushes it, so scripts and
/// tests can wait for it.
pub fn announce_listening(kind: &str, addr: SocketAddr) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {kind} {addr}");
    let _ = out.flush();
}

/// Installs the SIGINT/SIGTERM handler and returns a receiver that yields once when either
/// arrives. Call it before binding, so no signal is missed.
pub fn stop_signal() -> mpsc::Receiver<()> {
    if let Err(err) = loomwork_net::install_stop_signal() {
        eprintln!("error: cannot install the signal handler: {err}");
        std::process::exit(1);
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if loomwork_net::wait_for_stop_signal().is_ok() {
            let _ = tx.send(());
        }
    });
    rx
}

/// Resolves `HOST:PORT` (or an IP literal, `[::1]:PORT` for IPv6) to one socket address with
/// the system resolver; exits with `DNS lookup failed: <name>` on failure (docs/examples.md).
pub fn resolve_or_exit(target: &str) -> SocketAddr {
    use std::net::ToSocketAddrs;
    if let Ok(addr) = target.parse::<SocketAddr>() {
        return addr;
    }
    match target.to_socket_addrs().map(|mut it| it.next()) {
        Ok(Some(addr)) => addr,
        _ => {
            let name = target.rsplit_once(':').map_or(target, |(host, _)| host);
            eprintln!("DNS lookup failed: {name}");
            std::process::exit(1);
        }
    }
}

/// Twisted's `Echo`: writes back whatever arrives, without copying. Shared by `echo_server`
/// and `custom_loop`, which drive the very same protocol through different loops.
///
/// Backpressure comes from the core's default `pause_producing`: while this connection's write
/// queue is above the high-water mark it stops reading, so a client that sends without reading
/// cannot grow the server's memory.
pub struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// `echo_server --announce-peer`: first writes `you are IP:PORT\r\n` with the peer as the
/// protocol sees it (the real client behind a PROXY header, with `--accept-proxy`), then echoes.
pub struct AnnouncingEcho;

impl Protocol for AnnouncingEcho {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        if let Some(peer) = tx.peer() {
            let _ = tx.write(format!("you are {peer}\r\n"));
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// Dials a relay's upstream on `runtime` (`portforward`): the runtime's `relay_dialer`, one
/// attempt with the default 30 s connect timeout, whose upstream leg runs in the client leg's
/// own task (thread, on std).
pub fn relay_dialer(runtime: Runtime, upstream: SocketAddr) -> loomwork::relay::Dialer {
    use loomwork::connector;
    use loomwork::stream::Config;
    let attempt = connector::Config::default();
    match runtime {
        Runtime::Std => loomwork_std::relay_dialer(upstream, attempt, Config::default()),
        Runtime::Smol => loomwork_smol::relay_dialer(upstream, attempt, Config::default()),
        Runtime::Tokio => loomwork_tokio::relay_dialer(upstream, attempt, Config::default()),
    }
}

/// The README's code blocks, compiled and run as doctests so the front page cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
pub mod udp;
