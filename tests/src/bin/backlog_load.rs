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

use std::net::SocketAddr;
use std::time::Duration;

use loomwork_conformance::backlog::flood;

struct Args {
    connect: SocketAddr,
    peers: usize,
    hold: Duration,
    server_pid: u32,
    timeout: Duration,
}

fn parse() -> Result<Args, String> {
    let mut connect = "127.0.0.1:1234".parse().map_err(|e| format!("{e}"))?;
    let (mut peers, mut hold, mut server_pid, mut timeout) = (150, 5, None, 30);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag}: {e}");
        match flag.as_str() {
            "--connect" => connect = value.parse().map_err(|e| bad(&e))?,
            "--peers" => peers = value.parse().map_err(|e| bad(&e))?,
            "--hold-s" => hold = value.parse().map_err(|e| bad(&e))?,
            "--server-pid" => server_pid = Some(value.parse().map_err(|e| bad(&e))?),
            "--timeout-s" => timeout = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(Args {
        connect,
        peers,
        hold: Duration::from_secs(hold),
        server_pid: server_pid.ok_or("--server-pid is required")?,
        timeout: Duration::from_secs(timeout),
    })
}

fn main() {
    let args = match parse() {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(2);
        }
    };
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
