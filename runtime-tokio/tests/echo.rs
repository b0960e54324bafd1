//! Echo over loopback: round trip on both runtime flavours, many concurrent clients,
//! responsiveness, handles, `LocalSet`.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use common::{
    any_port, bounded, bounded_on, current_thread, echo_through, multi_thread, pattern,
    raise_fd_limit, sleep_ms, within_bound, Echo,
};
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork_tokio::{listen_tcp, listen_tcp_local, listen_tcp_on, listen_tcp_with, ListenConfig};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

fn round_trip(rt: &tokio::runtime::Runtime) {
    bounded_on(rt, async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(
            echo_through(&mut stream, b"hello loomwork").await,
            b"hello loomwork"
        );
        let report = server.shutdown(Duration::from_secs(5)).await;
        assert_eq!((report.drained, report.aborted), (1, 0));
    });
}

#[test]
fn echo_round_trip_on_a_multi_thread_runtime() {
    round_trip(&multi_thread());
}

#[test]
fn echo_round_trip_on_a_current_thread_runtime() {
    round_trip(&current_thread());
}

#[test]
fn listen_outside_a_runtime_is_an_error_not_a_panic() {
    let err = listen_tcp(any_port(), |_| Echo).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Other);
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
                tokio::spawn(async move {
                    let payload = pattern(64 * 1024, i as u8);
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    echo_through(&mut stream, &payload).await == payload
                })
            })
            .collect();
        let mut intact = 0;
        for client in clients {
            intact += usize::from(client.await.unwrap());
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
            sleep_ms(1).await;
        }
        let started = Instant::now();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(echo_through(&mut stream, b"ping").await, b"ping");
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
            sleep_ms(1).await;
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

/// Holds an `Rc`, so it can only run on a `LocalSet`.
struct RcEcho(Rc<RefCell<usize>>);

impl Protocol for RcEcho {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        *self.0.borrow_mut() += data.len();
        let _ = tx.write(data.split().freeze());
    }
}

#[test]
fn protocol_holding_rc_runs_on_a_local_set() {
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let seen = Rc::new(RefCell::new(0));
    let counted = Rc::clone(&seen);
    local.block_on(&rt, async {
        within_bound(async {
            // Inside the running set: the server's tasks join it.
            let server = listen_tcp_local(
                &local,
                any_port(),
                move |_| RcEcho(Rc::clone(&counted)),
                ListenConfig::default(),
            );
            let server = server.unwrap();
            let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
            assert_eq!(echo_through(&mut stream, b"not send").await, b"not send");
            let report = server.shutdown(Duration::from_secs(5)).await;
            assert_eq!(report.drained, 1);
        })
        .await
    });
    assert_eq!(*seen.borrow(), 8);
}

#[test]
fn local_set_server_started_outside_the_set_runs_once_it_is_driven() {
    let rt = current_thread();
    let local = tokio::task::LocalSet::new();
    let seen = Rc::new(RefCell::new(0));
    let counted = Rc::clone(&seen);
    let server = {
        let _entered = rt.enter();
        listen_tcp_local(
            &local,
            any_port(),
            move |_| RcEcho(Rc::clone(&counted)),
            ListenConfig::default(),
        )
        .unwrap()
    };
    local.block_on(&rt, async {
        within_bound(async {
            let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
            assert_eq!(echo_through(&mut stream, b"local").await, b"local");
            let report = server.shutdown(Duration::from_secs(5)).await;
            assert_eq!(report.drained, 1);
        })
        .await
    });
    assert_eq!(*seen.borrow(), 5);
}

#[test]
fn server_started_from_another_thread_runs_on_the_given_runtime() {
    let rt = multi_thread();
    let server = listen_tcp_on(rt.handle(), any_port(), |_| Echo, ListenConfig::default()).unwrap();
    bounded_on(&rt, async {
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(
            echo_through(&mut stream, b"given runtime").await,
            b"given runtime"
        );
        server.shutdown(Duration::from_secs(5)).await;
    });
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
            let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
            assert_eq!(echo_through(&mut stream, &[i; 100]).await, [i; 100]);
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
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        assert_eq!(echo_through(&mut stream, b"six").await, b"six");
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn stop_listening_refuses_new_clients_and_keeps_established_ones() {
    bounded(async {
        let mut server = listen_tcp(any_port(), |_| Echo).unwrap();
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        // A connection still in the kernel's accept queue is reset when the listener closes:
        // wait until the server has accepted it.
        while server.connection_count() < 1 {
            sleep_ms(1).await;
        }
        server.stop_listening().await;
        let err = TcpStream::connect(server.local_addr()).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(
            echo_through(&mut stream, b"still here").await,
            b"still here"
        );
        let report = server.shutdown(Duration::from_secs(5)).await;
        assert_eq!((report.drained, report.aborted), (1, 0));
    });
}

#[test]
fn dropped_server_stops_accepting_but_connections_go_on() {
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let addr = server.local_addr();
        let mut stream = TcpStream::connect(addr).await.unwrap();
        while server.connection_count() < 1 {
            sleep_ms(1).await;
        }
        let handle = server.handles().pop().unwrap();
        drop(server);
        // The listener closes once the runtime has dropped the aborted accept task.
        loop {
            match TcpStream::connect(addr).await {
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionRefused => break,
                _ => sleep_ms(1).await,
            }
        }
        assert_eq!(echo_through(&mut stream, b"orphan").await, b"orphan");
        // A handle taken before still reaches the connection: abort resets the peer.
        assert!(handle.abort());
        let mut rest = Vec::new();
        let err = stream.read_to_end(&mut rest).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    });
}
