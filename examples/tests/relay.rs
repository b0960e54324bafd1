//! The relay on real loopback sockets, on every runtime: the four half-close orders pass every
//! byte and each side's EOF, and nothing is reset.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use loomwork::relay::{RelayConfig, RelayFactory};
use loomwork_examples::{relay_dialer, Runtime};

const PATIENCE: Duration = Duration::from_secs(10);

/// One side's part: what it writes first (then shuts down writing, if `shut_first`), and what
/// it writes once it has read the other side's EOF (then shuts down).
#[derive(Clone)]
struct Part {
    first: Vec<u8>,
    shut_first: bool,
    after_eof: Vec<u8>,
}

fn part(first: &[u8], shut_first: bool, after_eof: &[u8]) -> Part {
    Part {
        first: first.to_vec(),
        shut_first,
        after_eof: after_eof.to_vec(),
    }
}

/// Plays `part` on `stream`; returns everything read until EOF.
fn play(mut stream: TcpStream, part: &Part) -> Vec<u8> {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let part = part.clone();
        thread::spawn(move || {
            stream.write_all(&part.first).unwrap();
            if part.shut_first {
                stream.shutdown(Shutdown::Write).unwrap();
            }
        })
    };
    let mut got = Vec::new();
    stream.read_to_end(&mut got).expect("read to a clean EOF");
    writer.join().unwrap();
    if !part.shut_first {
        stream.write_all(&part.after_eof).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
    }
    got
}

/// Starts a relay on `runtime` to `upstream`; the returned value keeps it running.
fn relay(runtime: Runtime, upstream: SocketAddr) -> (SocketAddr, Box<dyn std::any::Any>) {
    let any = "127.0.0.1:0".parse().unwrap();
    let factory = RelayFactory::new(relay_dialer(runtime, upstream), RelayConfig::default());
    match runtime {
        Runtime::Std => {
            let server = loomwork_std::listen_tcp(any, factory).unwrap();
            (server.local_addr(), Box::new(server))
        }
        Runtime::Smol => {
            let server = loomwork_smol::listen_tcp(any, factory).unwrap();
            (server.local_addr(), Box::new(server))
        }
        Runtime::Tokio => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let server = {
                let _inside = rt.enter();
                loomwork_tokio::listen_tcp(any, factory).unwrap()
            };
            (server.local_addr(), Box::new((server, rt)))
        }
    }
}

#[test]
fn the_four_half_close_orders_on_every_runtime() {
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    let orders = [
        (
            "client first",
            part(b"hello", true, b""),
            part(b"", false, b"bye"),
        ),
        (
            "upstream first",
            part(b"", false, b"late"),
            part(b"banner", true, b""),
        ),
        ("both at once", part(b"c", true, b""), part(b"s", true, b"")),
        (
            "client first, big answer",
            part(&big[..1000], true, b""),
            part(b"", false, &big),
        ),
    ];
    for runtime in [Runtime::Std, Runtime::Smol, Runtime::Tokio] {
        for (name, client, upstream) in &orders {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let upstream_addr = listener.local_addr().unwrap();
            let (relay_addr, _running) = relay(runtime, upstream_addr);
            let server = {
                let upstream = upstream.clone();
                thread::spawn(move || {
                    let (stream, _) = listener.accept().unwrap();
                    play(stream, &upstream)
                })
            };
            let at_client = play(TcpStream::connect(relay_addr).unwrap(), client);
            let at_upstream = server.join().unwrap();
            let sent_by_client = [client.first.clone(), client.after_eof.clone()].concat();
            let sent_by_upstream = [upstream.first.clone(), upstream.after_eof.clone()].concat();
            assert!(
                at_upstream == sent_by_client,
                "{runtime:?}, {name}: bytes at the upstream"
            );
            assert_eq!(
                at_client.len(),
                sent_by_upstream.len(),
                "{runtime:?}, {name}"
            );
            assert!(
                at_client == sent_by_upstream,
                "{runtime:?}, {name}: bytes at the client"
            );
        }
    }
}
