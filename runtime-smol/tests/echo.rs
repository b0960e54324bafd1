//! Echo over loopback: round trip, many concurrent clients, responsiveness, executors.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_executor::{Executor, LocalExecutor};
use common::{any_port, bounded, pattern, raise_fd_limit, Echo};
use futures_lite::future;
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork_smol::{listen_tcp, listen_tcp_local, listen_tcp_on, listen_tcp_with, ListenConfig};
use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::net::TcpStream;

/// Sends `payload` and reads the same number of bytes back, writing and reading at once so a
/// large payload cannot deadlock on full socket buffers.
async fn echo_through(stream: &TcpStream, payload: &[u8]) -> Vec<u8> {
    let mut writer = stream.clone();
    let mut reader = stream.clone();
    let write = async {
        writer.write_all(payload).await.unwrap();
    };
    let read = async {
        let mut back = vec![0; payload.len()];
        reader.read_exact(&mut back).await.unwrap();
        back
    };
    future::zip(write, read).await.1
}

#[test]
fn echo_round_trip() {
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(
            echo_through(&stream, b"hello loomwork").await,
            b"hello loomwork"
        );
        let report = server.shutdown(Duration::from_secs(5)).await;
        assert_eq!((report.drained, report.aborted), (1, 0));
    });
}

#[test]
fn thousand_concurrent_clients_each_echo_64_kib() {
    raise_fd_limit();
    const CLIENTS: usize = 1000;
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let addr = server.local_addr();
        let started = Instant::now();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|i| {
                smol::spawn(async move {
                    let payload = pattern(64 * 1024, i as u8);
                    let stream = TcpStream::connect(addr).await.unwrap();
                    echo_through(&stream, &payload).await == payload
                })
            })
            .collect();
        let mut intact = 0;
        for client in clients {
            intact += usize::from(client.await);
        }
        eprintln!("1000 clients x 64 KiB echoed in {:?}", started.elapsed());
        assert_eq!(intact, CLIENTS);
        server.shutdown(Duration::from_secs(10)).await;
    });
}

#[test]
fn new_client_is_answered_while_500_silent_connections_are_open() {
    raise_fd_limit();
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let mut silent = Vec::new();
        for _ in 0..500 {
            silent.push(TcpStream::connect(server.local_addr()).await.unwrap());
        }
        while server.connection_count() < 500 {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let started = Instant::now();
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(echo_through(&stream, b"ping").await, b"ping");
        eprintln!(
            "answered with 500 silent connections open in {:?}",
            started.elapsed()
        );
        drop(silent);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

/// Writes every message it is sent to its peer.
struct Relay;

impl Protocol for Relay {
    type Message = String;
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, String>) {
        data.clear();
    }
    fn message(&mut self, message: String, tx: &mut Transport<'_, String>) {
        let _ = tx.write(message.into_bytes());
    }
}

#[test]
fn handle_message_reaches_the_peer() {
    bounded(async {
        let server = listen_tcp(any_port(), |_| Relay).unwrap();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        let handle = loop {
            if let Some(handle) = server.handles().pop() {
                break handle;
            }
            smol::Timer::after(Duration::from_millis(1)).await;
        };
        let sent = Instant::now();
        handle.send("from afar".to_string()).unwrap();
        let mut got = [0; 9];
        stream.read_exact(&mut got).await.unwrap();
        eprintln!("handle message delivered in {:?}", sent.elapsed());
        assert_eq!(&got, b"from afar");
        // After the connection is gone the handle gives the message back.
        assert!(handle.close());
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        server.shutdown(Duration::from_secs(5)).await;
        assert_eq!(handle.send("late".into()), Err("late".to_string()));
    });
}

/// Holds an `Rc`, so it can only run on a `LocalExecutor`.
struct RcEcho(Rc<RefCell<usize>>);

impl Protocol for RcEcho {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        *self.0.borrow_mut() += data.len();
        let _ = tx.write(data.split().freeze());
    }
}

#[test]
fn protocol_holding_rc_runs_on_local_executor() {
    let ex = Rc::new(LocalExecutor::new());
    let seen = Rc::new(RefCell::new(0));
    let counted = Rc::clone(&seen);
    let server = listen_tcp_local(
        &ex,
        any_port(),
        move |_| RcEcho(Rc::clone(&counted)),
        ListenConfig::default(),
    )
    .unwrap();
    bounded(ex.run(async {
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(echo_through(&stream, b"not send").await, b"not send");
        let report = server.shutdown(Duration::from_secs(5)).await;
        assert_eq!(report.drained, 1);
    }));
    assert_eq!(*seen.borrow(), 8);
}

#[test]
fn user_executor_runs_the_server() {
    let ex = Arc::new(Executor::new());
    let server = listen_tcp_on(&ex, any_port(), |_| Echo, ListenConfig::default()).unwrap();
    bounded(ex.run(async {
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(
            echo_through(&stream, b"user executor").await,
            b"user executor"
        );
        server.shutdown(Duration::from_secs(5)).await;
    }));
}

#[test]
fn several_reuseport_listeners_share_one_address() {
    bounded(async {
        let config = ListenConfig {
            listeners: 4,
            ..ListenConfig::default()
        };
        let server = listen_tcp_with(any_port(), |_| Echo, config).unwrap();
        for i in 0..32u8 {
            let stream = TcpStream::connect(server.local_addr()).await.unwrap();
            assert_eq!(echo_through(&stream, &[i; 100]).await, [i; 100]);
        }
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn refusing_factory_closes_at_once_without_callbacks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static BUILT: AtomicUsize = AtomicUsize::new(0);
    struct Never;
    impl loomwork::stream::ServerFactory for Never {
        type Protocol = Echo;
        fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Echo> {
            BUILT.fetch_add(1, Ordering::SeqCst);
            None
        }
        fn connection_closed(&mut self, _: std::net::SocketAddr, _: &loomwork::Reason) {
            panic!("PR-2: a refused connection has no lifecycle");
        }
    }
    bounded(async {
        let server = listen_tcp(any_port(), Never).unwrap();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut rest = Vec::new();
        // The server closes the socket: EOF (or a reset) and nothing else.
        let _ = stream.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
        assert_eq!(server.connection_count(), 0);
        server.shutdown(Duration::from_secs(1)).await;
    });
}

#[test]
fn echo_over_ipv6_loopback() {
    bounded(async {
        let server = listen_tcp("[::1]:0".parse().unwrap(), |_| Echo).unwrap();
        assert!(server.local_addr().is_ipv6());
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(echo_through(&stream, b"six").await, b"six");
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn stop_listening_refuses_new_clients_and_keeps_established_ones() {
    bounded(async {
        let mut server = listen_tcp(any_port(), |_| Echo).unwrap();
        let stream = TcpStream::connect(server.local_addr()).await.unwrap();
        server.stop_listening().await;
        let err = TcpStream::connect(server.local_addr()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(echo_through(&stream, b"still here").await, b"still here");
        let report = server.shutdown(Duration::from_secs(5)).await;
        assert_eq!((report.drained, report.aborted), (1, 0));
    });
}

#[test]
fn dropped_server_stops_accepting_but_connections_go_on() {
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let addr = server.local_addr();
        let stream = TcpStream::connect(addr).await.unwrap();
        while server.connection_count() < 1 {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let handle = server.handles().pop().unwrap();
        drop(server);
        // The listener closes once the executor has run the cancelled accept task.
        loop {
            match TcpStream::connect(addr).await {
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => {
                    smol::Timer::after(Duration::from_millis(1)).await;
                }
            }
        }
        assert_eq!(echo_through(&stream, b"orphan").await, b"orphan");
        // A handle taken before still reaches the connection: abort resets the peer.
        assert!(handle.abort());
        let mut rest = Vec::new();
        let err = stream.clone().read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    });
}
