//! TCP echo server: Twisted's `Echo` protocol behind a `ServerFactory`.
//!
//! `cargo run --release --example echo_server -- --listen 127.0.0.1:1234 --runtime smol`

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork::stream::Config;
use loomwork_examples::{
    parse_args, serve_tcp_proxied, AnnouncingEcho, Echo, Runtime, ServeOptions,
};

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
    /// Every connection must start with a PROXY protocol header (v1 or v2); the protocol sees
    /// the client address it carries.
    #[arg(long)]
    accept_proxy: bool,
    /// On each connection first write `you are IP:PORT\r\n` (the peer as the protocol sees it).
    #[arg(long)]
    announce_peer: bool,
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
    if args.announce_peer {
        serve_tcp_proxied("tcp", options, args.accept_proxy, |_| AnnouncingEcho);
    } else {
        serve_tcp_proxied("tcp", options, args.accept_proxy, |_| Echo);
    }
}
