//! Chat server: Twisted's classic `LineReceiver` chat, with an optional shared secret and an
//! idle timeout.
//!
//! `cargo run --release --example chat_server -- --listen 127.0.0.1:8123 --secret s3cret`
//! then, in two terminals, `nc 127.0.0.1 8123` and type `AUTH s3cret`, a name, and lines.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork_examples::chat::{ChatConfig, ChatFactory};
use loomwork_examples::{announce_listening, parse_args, stop_signal, Runtime};

/// Line-based chat server (Twisted's classic chat example).
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8123")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// Require `AUTH <SECRET>` as the first line.
    #[arg(long)]
    secret: Option<String>,
    /// Close connections silent (both ways) for this many milliseconds.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

fn main() {
    let args: Args = parse_args();
    let stop = stop_signal();
    let drain = Duration::from_millis(args.drain_ms);
    let factory = ChatFactory::new(ChatConfig {
        secret: args.secret.clone(),
        idle_timeout: args.idle_timeout_ms.map(Duration::from_millis),
    });
    let failed = |err: std::io::Error| -> ! {
        eprintln!("Couldn't listen on {}: {err}", args.listen);
        std::process::exit(1);
    };
    let report = match args.runtime {
        Runtime::Std => {
            let server =
                loomwork_std::listen_tcp(args.listen, factory).unwrap_or_else(|e| failed(e));
            announce_listening("tcp", server.local_addr());
            let _ = stop.recv();
            let report = server.shutdown(drain);
            (report.drained, report.aborted)
        }
        Runtime::Smol => {
            let server =
                loomwork_smol::listen_tcp(args.listen, factory).unwrap_or_else(|e| failed(e));
            announce_listening("tcp", server.local_addr());
            let _ = stop.recv();
            let report = smol::block_on(server.shutdown(drain));
            (report.drained, report.aborted)
        }
    };
    eprintln!("stopped: {} drained, {} aborted", report.0, report.1);
}
