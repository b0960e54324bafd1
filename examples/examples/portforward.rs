//! TCP relay: Twisted's `portforward`. Each accepted connection dials `--upstream` and bytes
//! move both ways, half-closes passed on, with backpressure across the two legs; with
//! `--send-proxy` the upstream first gets a PROXY protocol header naming the real client.
//!
//! `cargo run --release --example portforward -- --listen 127.0.0.1:1235 --upstream 127.0.0.1:1234`

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use loomwork::proxy::Version;
use loomwork::relay::{RelayConfig, RelayFactory};
use loomwork_examples::{parse_args, relay_dialer, serve_tcp, Runtime, ServeOptions};

/// TCP relay (Twisted's portforward).
#[derive(Parser, Debug)]
#[command(name = "portforward", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1235")]
    listen: SocketAddr,
    /// Where to relay each connection to (IP:PORT).
    #[arg(long)]
    upstream: SocketAddr,
    /// Send a PROXY protocol header of this version to the upstream first.
    #[arg(long, value_enum)]
    send_proxy: Option<ProxyVersion>,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// Bytes a leg may pass to the other before they are queued there (memory bound).
    #[arg(long, default_value_t = 256 * 1024)]
    window: usize,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

/// The PROXY protocol versions `--send-proxy` takes.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ProxyVersion {
    /// The text header.
    V1,
    /// The binary header.
    V2,
}

fn main() {
    let args: Args = parse_args();
    let upstream = args.upstream;
    let config = RelayConfig {
        window: args.window,
        send_proxy: args.send_proxy.map(|v| match v {
            ProxyVersion::V1 => Version::V1,
            ProxyVersion::V2 => Version::V2,
        }),
        report: Some(Arc::new(|report| {
            let peer = report.peer.map_or_else(|| "?".into(), |p| p.to_string());
            eprintln!(
                "relay {peer} ended: {}; {} bytes to upstream, {} bytes to client{}",
                report.reason,
                report.to_upstream,
                report.to_client,
                if report.connected {
                    ""
                } else {
                    " (upstream never connected)"
                }
            );
        })),
    };
    let options = ServeOptions::new(
        args.listen,
        args.runtime,
        Duration::from_millis(args.drain_ms),
    );
    serve_tcp(
        options,
        RelayFactory::new(relay_dialer(args.runtime, upstream), config),
    );
}
