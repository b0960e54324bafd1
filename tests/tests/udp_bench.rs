//! A side-by-side measurement, not a test: echo round trips over loopback through a raw
//! blocking std socket, loomwork-std, loomwork-smol and loomwork-tokio, in one run; prints
//! rates and ratios and asserts nothing about time.
//!
//! `cargo test --release -p loomwork-conformance --test udp_bench -- --ignored --nocapture`

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use loomwork::bytes::Bytes;
use loomwork::datagram::{Config, DatagramProtocol, DatagramTransport};
use loomwork_conformance::udp::{Running, Runtime};

/// Round trips per run, and a time cap per run: whichever comes first.
const ROUND_TRIPS: u32 = 50_000;
const TIME_CAP: Duration = Duration::from_secs(20);

struct Echo;

impl DatagramProtocol for Echo {
    type Message = ();
    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        let _ = tx.send_to(data, from);
    }
}

/// Ping-pong `size`-byte datagrams with `server`; returns round trips per second.
fn ping_pong(server: SocketAddr, size: usize) -> f64 {
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let payload = vec![7u8; size];
    let mut buf = vec![0u8; 65_536];
    let started = Instant::now();
    let mut done = 0u32;
    while done < ROUND_TRIPS && started.elapsed() < TIME_CAP {
        client.send_to(&payload, server).unwrap();
        match client.recv_from(&mut buf) {
            Ok((n, _)) => assert_eq!(n, size),
            Err(err) => panic!("lost a datagram on loopback: {err}"),
        }
        done += 1;
    }
    f64::from(done) / started.elapsed().as_secs_f64()
}

fn raw_echo_server() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn echo_round_trips_raw_vs_every_runtime() {
    for size in [64, 1_200, 16_384, 65_507] {
        let raw = ping_pong(raw_echo_server(), size);
        let mut line = format!("{size:>6} B: raw {raw:>8.0} rt/s");
        for rt in [Runtime::Std, Runtime::Smol, Runtime::Tokio] {
            let server: Running<Echo> =
                rt.listen_udp("127.0.0.1:0".parse().unwrap(), Echo, Config::default());
            let rate = ping_pong(server.local_addr(), size);
            server.stop();
            line += &format!(" | {rt:?} {rate:>8.0} rt/s ({:.2}x raw)", rate / raw);
        }
        println!("{line}");
    }
}
