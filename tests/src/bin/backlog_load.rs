//! Fills a TCP echo server's listen backlog with more peers than it has descriptors for, and
//! reports what became of them (the client of `loomwork_conformance::backlog`): resets, ends
//! of stream before the echo, peers never served, and the server's CPU time while answered
//! peers hold on and the rest wait in the backlog.
//!
//! ```sh
//! (ulimit -n 64; exec target/release/examples/echo_server --listen 127.0.0.1:1234) &
//! backlog_load --connect 127.0.0.1:1234 --peers 150 --hold-s 5 --server-pid $!
//! ```
//!
//! Exits with 1 unless every peer got its echo. Loopback only; bounded by `--timeout-s`.

use clap::Parser;
use loomwork_conformance::cli::{loopback, seconds};
use std::net::SocketAddr;
use std::time::Duration;

use loomwork_conformance::backlog::flood;

/// Flags (see the module docs).
#[derive(Parser, Debug)]
#[command(name = "backlog_load")]
struct Args {
    /// The echo server (loopback only).
    #[arg(long, default_value = "127.0.0.1:1234", value_parser = loopback)]
    connect: SocketAddr,
    /// Peers that connect at once, each sending `ping`.
    #[arg(long, default_value_t = 150)]
    peers: usize,
    /// How long the answered peers stay connected, in seconds.
    #[arg(long = "hold-s", default_value = "5", value_parser = seconds)]
    hold: Duration,
    /// The server's process id, to read its CPU time from /proc.
    #[arg(long)]
    server_pid: u32,
    /// Every wait's limit, in seconds.
    #[arg(long = "timeout-s", default_value = "30", value_parser = seconds)]
    timeout: Duration,
}

fn main() {
    let args = Args::parse();
    // The peers are this process's own descriptors: make room for them.
    let _ = loomwork_net::testing::raise_descriptor_limit(args.peers as u64 + 64);
    let report = match flood(
        args.connect,
        args.peers,
        args.hold,
        args.server_pid,
        args.timeout,
    ) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("backlog_load: FAILED to connect the peers: {err}");
            std::process::exit(1);
        }
    };
    let cpu = report
        .server_cpu_while_held
        .map_or("unknown".to_string(), |cpu| format!("{cpu:?}"));
    println!(
        "peers {}: echoed {} ({} while held), resets {}, eof before echo {}, other failures {}, \
         unanswered {}",
        report.peers,
        report.echoed,
        report.echoed_while_held,
        report.resets,
        report.eofs,
        report.failures,
        report.unanswered
    );
    println!(
        "server CPU while held {:.2?}: {cpu}; the rest served {:.2?} after the first close",
        report.held, report.recovery
    );
    if !report.all_served() {
        eprintln!("backlog_load: FAILED: not every peer got its echo");
        std::process::exit(1);
    }
}
