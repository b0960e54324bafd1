//! The side-by-side suite of issues 7 and 17: loomwork on every runtime against tokio, tokio-util,
//! plain smol and plain std servers, over loopback, interleaved round by round so every ratio comes
//! from one run on the same (noisy, shared) machine. Prints one markdown table of medians,
//! min–max and the ratio of each loomwork server to each peer. Asserts nothing about speed.
//!
//! ```sh
//! cargo bench -p loomwork-bench --bench suite              # everything, a few minutes
//! cargo bench -p loomwork-bench --bench suite -- --quick   # shorter runs, 1,000 idle conns
//! LOOMWORK_SUITE_ONLY=udp cargo bench -p loomwork-bench --bench suite   # sections by name
//! ```
//!
//! Every server runs in this process (smol servers on one executor with a thread per core,
//! tokio and loomwork-tokio servers on one multi-thread runtime with a worker per core) except for the memory
//! measurement, which starts each server alone in a child process. The load generator is plain
//! blocking std sockets on its own threads. Every load loop is bounded in count and time.

mod amp;
mod load;
mod relay;
mod report;
mod rss;
mod servers;
mod tls;

use std::net::SocketAddr;
use std::time::Duration;

use load::Run;
use report::{Measurement, Table};
use servers::{FramedServer, Framing, Tcp, Udp};

/// One timed run of a contender for the given time.
type Measure<'a> = Box<dyn FnMut(Duration) -> Run + 'a>;

/// A server's name and how to measure it.
type Contender<'a> = (&'a str, Measure<'a>);

/// How long the suite runs.
struct Plan {
    /// Length of one timed run.
    run: Duration,
    /// Interleaved rounds per measurement.
    rounds: usize,
    /// Idle connections in the memory measurement.
    idle_connections: usize,
}

fn main() {
    if let Ok(name) = std::env::var(rss::CHILD_VAR) {
        let connections = std::env::var("LOOMWORK_SUITE_CONNECTIONS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000);
        rss::serve_child(&name, connections);
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let plan = if quick {
        Plan {
            run: Duration::from_millis(200),
            rounds: 3,
            idle_connections: 1_000,
        }
    } else {
        Plan {
            run: Duration::from_millis(400),
            rounds: 9,
            idle_connections: 10_000,
        }
    };
    let mut plan = plan;
    if let Some(rounds) = std::env::var("LOOMWORK_SUITE_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        plan.rounds = rounds;
    }
    let only = std::env::var("LOOMWORK_SUITE_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || section.contains(only.as_str());
    let mut table = Table::default();
    let started = std::time::Instant::now();

    if wanted("tcp echo") {
        tcp_echo(&plan, &mut table);
    }
    if wanted("tcp request/response") {
        tcp_request_response(&plan, &mut table);
    }
    if wanted("framed") {
        framed(&plan, &mut table);
    }
    if wanted("udp") {
        udp(&plan, &mut table);
    }
    if wanted("connection setup") {
        connection_setup(&plan, &mut table);
    }
    if wanted("idle memory") {
        idle_memory(&plan, &mut table);
    }
    if wanted("amp") {
        amp_rows(&plan, &mut table);
    }
    if wanted("relay") {
        relay_rows(&plan, &mut table);
    }
    if wanted("tls") || only.starts_with("tls ") {
        tls_rows(&plan, &mut table, &only);
    }
    table.print(&format!(
        "{} rounds of {:?} per contender, interleaved; {} cores; took {:.0?}",
        plan.rounds,
        plan.run,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        started.elapsed()
    ));
}

/// Runs each contender once untimed, then `rounds` times in turn, rotating who goes first.
///
/// `LOOMWORK_SUITE_SERVER=name[,name...]` runs only those servers (to profile one under `perf`,
/// or to compare two with less noise).
fn interleave(plan: &Plan, contenders: &mut [Contender<'_>]) -> Vec<Vec<Run>> {
    if let Ok(only) = std::env::var("LOOMWORK_SUITE_SERVER") {
        let only: Vec<&str> = only.split(',').collect();
        for (_, run) in contenders
            .iter_mut()
            .filter(|(name, _)| !only.contains(name))
        {
            *run = Box::new(|_| Run::default());
        }
    }
    for (_, run) in contenders.iter_mut() {
        let _ = run(Duration::from_millis(100));
    }
    let mut runs = vec![Vec::new(); contenders.len()];
    for round in 0..plan.rounds {
        for i in 0..contenders.len() {
            let k = (i + round) % contenders.len();
            runs[k].push((contenders[k].1)(plan.run));
        }
    }
    runs
}

/// Runs `measure` against every server (`servers.0[i]` listening on `servers.1[i]`),
/// interleaved, and records the runs as one measurement.
fn compare(
    plan: &Plan,
    table: &mut Table,
    title: &str,
    unit: &'static str,
    (names, addrs): (&[&str], &[SocketAddr]),
    measure: impl Fn(SocketAddr, Duration) -> Run,
) {
    let measure = &measure;
    let mut contenders: Vec<Contender> = names
        .iter()
        .zip(addrs)
        .map(|(&name, &addr)| {
            let run: Measure = Box::new(move |d| measure(addr, d));
            (name, run)
        })
        .collect();
    let runs = interleave(plan, &mut contenders);
    record(table, title, unit, names, runs);
}

fn record(table: &mut Table, title: &str, unit: &'static str, names: &[&str], runs: Vec<Vec<Run>>) {
    let mut m = Measurement::new(title, unit);
    let verbose = std::env::var_os("LOOMWORK_SUITE_VERBOSE").is_some();
    for (name, runs) in names.iter().zip(runs) {
        if verbose && runs.iter().any(|run| run.rate > 0.0) {
            let rates: Vec<String> = runs.iter().map(|run| format!("{:.0}", run.rate)).collect();
            eprintln!("{title} | {name}: {}", rates.join(" "));
        }
        m.add(name, runs);
    }
    eprintln!("done: {title}");
    table.push(m);
}

fn tcp_echo(plan: &Plan, table: &mut Table) {
    let addrs: Vec<_> = Tcp::ALL.iter().map(|t| t.start()).collect();
    let names: Vec<_> = Tcp::ALL.iter().map(|t| t.name()).collect();
    let pattern = vec![b'e'; 16 * 1024];
    for connections in [1, 32] {
        let title = format!("TCP echo, {connections} conn, 16 KiB writes");
        compare(plan, table, &title, "MiB/s", (&names, &addrs), |addr, d| {
            load::stream_echo(addr, connections, &pattern, d).scaled(1.0 / (1 << 20) as f64)
        });
    }
}

fn tcp_request_response(plan: &Plan, table: &mut Table) {
    let addrs: Vec<_> = Tcp::ALL.iter().map(|t| t.start()).collect();
    let names: Vec<_> = Tcp::ALL.iter().map(|t| t.name()).collect();
    for connections in [1, 32] {
        let title = format!("TCP request/response, {connections} conn, 32 B");
        compare(plan, table, &title, "req/s", (&names, &addrs), |addr, d| {
            load::request_response(addr, connections, 32, d)
        });
    }
}

fn framed(plan: &Plan, table: &mut Table) {
    let names: Vec<_> = FramedServer::ALL.iter().map(|s| s.name()).collect();
    for framing in [Framing::Line, Framing::Int32] {
        let addrs: Vec<_> = FramedServer::ALL.iter().map(|s| s.start(framing)).collect();
        for frame in [64usize, 1024] {
            let pattern = frames(framing, frame, 256 * 1024);
            let kind = match framing {
                Framing::Line => "line",
                Framing::Int32 => "int32",
            };
            let title = format!("framed {kind} echo, 1 conn, {frame} B frames, pipelined");
            compare(
                plan,
                table,
                &title,
                "frames/s",
                (&names, &addrs),
                |addr, d| load::stream_echo(addr, 1, &pattern, d).scaled(1.0 / frame as f64),
            );
        }
    }
}

/// About `total` bytes of `frame`-byte frames (on the wire) of `framing`.
fn frames(framing: Framing, frame: usize, total: usize) -> Vec<u8> {
    let mut one = Vec::with_capacity(frame);
    match framing {
        Framing::Line => {
            one.resize(frame - 1, b'l');
            one.push(b'\n');
        }
        Framing::Int32 => {
            one.extend_from_slice(&((frame - 4) as u32).to_be_bytes());
            one.resize(frame, b'i');
        }
    }
    one.repeat(total / frame)
}

fn udp(plan: &Plan, table: &mut Table) {
    let addrs: Vec<_> = Udp::ALL.iter().map(|u| u.start()).collect();
    let names: Vec<_> = Udp::ALL.iter().map(|u| u.name()).collect();
    for pipelined in [false, true] {
        let title = if pipelined {
            "UDP pipelined (64 in flight), 64 B"
        } else {
            "UDP request/response, 64 B"
        };
        compare(plan, table, title, "pkt/s", (&names, &addrs), |addr, d| {
            if pipelined {
                load::udp_pipelined(addr, 64, 64, d)
            } else {
                load::udp_request_response(addr, 64, d)
            }
        });
    }
}

fn connection_setup(plan: &Plan, table: &mut Table) {
    let addrs: Vec<_> = Tcp::ALL.iter().map(|t| t.start()).collect();
    let names: Vec<_> = Tcp::ALL.iter().map(|t| t.name()).collect();
    compare(
        plan,
        table,
        "TCP connection setup (connect, 1 B echo, close), 2 clients",
        "conn/s",
        (&names, &addrs),
        load::connection_setup,
    );
}

fn idle_memory(plan: &Plan, table: &mut Table) {
    let n = plan.idle_connections;
    let names: Vec<_> = Tcp::ALL.iter().map(|t| t.name()).collect();
    let mut runs = Vec::new();
    // A thread per connection runs into vm.max_map_count (65,530 mappings) near 6,000
    // loomwork-std connections, so both thread-per-connection servers get fewer.
    let threaded = n.min(5_000);
    for kind in Tcp::ALL {
        let count = match kind {
            Tcp::LoomworkStd | Tcp::PlainStd => threaded,
            _ => n,
        };
        let bytes = rss::per_idle_connection(kind, count).unwrap_or_else(|e| {
            eprintln!("warning: idle memory of {}: {e}", kind.name());
            f64::NAN
        });
        runs.push(vec![Run {
            rate: bytes,
            ..Run::default()
        }]);
    }
    let title = format!(
        "server RSS per idle connection, {n} conns ({threaded} for std kinds; lower is better)"
    );
    record(table, &title, "bytes", &names, runs);
}

/// The AMP rows of issue 16: `Sum` calls per second, 32 connections each pipelining a window
/// of 16 calls (and 1 connection, one call at a time), loomwork on every adapter beside
/// Twisted's AMP; compare with the TCP request/response rows for the cost of AMP itself.
fn amp_rows(plan: &Plan, table: &mut Table) {
    let mut names = Vec::new();
    let mut addrs = Vec::new();
    let mut children = Vec::new();
    for server in amp::AmpServer::ALL {
        if let Some((addr, child)) = server.start() {
            names.push(server.name());
            addrs.push(addr);
            children.extend(child);
        }
    }
    for (connections, window) in [(1, 1), (32, 16)] {
        let title = format!("AMP Sum calls, {connections} conn, {window} in flight each");
        compare(
            plan,
            table,
            &title,
            "calls/s",
            (&names, &addrs),
            |addr, d| amp::calls_per_second(addr, connections, window, d),
        );
    }
    drop(children);
}

/// The relay rows of issue 15: throughput (32 relays, 16 KiB writes) and request/response
/// latency through each relay, against tokio's `copy_bidirectional_with_sizes` and Twisted's
/// `portforward`; the latency row also runs straight to the upstream (no relay), so the
/// relays' added p99 is the difference.
fn relay_rows(plan: &Plan, table: &mut Table) {
    use relay::Relay;
    // Every relay and the upstream run in processes of their own (see the `relay` module).
    let (upstream, _upstream_child) = match rss::start_child(Tcp::Tokio.name(), 1_000, &[]) {
        Ok(started) => started,
        Err(err) => {
            eprintln!("warning: the relay rows' upstream could not start: {err}");
            return;
        }
    };
    let mut names = Vec::new();
    let mut addrs = Vec::new();
    let mut processes = Vec::new();
    for kind in Relay::ALL {
        match kind.start(upstream) {
            Some((addr, process)) => {
                names.push(kind.name());
                addrs.push(addr);
                processes.push(process);
            }
            None => eprintln!(
                "warning: {} could not start; its rows are left out",
                kind.name()
            ),
        }
    }
    let pattern = vec![b'r'; 16 * 1024];
    compare(
        plan,
        table,
        "relay throughput (echo through the relay), 32 conn, 16 KiB writes",
        "MiB/s",
        (&names, &addrs),
        |addr, d| load::stream_echo(addr, 32, &pattern, d).scaled(1.0 / (1 << 20) as f64),
    );
    names.push("no relay (upstream direct)");
    addrs.push(upstream);
    compare(
        plan,
        table,
        "relay request/response, 32 conn, 32 B",
        "req/s",
        (&names, &addrs),
        |addr, d| load::request_response(addr, 32, 32, d),
    );
    drop(processes);
}

/// The TLS rows of issue 14: echo throughput, full handshakes per second, RSS per idle TLS
/// connection; loomwork's `Tls` on smol and std against tokio-rustls (all on ring).
///
/// `LOOMWORK_SUITE_ONLY` of `tls echo`, `tls handshakes` or `tls memory` runs that row alone.
fn tls_rows(plan: &Plan, table: &mut Table, only: &str) {
    use tls::TlsServer;
    let row = |name: &str| only.is_empty() || only == "tls" || name.contains(only);
    let names: Vec<_> = TlsServer::ALL.iter().map(|t| t.name()).collect();
    let addrs: Vec<_> = TlsServer::ALL.iter().map(|t| t.start()).collect();
    if row("tls echo") {
        compare(
            plan,
            table,
            "TLS echo, 32 conn, 16 KiB writes",
            "MiB/s",
            (&names, &addrs),
            |addr, d| tls::echo(addr, 32, 16 * 1024, d).scaled(1.0 / (1 << 20) as f64),
        );
    }
    if row("tls handshakes") {
        compare(
            plan,
            table,
            "TLS full handshakes (connect, handshake, 1 B echo, close), 2 clients",
            "conn/s",
            (&names, &addrs),
            tls::handshakes,
        );
    }
    if !row("tls memory") {
        return;
    }
    let n = plan.idle_connections.min(5_000);
    let runs = TlsServer::ALL
        .iter()
        .map(|&kind| {
            let bytes = tls::per_idle_connection(kind, n).unwrap_or_else(|e| {
                eprintln!("warning: idle TLS memory of {}: {e}", kind.name());
                f64::NAN
            });
            vec![load::Run {
                rate: bytes,
                ..load::Run::default()
            }]
        })
        .collect();
    let title = format!("server RSS per idle TLS connection, {n} conns (lower is better)");
    record(table, &title, "bytes", &names, runs);
}
