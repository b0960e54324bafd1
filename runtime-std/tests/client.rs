//! The client side: refusals, reconnects, connect timeouts and stopping.

#[allow(dead_code)]
mod common;

use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::{any_port, closed_port, recv, Echo, Once, PATIENCE};
use loomwork::bytes::BytesMut;
use loomwork::connector::{self, ClientFactory, Retry};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork::{Reason, Timeout};
use loomwork_std::{connect_tcp, connect_tcp_with, listen_tcp};
use socket2::{Domain, Socket, Type};

/// Never used for data: only to see whether a connection happens.
struct Idle;

impl Protocol for Idle {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

#[test]
fn a_refused_connect_reaches_connection_failed_as_refused() {
    let factory = connect_tcp(closed_port(), Once::new(|| Idle)).join();
    assert_eq!(factory.failures, [Reason::Refused]);
    assert!(factory.losses.is_empty());
}

/// Says "hi", closes when it hears it back.
struct Hi;

impl Protocol for Hi {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.write_slice(b"hi").unwrap();
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        if data.len() >= 2 {
            tx.lose_connection();
        }
    }
}

/// Retries refused attempts after a short fixed delay; reports each failure.
struct Persistent {
    failures: Vec<Reason>,
    losses: Vec<Reason>,
    connected: usize,
    failed: Sender<()>,
}

impl ClientFactory for Persistent {
    type Protocol = Hi;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Hi> {
        self.connected += 1;
        Some(Hi)
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.failures.push(reason.clone());
        let _ = self.failed.send(());
        // Bounded in count as well as in time.
        if self.failures.len() < 1000 {
            Retry::After(Duration::from_millis(20))
        } else {
            Retry::Stop
        }
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.losses.push(reason.clone());
        Retry::Stop
    }
}

#[test]
fn the_client_reconnects_once_the_server_comes_back() {
    let addr = closed_port();
    let (failed, failures) = mpsc::channel();
    let client = connect_tcp(
        addr,
        Persistent {
            failures: Vec::new(),
            losses: Vec::new(),
            connected: 0,
            failed,
        },
    );
    recv(&failures);
    let server = listen_tcp(addr, |_| Echo).unwrap();
    let factory = client.join();
    assert!(!factory.failures.is_empty());
    assert!(factory.failures.iter().all(|r| *r == Reason::Refused));
    assert_eq!(factory.connected, 1);
    assert_eq!(factory.losses, [Reason::Done]);
    server.shutdown(PATIENCE);
}

#[test]
fn an_attempt_that_outlives_the_connect_timeout_fails_as_timed_out() {
    // A listener with a full backlog that never accepts: Linux drops further SYNs, so the
    // next handshake never completes. Loopback only.
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener.bind(&any_port().into()).unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let _ = filler.connect_timeout(&addr.into(), Duration::from_millis(200));
        fillers.push(filler);
    }
    let config = connector::Config {
        connect_timeout: Some(Duration::from_millis(300)),
        ..connector::Config::default()
    };
    let factory = connect_tcp_with(addr, Once::new(|| Idle), config, Config::default()).join();
    assert_eq!(factory.failures, [Reason::TimedOut(Timeout::Connect)]);
}

/// Fails, then asks to wait an hour before the next attempt.
struct Patient {
    failed: Sender<()>,
}

impl ClientFactory for Patient {
    type Protocol = Idle;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Idle> {
        Some(Idle)
    }
    fn connection_failed(&mut self, _: &Reason) -> Retry {
        let _ = self.failed.send(());
        Retry::After(Duration::from_secs(3600))
    }
}

#[test]
fn stop_trying_ends_a_pending_retry_wait_at_once() {
    let (failed, failures) = mpsc::channel();
    let client = connect_tcp(closed_port(), Patient { failed });
    recv(&failures);
    client.stop_trying();
    // Joined on a helper thread so that a broken stop fails the test instead of hanging it.
    let (joined, join_rx) = mpsc::channel();
    std::thread::spawn(move || {
        client.join();
        let _ = joined.send(());
    });
    recv(&join_rx);
}

/// Remembers its handle's peer and tells the test it is connected.
struct Reporting {
    made: Sender<()>,
}

impl Protocol for Reporting {
    type Message = ();
    fn connection_made(&mut self, _: &mut Transport<'_>) {
        let _ = self.made.send(());
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

/// Would reconnect forever if `stop_trying` did not win.
struct Forever {
    made: Sender<()>,
    losses: Vec<Reason>,
}

impl ClientFactory for Forever {
    type Protocol = Reporting;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Reporting> {
        Some(Reporting {
            made: self.made.clone(),
        })
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.losses.push(reason.clone());
        Retry::After(Duration::ZERO)
    }
}

#[test]
fn stop_trying_keeps_the_connection_but_does_not_reconnect_after_it() {
    let server = listen_tcp(any_port(), |_| Echo).unwrap();
    let (made, made_rx) = mpsc::channel();
    let client = connect_tcp(
        server.local_addr(),
        Forever {
            made,
            losses: Vec::new(),
        },
    );
    recv(&made_rx);
    client.stop_trying();
    let handle = client.handle().expect("connected");
    assert!(handle.close());
    let factory = client.join();
    assert_eq!(factory.losses, [Reason::Done]);
    assert!(made_rx.try_recv().is_err(), "no second connection");
    server.shutdown(PATIENCE);
}
