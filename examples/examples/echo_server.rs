//! TCP echo server: Twisted's `Echo` protocol behind a `ServerFactory`.
//!
//! `cargo run --release --example echo_server -- --listen 127.0.0.1:1234 --runtime smol`

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork_examples::{announce_listening, parse_args, stop_signal, Echo, Runtime};

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
    let stop = stop_signal();
    let drain = Duration::from_millis(args.drain_ms);
    let bound = |result: std::io::Result<SocketAddr>| match result {
        Ok(addr) => announce_listening("tcp", addr),
        Err(err) => {
            eprintln!("Couldn't listen on {}: {err}", args.listen);
            std::process::exit(1);
        }
    };
    match args.runtime {
        Runtime::Std => {
            let config = loomwork_std::ListenConfig {
                listeners: args.listeners,
                ..Default::default()
            };
            let server = loomwork_std::listen_tcp_with(args.listen, |_| Echo, config);
            bound(server.as_ref().map(|s| s.local_addr()).map_err(clone_err));
            let Ok(server) = server else { return };
            let _ = stop.recv();
            let report = server.shutdown(drain);
            eprintln!(
                "stopped: {} drained, {} aborted",
                report.drained, report.aborted
            );
        }
        Runtime::Smol => {
            let config = loomwork_smol::ListenConfig {
                listeners: args.listeners,
                ..Default::default()
            };
            let server = loomwork_smol::listen_tcp_with(args.listen, |_| Echo, config);
            bound(server.as_ref().map(|s| s.local_addr()).map_err(clone_err));
            let Ok(server) = server else { return };
            let _ = stop.recv();
            let report = smol::block_on(server.shutdown(drain));
            eprintln!(
                "stopped: {} drained, {} aborted",
                report.drained, report.aborted
            );
        }
    }
}

fn clone_err(err: &std::io::Error) -> std::io::Error {
    std::io::Error::new(err.kind(), err.to_string())
}
