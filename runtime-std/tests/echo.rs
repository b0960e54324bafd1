//! Data moves both ways: echo, many clients at once, several listeners, handles and timers.

#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::{any_port, pattern, raw_client, recv, Echo, Once, PATIENCE};
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, ServerFactory, Transport};
use loomwork::{Instant, Reason, TimerId};
use loomwork_std::{connect_tcp, listen_tcp, listen_tcp_with, ListenConfig};

/// Sends `payload`, expects it back byte for byte, then closes; reports whether it matched.
struct EchoCheck {
    payload: Vec<u8>,
    received: Vec<u8>,
    verdict: Sender<bool>,
}

impl EchoCheck {
    fn new(payload: Vec<u8>, verdict: Sender<bool>) -> Self {
        EchoCheck {
            payload,
            received: Vec::new(),
            verdict,
        }
    }
}

impl Protocol for EchoCheck {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.write_slice(&self.payload).unwrap();
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.received.extend_from_slice(&data.split());
        if self.received.len() >= self.payload.len() {
            tx.lose_connection();
        }
    }
    fn connection_lost(&mut self, _: &Reason) {
        let _ = self.verdict.send(self.received == self.payload);
    }
}

#[test]
fn echo_round_trip() {
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    let (verdict, verdicts) = mpsc::channel();
    let factory = Once::new(move || EchoCheck::new(b"hello, loomwork".to_vec(), verdict.clone()));
    let factory = connect_tcp(server.local_addr(), factory).join();
    assert!(recv(&verdicts), "the echo matches what was sent");
    assert_eq!(factory.losses, [Reason::Done]);
    assert!(factory.failures.is_empty());
    server.shutdown(PATIENCE);
}

#[test]
fn two_hundred_concurrent_clients_each_echo_64_kib() {
    const CLIENTS: usize = 200;
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    let (verdict, verdicts) = mpsc::channel();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|seed| {
            let verdict = verdict.clone();
            let factory =
                Once::new(move || EchoCheck::new(pattern(seed, 64 * 1024), verdict.clone()));
            connect_tcp(server.local_addr(), factory)
        })
        .collect();
    for client in clients {
        let factory = client.join();
        assert_eq!(factory.losses, [Reason::Done], "{:?}", factory.failures);
    }
    let matched = (0..CLIENTS).filter(|_| recv(&verdicts)).count();
    assert_eq!(matched, CLIENTS, "every client got its own bytes back");
    let report = server.shutdown(PATIENCE);
    assert_eq!(report.aborted, 0);
}

#[test]
fn several_reuseport_listeners_serve_one_port() {
    let config = ListenConfig {
        listeners: 4,
        ..ListenConfig::default()
    };
    let server = listen_tcp_with(any_port(), |_| Echo, config).unwrap();
    for seed in 0..32 {
        let mut client = raw_client(server.local_addr());
        let payload = pattern(seed, 1000);
        client.write_all(&payload).unwrap();
        let mut back = vec![0; payload.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, payload);
    }
    server.shutdown(PATIENCE);
}

/// Writes every message it is posted to its peer.
struct Relay {
    made: Sender<()>,
}

impl Protocol for Relay {
    type Message = String;
    fn connection_made(&mut self, _: &mut Transport<'_, String>) {
        let _ = self.made.send(());
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, String>) {
        data.clear();
    }
    fn message(&mut self, message: String, tx: &mut Transport<'_, String>) {
        tx.write_slice(message.as_bytes()).unwrap();
    }
}

#[test]
fn a_message_posted_through_a_handle_arrives_without_any_traffic_or_timer() {
    let (made, made_rx) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| Relay { made: made.clone() }).unwrap();
    let mut client = raw_client(server.local_addr());
    recv(&made_rx);
    let handles = server.handles();
    assert_eq!(handles.len(), 1);
    assert_eq!(server.connection_count(), 1);
    // The connection is idle: no data, no timer. Only the mailbox's wake-up can deliver this.
    handles[0].send("over the handle".to_string()).unwrap();
    let mut got = [0; 15];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"over the handle");

    assert!(handles[0].close());
    assert_eq!(
        client.read(&mut got).unwrap(),
        0,
        "the close reaches the peer"
    );
    // The connection may still be reporting its end to the factory: it counts as drained then.
    let report = server.shutdown(PATIENCE);
    assert_eq!(report.aborted, 0);
    assert_eq!(
        handles[0].send("too late".to_string()),
        Err("too late".to_string()),
        "a handle to an ended connection gives the message back"
    );
}

/// The timers a protocol set, and each timer that fired with the time it fired at.
type TimerLog = (Vec<TimerId>, Vec<(TimerId, Instant)>);

/// Sets timers out of order; records when each fired.
struct Timers {
    delays_ms: Vec<u64>,
    set: Vec<TimerId>,
    fired: Vec<(TimerId, Instant)>,
    report: Sender<TimerLog>,
}

impl Protocol for Timers {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        for &ms in &self.delays_ms {
            self.set.push(tx.call_later(Duration::from_millis(ms)));
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
        self.fired.push((timer, tx.now()));
        if self.fired.len() == self.set.len() {
            tx.lose_connection();
        }
    }
    fn connection_lost(&mut self, _: &Reason) {
        let _ = self
            .report
            .send((self.set.clone(), std::mem::take(&mut self.fired)));
    }
}

#[test]
fn protocol_timers_fire_in_deadline_order_and_never_early() {
    let (report, reports) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| Timers {
        delays_ms: vec![60, 5, 30, 5, 0, 45],
        set: Vec::new(),
        fired: Vec::new(),
        report: report.clone(),
    })
    .unwrap();
    let mut client = raw_client(server.local_addr());
    let (set, fired) = recv(&reports);
    let mut expected = set.clone();
    expected.sort(); // by deadline, then by the order they were set
    let order: Vec<TimerId> = fired.iter().map(|(timer, _)| *timer).collect();
    assert_eq!(order, expected);
    for (timer, at) in &fired {
        assert!(*at >= timer.deadline(), "{timer:?} fired at {at:?}");
    }
    assert_eq!(client.read(&mut [0; 1]).unwrap(), 0);
    server.shutdown(PATIENCE);
}

/// Refuses every other peer, and says which.
struct Picky {
    seen: usize,
    built: Sender<bool>,
}

impl ServerFactory for Picky {
    type Protocol = Echo;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Echo> {
        self.seen += 1;
        let accept = self.seen % 2 == 0;
        let _ = self.built.send(accept);
        accept.then_some(Echo)
    }
}

#[test]
fn a_refused_peer_is_closed_at_once_and_others_are_served() {
    let (built, builds) = mpsc::channel();
    let server = listen_tcp(any_port(), Picky { seen: 0, built }).unwrap();
    let (mut refused, mut served) = (0, 0);
    for _ in 0..4 {
        let mut client = raw_client(server.local_addr());
        if recv(&builds) {
            client.write_all(b"x").unwrap();
            let mut back = [0; 1];
            client.read_exact(&mut back).unwrap();
            served += 1;
        } else {
            let mut nothing = [0; 1];
            let closed = matches!(client.read(&mut nothing), Ok(0) | Err(_));
            assert!(closed, "a refused peer gets no service");
            refused += 1;
        }
    }
    assert_eq!((refused, served), (2, 2));
    server.shutdown(PATIENCE);
}

#[test]
fn dropping_the_server_stops_accepting_but_live_connections_go_on() {
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    let addr = server.local_addr();
    let mut live = raw_client(addr);
    live.write_all(b"a").unwrap();
    live.read_exact(&mut [0; 1]).unwrap();
    drop(server);
    let refused = std::net::TcpStream::connect(addr).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    live.write_all(b"still here").unwrap();
    let mut back = [0; 10];
    live.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still here");
}

#[test]
fn a_long_echo_with_the_peer_writing_and_reading_at_once_never_stalls() {
    // The peer's bytes all fit in the socket buffers, so after the first few reads nothing new
    // arrives. The echo pauses reading each time its queue passes the high-water mark and
    // resumes once the queue drains: every resume must pick up bytes already waiting in the
    // kernel, which no new readiness event will announce.
    const TOTAL: usize = 1024 * 1024;
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    for round in 0..20 {
        let mut reader = raw_client(server.local_addr());
        let mut writer = reader.try_clone().unwrap();
        let sending = std::thread::spawn(move || {
            let chunk = pattern(round, 64 * 1024);
            for _ in 0..TOTAL / chunk.len() {
                writer.write_all(&chunk).unwrap();
            }
        });
        let expected = pattern(round, 64 * 1024);
        let mut buf = vec![0; expected.len()];
        for _ in 0..TOTAL / expected.len() {
            reader.read_exact(&mut buf).expect("the echo stalled");
            assert!(buf == expected);
        }
        sending.join().unwrap();
    }
    server.shutdown(PATIENCE);
}

#[test]
fn ipv6_loopback_works_like_ipv4() {
    let Ok(server) = listen_tcp("[::1]:0".parse().unwrap(), |_| Echo) else {
        eprintln!("skipped: no IPv6 loopback on this host");
        return;
    };
    assert!(server.local_addr().is_ipv6());
    let (verdict, verdicts) = mpsc::channel();
    let factory = Once::new(move || EchoCheck::new(b"over ::1".to_vec(), verdict.clone()));
    let factory = connect_tcp(server.local_addr(), factory).join();
    assert!(recv(&verdicts));
    assert_eq!(factory.losses, [Reason::Done]);
    server.shutdown(PATIENCE);
}

#[test]
fn an_ipv6_wildcard_listener_leaves_the_ipv4_port_free() {
    let Ok(server) = listen_tcp("[::]:0".parse().unwrap(), |_| Echo) else {
        eprintln!("skipped: no IPv6 on this host");
        return;
    };
    // Dual-stack (Linux's default) would hold the IPv4 port too; IPv6-only leaves it free, as
    // on every other OS.
    let v4 = std::net::TcpListener::bind(("0.0.0.0", server.local_addr().port()));
    assert!(v4.is_ok(), "IPv4 port taken: {v4:?}");
    server.shutdown(PATIENCE);
}
