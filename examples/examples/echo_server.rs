//! TCP echo server: Twisted's `Echo` protocol behind a `ServerFactory`.
//!
//! `cargo run --release --example echo_server -- --listen 127.0.0.1:1234 --runtime smol`

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork::stream::Config;
use loomwork_examples::{parse_args, serve_tcp, Echo, Runtime, ServeOptions};

/// TCP echo server (Twisted's Echo protocol).
#[derive(Parser, Debug)]
#[command(name = "echo_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// Accept on this many SO_REUSEPORT listeners (spreads accepting over cores).
    #[arg(long, default_value_t = 1)]
    listeners: usize,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

fn main() {
    let args: Args = parse_args();
    let options = ServeOptions {
        listen: args.listen,
        runtime: args.runtime,
        connection: Config::default(),
        listeners: args.listeners,
        drain: Duration::from_millis(args.drain_ms),
    };
    serve_tcp(options, |_| Echo);
}
