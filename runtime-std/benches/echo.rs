//! Echo over loopback: loomwork-std against a hand-written blocking thread-per-connection echo
//! server, side by side in one run. Prints figures and ratios; asserts nothing about speed.
//!
//! `cargo bench -p loomwork-std --bench echo` (loopback only; bounded in bytes, round trips
//! and wall time).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};

/// Connections in the throughput run.
const STREAMS: usize = 8;
/// Bytes each connection sends (and receives back).
const BYTES_PER_STREAM: usize = 32 * 1024 * 1024;
/// Round trips in the latency run.
const ROUND_TRIPS: usize = 20_000;
/// Idle connections held open in the footprint run.
const IDLE_CONNECTIONS: usize = 1000;
/// A run stops early past this, whatever its count.
const TIME_LIMIT: Duration = Duration::from_secs(20);

struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// The baseline: what a programmer writes with std alone.
fn spawn_plain_echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            thread::spawn(move || {
                stream.set_nodelay(true).unwrap();
                let mut buf = vec![0; 64 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// MiB/s echoed by `STREAMS` connections at once, each writing and reading concurrently.
fn throughput(addr: SocketAddr) -> f64 {
    let started = Instant::now();
    let workers: Vec<_> = (0..STREAMS)
        .map(|_| {
            thread::spawn(move || {
                let stream = TcpStream::connect(addr).unwrap();
                stream.set_nodelay(true).unwrap();
                let mut writer = stream.try_clone().unwrap();
                let sender = thread::spawn(move || {
                    let chunk = vec![7u8; 64 * 1024];
                    let mut sent = 0;
                    while sent < BYTES_PER_STREAM && started.elapsed() < TIME_LIMIT {
                        writer.write_all(&chunk).unwrap();
                        sent += chunk.len();
                    }
                    writer.shutdown(std::net::Shutdown::Write).unwrap();
                    sent
                });
                let mut reader = stream;
                let mut buf = vec![0; 64 * 1024];
                let mut received = 0;
                loop {
                    match reader.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => received += n,
                    }
                }
                let sent = sender.join().unwrap();
                assert_eq!(sent, received, "echo lost bytes");
                received
            })
        })
        .collect();
    let total: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    total as f64 / (1024.0 * 1024.0) / started.elapsed().as_secs_f64()
}

/// Microseconds per 64-byte round trip on one connection.
fn latency(addr: SocketAddr) -> f64 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let message = [42u8; 64];
    let mut back = [0u8; 64];
    let started = Instant::now();
    let mut done = 0;
    while done < ROUND_TRIPS && started.elapsed() < TIME_LIMIT {
        stream.write_all(&message).unwrap();
        stream.read_exact(&mut back).unwrap();
        done += 1;
    }
    started.elapsed().as_secs_f64() * 1e6 / done as f64
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .and_then(|line| line.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Memory and threads per idle connection (server side; the clients are plain sockets).
fn footprint() {
    let server = loomwork_std::listen_tcp("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let threads_before = std::fs::read_dir("/proc/self/task").unwrap().count();
    let rss_before = rss_kib();
    let clients: Vec<TcpStream> = (0..IDLE_CONNECTIONS)
        .map_while(|_| TcpStream::connect(server.local_addr()).ok())
        .collect();
    let started = Instant::now();
    while server.connection_count() < clients.len() && started.elapsed() < TIME_LIMIT {
        thread::sleep(Duration::from_millis(10));
    }
    let live = server.connection_count();
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count() - threads_before;
    let rss = rss_kib().saturating_sub(rss_before);
    println!("footprint, {live} idle connections:");
    println!("  threads       {threads:>9}");
    println!(
        "  RSS           {:>9.1} KiB per connection",
        rss as f64 / live.max(1) as f64
    );
    let stopping = Instant::now();
    let report = server.shutdown(Duration::from_secs(5));
    println!(
        "  shutdown      {:>9.1} ms ({report:?})",
        stopping.elapsed().as_secs_f64() * 1e3
    );
    drop(clients);
}

fn main() {
    let server = loomwork_std::listen_tcp("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let plain = spawn_plain_echo();

    // Warm-up, then alternate so that neither side always runs on a cooler machine.
    let _ = latency(server.local_addr());
    let _ = latency(plain);
    let loom_tp = throughput(server.local_addr());
    let plain_tp = throughput(plain);
    let loom_lat = latency(server.local_addr());
    let plain_lat = latency(plain);

    println!(
        "throughput, {STREAMS} connections x {} MiB each way:",
        BYTES_PER_STREAM >> 20
    );
    println!("  loomwork-std  {loom_tp:>9.1} MiB/s");
    println!("  plain std     {plain_tp:>9.1} MiB/s");
    println!(
        "  ratio         {:>9.2} (loomwork / plain)",
        loom_tp / plain_tp
    );
    println!("latency, {ROUND_TRIPS} round trips of 64 bytes:");
    println!("  loomwork-std  {loom_lat:>9.1} us");
    println!("  plain std     {plain_lat:>9.1} us");
    println!(
        "  ratio         {:>9.2} (loomwork / plain)",
        loom_lat / plain_lat
    );
    server.shutdown(Duration::from_secs(5));
    footprint();
}
