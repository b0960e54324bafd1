//! A load generator for any TCP echo server: holds many connections open, measures the
//! server's memory per idle connection from /proc, then has every connection echo a checksummed
//! payload at once, and checks that the server's descriptors return to their baseline.
//!
//! ```sh
//! echo_load --connect 127.0.0.1:1234 --connections 10000 --bytes 4096 --server-pid PID
//! echo_load --connect 127.0.0.1:1234 --churn 50000 --server-pid PID
//! ```
//!
//! `--churn N` instead runs N connect/exchange/close cycles (16 at a time) and checks that the
//! server's descriptor and thread counts come back to their baseline.
//!
//! The client side is plain async-io (not loomwork), so it measures the server, not itself.
//! Loopback only; bounded by `--timeout-s` overall.

use clap::Parser;
use loomwork_conformance::cli::{loopback, seconds};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use async_io::{Async, Timer};
use futures_lite::{future, AsyncReadExt, AsyncWriteExt};
use loomwork_conformance::procfs::{fd_count, rss_kib, thread_count};

/// Flags (see the module docs).
#[derive(Parser, Debug)]
#[command(name = "echo_load")]
struct Args {
    /// The echo server (loopback only).
    #[arg(long, default_value = "127.0.0.1:1234", value_parser = loopback)]
    connect: SocketAddr,
    /// Connections held open at once.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Bytes each connection echoes.
    #[arg(long, default_value_t = 4096)]
    bytes: usize,
    /// The server's process id, to read its memory and descriptors from /proc.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The whole run's time limit, in seconds.
    #[arg(long = "timeout-s", default_value = "120", value_parser = seconds)]
    timeout: Duration,
    /// Runs this many connect/exchange/close cycles instead.
    #[arg(long)]
    churn: Option<usize>,
}

fn main() {
    let args = Args::parse();
    raise_fd_limit(args.connections as u64 + 1024);
    let deadline = Instant::now() + args.timeout;
    let work = async {
        match args.churn {
            Some(cycles) => churn(&args, cycles).await,
            None => run(&args).await,
        }
    };
    let outcome = future::block_on(future::or(work, async {
        Timer::at(deadline).await;
        Err("timed out".to_string())
    }));
    match outcome {
        Ok(()) => {}
        Err(err) => {
            eprintln!("echo_load: FAILED: {err}");
            std::process::exit(1);
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let pid = args.server_pid;
    let rss_before = pid.and_then(rss_kib);
    let fds_before = pid.and_then(fd_count);

    // 1. Open every connection, a batch at a time so the listen backlog is not overrun.
    let started = Instant::now();
    let mut streams = Vec::with_capacity(args.connections);
    for batch in (0..args.connections).collect::<Vec<_>>().chunks(256) {
        let opened = join_all(batch.iter().map(|_| connect(args.connect))).await;
        for stream in opened {
            streams.push(stream?);
        }
    }
    let connect_time = started.elapsed();
    eprintln!("{} connections open in {connect_time:.2?}", streams.len());
    // Let the server finish accepting and settle before reading its memory.
    Timer::after(Duration::from_millis(1500)).await;
    let rss_idle = pid.and_then(rss_kib);
    let fds_idle = pid.and_then(fd_count);

    // 2. Every connection echoes its own payload at once; every byte is checked.
    let started = Instant::now();
    let results = join_all(
        streams
            .into_iter()
            .enumerate()
            .map(|(i, s)| echo(s, i, args.bytes)),
    )
    .await;
    let echo_time = started.elapsed();
    let failures: Vec<String> = results.into_iter().filter_map(Result::err).collect();

    // 3. All client sockets are closed now; the server's descriptors should return.
    let mut fds_after = pid.and_then(fd_count);
    for _ in 0..100 {
        if fds_after <= fds_before {
            break;
        }
        Timer::after(Duration::from_millis(50)).await;
        fds_after = pid.and_then(fd_count);
    }

    println!(
        "connections: {} opened in {:.2?}",
        args.connections, connect_time
    );
    if let (Some(before), Some(idle)) = (rss_before, rss_idle) {
        let per_conn = (idle.saturating_sub(before) as f64 * 1024.0) / args.connections as f64;
        println!("server RSS: {before} KiB before, {idle} KiB with all idle: {per_conn:.0} bytes per connection");
    }
    println!(
        "echo: {} x {} bytes in {:.2?}: {} ok, {} failed",
        args.connections,
        args.bytes,
        echo_time,
        args.connections - failures.len(),
        failures.len()
    );
    if let (Some(before), Some(idle), Some(after)) = (fds_before, fds_idle, fds_after) {
        println!("server fds: {before} before, {idle} with all open, {after} after close");
        if after > before {
            return Err(format!(
                "server descriptors did not return to baseline: {after} > {before}"
            ));
        }
    }
    match failures.first() {
        Some(first) => Err(format!("{} echoes failed, first: {first}", failures.len())),
        None => Ok(()),
    }
}

/// Connect, echo, close, `cycles` times, 16 connections at a time; then the server's
/// descriptors and threads must be back where they started.
async fn churn(args: &Args, cycles: usize) -> Result<(), String> {
    let pid = args.server_pid;
    let (fds_before, threads_before) = (pid.and_then(fd_count), pid.and_then(thread_count));
    let started = Instant::now();
    let mut failures = 0usize;
    let mut first_failure = None;
    for batch in (0..cycles).collect::<Vec<_>>().chunks(16) {
        let results = join_all(batch.iter().map(|&i| async move {
            let stream = connect(args.connect).await?;
            echo(stream, i, args.bytes).await
        }))
        .await;
        for err in results.into_iter().filter_map(Result::err) {
            failures += 1;
            first_failure.get_or_insert(err);
        }
    }
    let elapsed = started.elapsed();
    let (mut fds_after, mut threads_after) = (pid.and_then(fd_count), pid.and_then(thread_count));
    // Up to 15 s: loomwork-std keeps a finished connection's thread for 10 s in case another
    // connection comes, so its threads are back at baseline only once that has passed (which
    // this also checks: a pooled thread that never left would be a leak).
    for _ in 0..300 {
        if fds_after <= fds_before && threads_after <= threads_before {
            break;
        }
        Timer::after(Duration::from_millis(50)).await;
        (fds_after, threads_after) = (pid.and_then(fd_count), pid.and_then(thread_count));
    }
    println!(
        "churn: {cycles} connect/echo/close cycles in {elapsed:.2?} ({:.0}/s): {} ok, {failures} failed",
        cycles as f64 / elapsed.as_secs_f64(),
        cycles - failures
    );
    println!(
        "server fds {fds_before:?} -> {fds_after:?}, threads {threads_before:?} -> {threads_after:?}"
    );
    if fds_after > fds_before || threads_after > threads_before {
        return Err("server descriptors or threads did not return to baseline".into());
    }
    match first_failure {
        Some(err) => Err(format!("{failures} cycles failed, first: {err}")),
        None => Ok(()),
    }
}

async fn connect(addr: SocketAddr) -> Result<Async<TcpStream>, String> {
    let mut last = String::new();
    for attempt in 0..20u64 {
        match Async::<TcpStream>::connect(addr).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = err.to_string(),
        }
        Timer::after(Duration::from_millis(10 * (attempt + 1))).await;
    }
    Err(format!("connect: {last}"))
}

async fn echo(stream: Async<TcpStream>, index: usize, len: usize) -> Result<(), String> {
    let payload: Vec<u8> = (0..len)
        .map(|j| (index.wrapping_mul(131) ^ j.wrapping_mul(7)) as u8)
        .collect();
    // async-io implements reading and writing for `&Async<TcpStream>`: two halves, one socket.
    let (mut reader, mut writer) = (&stream, &stream);
    let write = async {
        writer
            .write_all(&payload)
            .await
            .map_err(|e| format!("write {index}: {e}"))
    };
    let read = async {
        let mut got = vec![0u8; len];
        reader
            .read_exact(&mut got)
            .await
            .map_err(|e| format!("read {index}: {e}"))?;
        if got != payload {
            return Err(format!("connection {index}: echoed bytes differ"));
        }
        Ok(())
    };
    let (w, r) = future::zip(write, read).await;
    w?;
    r
}

/// Polls every future to completion concurrently on this thread.
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    future::poll_fn(|cx| {
        let mut done = true;
        for (slot, result) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(fut) = slot {
                match fut.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *result = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Raises the descriptor limit to at least `want`, as far as the process may.
fn raise_fd_limit(want: u64) {
    // Best effort: with fewer descriptors the load run reports the failed connections itself.
    let _ = loomwork_net::testing::raise_descriptor_limit(want);
}
