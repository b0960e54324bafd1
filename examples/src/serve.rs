//! The main loop every example TCP server shares: listen on the chosen runtime, say where,
//! wait for SIGINT/SIGTERM, stop gracefully and report how the connections ended.

use std::net::SocketAddr;
use std::time::Duration;

use loomwork::proxy::{AcceptConfig, AcceptProxyFactory};
use loomwork::stream::{Config, Protocol, ServerFactory};

use crate::{announce_listening, Runtime};

/// How an example server listens and stops.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Where to listen (`--listen`).
    pub listen: SocketAddr,
    /// Which adapter drives the core (`--runtime`).
    pub runtime: Runtime,
    /// Limits and thresholds of every connection.
    pub connection: Config,
    /// How many SO_REUSEPORT listening sockets to open.
    pub listeners: usize,
    /// How long the graceful stop may take before the remaining connections are aborted.
    pub drain: Duration,
}

impl ServeOptions {
    /// One listening socket on `listen`, default connection limits, a graceful stop within
    /// `drain`: what most servers ask for.
    pub fn new(listen: SocketAddr, runtime: Runtime, drain: Duration) -> Self {
        ServeOptions {
            listen,
            runtime,
            connection: Config::default(),
            listeners: 1,
            drain,
        }
    }
}

/// Serves `factory` until SIGINT/SIGTERM, then shuts down within `options.drain` and prints
/// `stopped: N drained, M aborted` to stderr. Prints the `listening on tcp ADDR` line once bound;
/// when it cannot listen, says why on stderr and exits with status 1 (docs/examples.md).
pub fn serve_tcp<F>(options: ServeOptions, factory: F)
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    <F::Protocol as Protocol>::Message: Send + 'static,
{
    serve_tcp_as("tcp", options, factory);
}

/// [`serve_tcp_as`], and with `accept_proxy` (the `--accept-proxy` flag) every connection must
/// start with a PROXY protocol header (v1 or v2) whose client address the protocols see as
/// their peer (docs/examples.md).
pub fn serve_tcp_proxied<F>(kind: &str, options: ServeOptions, accept_proxy: bool, factory: F)
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    <F::Protocol as Protocol>::Message: Send + 'static,
{
    if accept_proxy {
        let factory = AcceptProxyFactory::new(factory, AcceptConfig::required());
        serve_tcp_as(kind, options, factory);
    } else {
        serve_tcp_as(kind, options, factory);
    }
}

/// [`serve_tcp`], announcing `listening on <kind> ADDR` (`tls` for the TLS servers).
pub fn serve_tcp_as<F>(kind: &str, options: ServeOptions, factory: F)
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    <F::Protocol as Protocol>::Message: Send + 'static,
{
    // Installed before binding, so a signal that arrives at once is not missed.
    if let Err(err) = loomwork_net::install_stop_signal() {
        eprintln!("error: cannot install the signal handler: {err}");
        std::process::exit(1);
    }
    let ServeOptions {
        listen,
        runtime,
        connection,
        listeners,
        drain,
    } = options;
    let (drained, aborted) = match runtime {
        Runtime::Std => {
            let config = loomwork_std::ListenConfig {
                connection,
                listeners,
                ..Default::default()
            };
            let server = loomwork_std::listen_tcp_with(listen, factory, config)
                .unwrap_or_else(|err| cannot_listen(listen, &err));
            announce_listening(kind, server.local_addr());
            let report = server
                .serve_until_signal(drain)
                .unwrap_or_else(|err| fail(&err));
            (report.drained, report.aborted)
        }
        Runtime::Smol => {
            let config = loomwork_smol::ListenConfig {
                connection,
                listeners,
                ..Default::default()
            };
            let server = loomwork_smol::listen_tcp_with(listen, factory, config)
                .unwrap_or_else(|err| cannot_listen(listen, &err));
            announce_listening(kind, server.local_addr());
            let report =
                smol::block_on(server.serve_until_signal(drain)).unwrap_or_else(|err| fail(&err));
            (report.drained, report.aborted)
        }
        Runtime::Tokio => {
            let config = loomwork_tokio::ListenConfig {
                connection,
                listeners,
                ..Default::default()
            };
            // Inside the runtime, as a tokio program would: `listen_tcp_with` starts on the
            // current one.
            let report = crate::tokio_runtime()
                .block_on(async {
                    let server = loomwork_tokio::listen_tcp_with(listen, factory, config)
                        .unwrap_or_else(|err| cannot_listen(listen, &err));
                    announce_listening(kind, server.local_addr());
                    server.serve_until_signal(drain).await
                })
                .unwrap_or_else(|err| fail(&err));
            (report.drained, report.aborted)
        }
    };
    eprintln!("stopped: {drained} drained, {aborted} aborted");
}

fn fail(err: &std::io::Error) -> ! {
    eprintln!("error: {err}");
    std::process::exit(1);
}

fn cannot_listen(addr: SocketAddr, err: &std::io::Error) -> ! {
    eprintln!("Couldn't listen on {addr}: {err}");
    std::process::exit(1);
}
