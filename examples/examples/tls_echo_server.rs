//! TLS echo server: Twisted's `echoserv_ssl.py`, the `Echo` protocol inside the TLS layer.
//!
//! `cargo run --release --example tls_echo_server` makes a self-signed CA and a certificate
//! for localhost, writes the CA to a file it names on stderr, and serves on 127.0.0.1:8443;
//! `cargo run --release --example tls_echo_client -- --ca <that file>` talks to it.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork_examples::tls::{LoggedTls, ServerCertArgs};
use loomwork_examples::{parse_args, serve_tcp_as, Echo, Runtime, ServeOptions};

/// TLS echo server (Twisted's echoserv_ssl.py).
#[derive(Parser, Debug)]
#[command(name = "tls_echo_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    #[command(flatten)]
    tls: ServerCertArgs,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

fn main() {
    let args: Args = parse_args();
    let config = args.tls.server_config_or_exit();
    let options = ServeOptions::new(
        args.listen,
        args.runtime,
        Duration::from_millis(args.drain_ms),
    );
    serve_tcp_as("tls", options, LoggedTls::new(config, |_| Echo));
}
