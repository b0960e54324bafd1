//! Echo throughput and latency: loomwork-smol against a hand-written smol echo server
//! (`smol::io::copy` per connection), same clients, same run. Prints ratios; asserts nothing
//! about speed. Loopback only; every loop is bounded in count and time.
//!
//! Run: `cargo bench -p loomwork-smol --bench echo`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_lite::future;
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::{TcpListener, TcpStream};

/// Upper bound on any one measurement, whatever the machine.
const TIME_CAP: Duration = Duration::from_secs(30);

struct Echo;
impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// The baseline: a plain smol echo server, one task per connection.
fn raw_smol_server() -> (SocketAddr, smol::Task<()>) {
    let listener = smol::block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let task = smol::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            smol::spawn(async move {
                let _ = smol::io::copy(stream.clone(), &mut stream.clone()).await;
            })
            .detach();
        }
    });
    (addr, task)
}

/// `clients` connections each sending `per_client` bytes and reading them back; bytes/s.
/// Connections are made one after another first, so the listen backlog never overflows and
/// only the transfer is timed.
async fn throughput(addr: SocketAddr, clients: usize, per_client: usize) -> f64 {
    let mut streams = Vec::with_capacity(clients);
    for _ in 0..clients {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        streams.push(stream);
    }
    let started = Instant::now();
    let tasks: Vec<_> = streams
        .into_iter()
        .map(|stream| {
            smol::spawn(async move {
                let (mut reader, mut writer) = (stream.clone(), stream);
                let chunk = vec![7u8; 64 * 1024];
                let write = async {
                    let mut sent = 0;
                    while sent < per_client {
                        let n = chunk.len().min(per_client - sent);
                        writer.write_all(&chunk[..n]).await.unwrap();
                        sent += n;
                    }
                };
                let read = async {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut got = 0;
                    while got < per_client {
                        let n = reader.read(&mut buf).await.unwrap();
                        assert!(n > 0, "early EOF");
                        got += n;
                    }
                };
                future::zip(write, read).await;
            })
        })
        .collect();
    for task in tasks {
        task.await;
    }
    (clients * per_client) as f64 / started.elapsed().as_secs_f64()
}

/// Round trips of a 64-byte message on one connection; round trips per second.
async fn ping_pong(addr: SocketAddr, rounds: usize) -> f64 {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let message = [5u8; 64];
    let mut back = [0u8; 64];
    let started = Instant::now();
    let mut done = 0;
    while done < rounds && started.elapsed() < TIME_CAP {
        stream.write_all(&message).await.unwrap();
        stream.read_exact(&mut back).await.unwrap();
        done += 1;
    }
    done as f64 / started.elapsed().as_secs_f64()
}

fn capped<T>(f: impl std::future::Future<Output = T>) -> T {
    smol::block_on(future::or(f, async {
        smol::Timer::after(TIME_CAP).await;
        panic!("measurement exceeded {TIME_CAP:?}");
    }))
}

fn main() {
    let (raw_addr, _raw) = raw_smol_server();
    let server = loomwork_smol::listen_tcp("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let ours = server.local_addr();

    // Warm-up, then alternate so neither side gets a systematically warmer machine.
    capped(throughput(ours, 4, 1 << 20));
    capped(throughput(raw_addr, 4, 1 << 20));
    for (clients, per_client) in [(1, 64 << 20), (50, 4 << 20), (500, 256 << 10)] {
        let raw = capped(throughput(raw_addr, clients, per_client));
        let lw = capped(throughput(ours, clients, per_client));
        println!(
            "throughput {clients:>3} clients x {:>5} KiB: loomwork-smol {:8.1} MiB/s, raw smol {:8.1} MiB/s, ratio {:.2}",
            per_client >> 10,
            lw / (1 << 20) as f64,
            raw / (1 << 20) as f64,
            lw / raw
        );
    }
    let raw = capped(ping_pong(raw_addr, 20_000));
    let lw = capped(ping_pong(ours, 20_000));
    println!(
        "ping-pong 64 B: loomwork-smol {lw:8.0} rt/s, raw smol {raw:8.0} rt/s, ratio {:.2}",
        lw / raw
    );
    capped(server.shutdown(Duration::from_secs(5)));
}
