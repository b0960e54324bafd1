//! Server shutdown: drains what can drain, aborts the rest, and leaves no thread or descriptor.
//!
//! Alone in its test binary on purpose: it counts the process's threads and descriptors, which
//! other tests running in parallel would disturb.

#[allow(dead_code)]
mod common;

use std::io::{Read, Write};
use std::sync::mpsc::{self, Sender};

use common::{any_port, pattern, proc_entries, raw_client, recv, settled_threads};
use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork::Reason;
use loomwork_std::{listen_tcp_with, ListenConfig, ShutdownReport};

/// Idle until asked to flood: then queues far more than the peer (which never reads) can take,
/// so its graceful close can never finish.
struct Floodable {
    flood: Bytes,
    events: Sender<&'static str>,
}

impl Protocol for Floodable {
    type Message = ();
    fn connection_made(&mut self, _: &mut Transport<'_>) {
        let _ = self.events.send("made");
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        data.clear();
        tx.write(self.flood.clone()).unwrap();
        let _ = self.events.send("flooding");
    }
    fn connection_lost(&mut self, _: &Reason) {
        let _ = self.events.send("lost");
    }
}

#[test]
fn shutdown_drains_idle_connections_aborts_stuck_ones_and_leaks_nothing() {
    const IDLE: usize = 6;
    const STUCK: usize = 2;
    let threads_before = proc_entries("task");
    let fds_before = proc_entries("fd");

    let flood = Bytes::from(pattern(3, 32 * 1024 * 1024));
    let config = ListenConfig {
        connection: Config {
            max_queued: Some(64 * 1024 * 1024),
            ..Config::default()
        },
        listeners: 2,
        ..ListenConfig::default()
    };
    let (events, event_rx) = mpsc::channel();
    let server = listen_tcp_with(
        any_port(),
        move |_| Floodable {
            flood: flood.clone(),
            events: events.clone(),
        },
        config,
    )
    .unwrap();
    let mut clients: Vec<_> = (0..IDLE + STUCK)
        .map(|_| raw_client(server.local_addr()))
        .collect();
    for _ in 0..IDLE + STUCK {
        assert_eq!(recv(&event_rx), "made");
    }
    for client in &mut clients[IDLE..] {
        client.write_all(b"flood").unwrap();
        assert_eq!(recv(&event_rx), "flooding");
    }
    assert_eq!(server.connection_count(), IDLE + STUCK);

    // The idle raw clients never close their side, so each graceful close lingers for the
    // core's `close_linger` (2 s) before the socket is closed: give the drain room for that.
    let report = server.shutdown(std::time::Duration::from_secs(4));
    assert_eq!(
        report,
        ShutdownReport {
            drained: IDLE,
            aborted: STUCK
        }
    );
    let lost = (0..IDLE + STUCK)
        .filter(|_| recv(&event_rx) == "lost")
        .count();
    assert_eq!(lost, IDLE + STUCK, "every protocol heard connection_lost");

    for client in &mut clients[..IDLE] {
        assert_eq!(
            client.read(&mut [0; 1]).unwrap(),
            0,
            "idle peers see a clean close"
        );
    }
    // Listening sockets are closed too.
    let refused = std::net::TcpStream::connect(clients[0].peer_addr().unwrap());
    assert!(refused.is_err());
    drop(clients);

    assert_eq!(
        settled_threads(threads_before),
        threads_before,
        "no thread outlives shutdown"
    );
    assert_eq!(
        proc_entries("fd"),
        fds_before,
        "no descriptor outlives shutdown"
    );
}
