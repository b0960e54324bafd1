//! The load generator: plain blocking std sockets on their own threads (no runtime of any
//! contender), loopback only, every loop bounded by a deadline and a count.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// However a run goes, a blocked read gives up after this.
const STALL: Duration = Duration::from_secs(5);

/// One run's result.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Run {
    /// Operations (bytes, round trips, frames, packets, connections) per second.
    pub rate: f64,
    /// Median latency in microseconds (request/response runs only).
    pub p50_us: f64,
    /// 99th-percentile latency in microseconds (request/response runs only).
    pub p99_us: f64,
    /// Packets lost, in percent of those sent (UDP runs only).
    pub loss_pct: f64,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to a loopback server");
    stream.set_nodelay(true).expect("nodelay");
    stream.set_read_timeout(Some(STALL)).expect("timeout");
    stream
}

/// Streams `pattern` (repeated) to the server on each of `connections` connections for
/// `duration`, reading the echo concurrently; then half-closes and reads to EOF.
/// Rate: bytes echoed per second.
pub(crate) fn stream_echo(
    addr: SocketAddr,
    connections: usize,
    pattern: &[u8],
    duration: Duration,
) -> Run {
    let streams: Vec<TcpStream> = (0..connections).map(|_| connect(addr)).collect();
    let pattern: Arc<[u8]> = pattern.into();
    let start = Arc::new(Barrier::new(connections + 1));
    let workers: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            let pattern = Arc::clone(&pattern);
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let mut writer = stream.try_clone().expect("clone");
                start.wait();
                let deadline = Instant::now() + duration;
                let sender = thread::spawn(move || {
                    let mut sent = 0u64;
                    while Instant::now() < deadline {
                        if writer.write_all(&pattern).is_err() {
                            break;
                        }
                        sent += pattern.len() as u64;
                    }
                    let _ = writer.shutdown(Shutdown::Write);
                    sent
                });
                let mut reader = stream;
                let mut buf = vec![0; 256 * 1024];
                let mut received = 0u64;
                while let Ok(n @ 1..) = reader.read(&mut buf) {
                    received += n as u64;
                }
                let sent = sender.join().expect("sender");
                if sent != received {
                    eprintln!("warning: echo from {addr} returned {received} of {sent} bytes");
                }
                received
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Run {
        rate: total as f64 / began.elapsed().as_secs_f64(),
        ..Run::default()
    }
}

/// `connections` clients each sending a `size`-byte request and waiting for the echo, for
/// `duration`. Rate: round trips per second; p50/p99 over every round trip of the run.
pub(crate) fn request_response(
    addr: SocketAddr,
    connections: usize,
    size: usize,
    duration: Duration,
) -> Run {
    let streams: Vec<TcpStream> = (0..connections).map(|_| connect(addr)).collect();
    let start = Arc::new(Barrier::new(connections + 1));
    let workers: Vec<_> = streams
        .into_iter()
        .map(|mut stream| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let request = vec![b'q'; size];
                let mut reply = vec![0; size];
                let mut latencies = Vec::with_capacity(1 << 16);
                start.wait();
                let deadline = Instant::now() + duration;
                while Instant::now() < deadline && latencies.len() < 10_000_000 {
                    let sent = Instant::now();
                    if stream.write_all(&request).is_err() || stream.read_exact(&mut reply).is_err()
                    {
                        break;
                    }
                    latencies.push(sent.elapsed().as_nanos() as u64);
                }
                latencies
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let mut all: Vec<u64> = workers
        .into_iter()
        .flat_map(|w| w.join().expect("worker"))
        .collect();
    let elapsed = began.elapsed().as_secs_f64();
    all.sort_unstable();
    let pick = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .map_or(f64::NAN, |&ns| ns as f64 / 1e3)
    };
    Run {
        rate: all.len() as f64 / elapsed,
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        loss_pct: 0.0,
    }
}

/// Connect, exchange one byte, close with a reset (no TIME_WAIT to exhaust the port range), on
/// two client threads for `duration`. Rate: connections per second.
pub(crate) fn connection_setup(addr: SocketAddr, duration: Duration) -> Run {
    let deadline = Instant::now() + duration;
    let began = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut done = 0u64;
                while Instant::now() < deadline && done < 1_000_000 {
                    let mut stream = connect(addr);
                    let mut byte = [7u8];
                    if stream.write_all(&byte).is_err() || stream.read_exact(&mut byte).is_err() {
                        break;
                    }
                    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Run {
        rate: total as f64 / began.elapsed().as_secs_f64(),
        ..Run::default()
    }
}

fn udp_client(addr: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind(SocketAddr::from(([127, 0, 0, 1], 0))).expect("bind");
    socket.connect(addr).expect("connect");
    socket
}

/// One client sending a `size`-byte datagram and waiting for its echo (20 ms, then it counts
/// as lost), for `duration`. Rate: replies per second.
pub(crate) fn udp_request_response(addr: SocketAddr, size: usize, duration: Duration) -> Run {
    let socket = udp_client(addr);
    socket
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let request = vec![b'u'; size];
    let mut reply = vec![0; 65536];
    let (mut sent, mut received) = (0u64, 0u64);
    let began = Instant::now();
    while began.elapsed() < duration && sent < 10_000_000 {
        if socket.send(&request).is_err() {
            break;
        }
        sent += 1;
        if socket.recv(&mut reply).is_ok() {
            received += 1;
        }
    }
    udp_run(sent, received, began.elapsed())
}

/// One client keeping up to `window` `size`-byte datagrams in flight, a second thread counting
/// echoes, for `duration`. A window that makes no progress for 20 ms is written off as lost.
/// Rate: echoes received per second.
pub(crate) fn udp_pipelined(addr: SocketAddr, size: usize, window: u64, duration: Duration) -> Run {
    let socket = udp_client(addr);
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let _ = socket2::SockRef::from(&socket).set_recv_buffer_size(4 << 20);
    let reader = socket.try_clone().expect("clone");
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    let began = Instant::now();
    let deadline = began + duration;
    let receiver = thread::spawn(move || {
        let mut buf = vec![0; 65536];
        // Counts until the sender is done and nothing more arrives for 200 ms.
        while reader.recv(&mut buf).is_ok() {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    });
    let request = vec![b'p'; size];
    let (mut sent, mut written_off) = (0u64, 0u64);
    let mut last_progress = (Instant::now(), 0u64);
    while Instant::now() < deadline && sent < 100_000_000 {
        let got = received.load(Ordering::Relaxed);
        if sent.saturating_sub(got).saturating_sub(written_off) < window {
            if socket.send(&request).is_err() {
                break;
            }
            sent += 1;
        } else if got != last_progress.1 {
            last_progress = (Instant::now(), got);
        } else if last_progress.0.elapsed() > Duration::from_millis(20) {
            written_off = sent - got;
            last_progress = (Instant::now(), got);
        } else {
            thread::yield_now();
        }
    }
    let sending = began.elapsed();
    receiver.join().expect("receiver");
    let got = received.load(Ordering::Relaxed);
    // Echoes arriving in the 200 ms quiet period still count; time stops when sending did.
    udp_run(sent, got, sending)
}

fn udp_run(sent: u64, received: u64, elapsed: Duration) -> Run {
    Run {
        rate: received as f64 / elapsed.as_secs_f64(),
        loss_pct: if sent == 0 {
            0.0
        } else {
            sent.saturating_sub(received) as f64 * 100.0 / sent as f64
        },
        ..Run::default()
    }
}

impl Run {
    /// The same run with its rate multiplied by `factor` (bytes/s to MiB/s or frames/s).
    pub(crate) fn scaled(self, factor: f64) -> Run {
        Run {
            rate: self.rate * factor,
            ..self
        }
    }
}
