//! Relays on loomwork-std with `relay_dialer`: the upstream leg runs on the client leg's
//! thread, a refused upstream ends the client leg with the reason, and a shutdown drains both
//! legs.
//!
//! The tests count the process's threads by name, so they take turns (`SERIAL`).

#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use common::{any_port, closed_port, pattern, raw_client, read_until_end, recv, PATIENCE};
use loomwork::connector;
use loomwork::relay::{RelayConfig, RelayFactory, RelayReport};
use loomwork::stream::Config;
use loomwork::Reason;
use loomwork_std::{relay_dialer, Server, ServerMessage};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How many of the process's threads have a name starting with `prefix` (names are cut to 15
/// bytes by the kernel).
fn threads_named(prefix: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(prefix))
        .count()
}

/// A plain blocking echo upstream on threads named `upstream-echo`, outside any runtime; each
/// connection reports `"eof"` on `events` when its peer shuts down, after echoing everything.
fn echo_upstream(events: Sender<&'static str>) -> SocketAddr {
    let listener = TcpListener::bind(any_port()).unwrap();
    let addr = listener.local_addr().unwrap();
    thread::Builder::new()
        .name("upstream-echo".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let events = events.clone();
                thread::Builder::new()
                    .name("upstream-echo".into())
                    .spawn(move || {
                        let mut buf = vec![0; 64 * 1024];
                        loop {
                            match stream.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = events.send("eof");
                    })
                    .unwrap();
            }
        })
        .unwrap();
    addr
}

/// A relay to `upstream` whose reports arrive on the returned channel.
fn relay(
    upstream: SocketAddr,
) -> (
    Server<ServerMessage<RelayFactory>>,
    mpsc::Receiver<RelayReport>,
) {
    let (reports, report_rx) = mpsc::channel();
    let reports = Mutex::new(reports);
    let config = RelayConfig {
        report: Some(Arc::new(move |report: &RelayReport| {
            let _ = reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .send(report.clone());
        })),
        ..RelayConfig::default()
    };
    let dialer = relay_dialer(upstream, connector::Config::default(), Config::default());
    let server = loomwork_std::listen_tcp(any_port(), RelayFactory::new(dialer, config)).unwrap();
    (server, report_rx)
}

/// Waits (within [`PATIENCE`]) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn both_legs_run_on_the_client_legs_thread() {
    let _serial = serial();
    let (events, event_rx) = mpsc::channel();
    let upstream = echo_upstream(events);
    let (server, reports) = relay(upstream);
    let conns_before = threads_named("loomwork-conn");

    let sent = pattern(1, 1024 * 1024);
    let mut client = raw_client(server.local_addr());
    // The first bytes come back: both legs are up.
    client.write_all(&sent[..1000]).unwrap();
    let mut echoed = vec![0; 1000];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(echoed, sent[..1000]);
    // One thread for the whole relay, and no client thread for its upstream leg.
    assert_eq!(threads_named("loomwork-conn"), conns_before + 1);
    assert_eq!(threads_named("loomwork-client"), 0);

    let writer = {
        let mut client = client.try_clone().unwrap();
        let rest = sent[1000..].to_vec();
        thread::spawn(move || {
            client.write_all(&rest).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
        })
    };
    let (mut received, err) = read_until_end(&mut client);
    writer.join().unwrap();
    assert!(err.is_none(), "{err:?}");
    echoed.append(&mut received);
    assert!(echoed == sent, "the echo came back altered");
    assert_eq!(recv(&event_rx), "eof");
    drop(client);

    let report = recv(&reports);
    assert_eq!(report.reason, Reason::Done);
    assert!(report.connected);
    assert_eq!(report.to_upstream, sent.len() as u64);
    assert_eq!(report.to_client, sent.len() as u64);
    assert_eq!(threads_named("loomwork-client"), 0);
    eventually("the relay ends", || server.connection_count() == 0);
    let report = server.shutdown(PATIENCE);
    assert_eq!((report.drained, report.aborted), (0, 0));
    assert_eq!(threads_named("loomwork-conn"), 0);
}

#[test]
fn a_refused_upstream_ends_the_client_leg_with_the_reason() {
    let _serial = serial();
    let (server, reports) = relay(closed_port());
    let mut client = raw_client(server.local_addr());
    let (received, err) = read_until_end(&mut client);
    assert!(received.is_empty() && err.is_none(), "{err:?}");
    drop(client);
    let report = recv(&reports);
    assert_eq!(report.reason, Reason::Refused);
    assert!(!report.connected);
    assert_eq!(threads_named("loomwork-client"), 0);
    eventually("the client leg ends", || server.connection_count() == 0);
    let report = server.shutdown(PATIENCE);
    assert_eq!((report.drained, report.aborted), (0, 0));
    // Every thread of the server has exited.
    assert_eq!(threads_named("loomwork-conn"), 0);
}

#[test]
fn a_shutdown_drains_both_legs_of_a_relay_in_progress() {
    let _serial = serial();
    let (events, event_rx) = mpsc::channel();
    let upstream = echo_upstream(events);
    let (server, reports) = relay(upstream);
    let mut client = raw_client(server.local_addr());
    client.write_all(b"hello").unwrap();
    let mut echoed = [0; 5];
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");

    // The client reads until the relay closes, then closes too.
    let reader = thread::spawn(move || {
        let (received, err) = read_until_end(&mut client);
        drop(client);
        (received, err)
    });
    let report = server.shutdown(PATIENCE);
    assert_eq!((report.drained, report.aborted), (1, 0));
    let (received, err) = reader.join().unwrap();
    assert!(received.is_empty() && err.is_none(), "{err:?}");
    // The upstream leg closed gracefully: its peer read an EOF, not a reset.
    assert_eq!(recv(&event_rx), "eof");
    let report = recv(&reports);
    assert_eq!(report.reason, Reason::Done);
    assert!(report.connected);
    assert_eq!(threads_named("loomwork-conn"), 0);
    assert_eq!(threads_named("loomwork-client"), 0);
}
