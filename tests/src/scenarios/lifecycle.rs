//! Lifecycle scenarios: timers, resets, refusals and shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::proxy::{AcceptConfig, AcceptProxyFactory};
use loomwork::stream::{Config, Protocol, ServerFactory, Transport};
use loomwork::Reason;

use super::{any_port, assert_reset_heard_once, connector, wait_for};
use crate::protocols::{lock, ClientScript, ClientSpec, Echo, LoggingFactory, Shared};
use crate::Harness;

/// Timers set at 30, 10 and 20 ms fire in deadline order, each at or after its deadline.
pub fn timers_fire_in_order_and_never_early<H: Harness>(h: &H) {
    let (factory, _) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let delays = [30, 10, 20].map(Duration::from_millis).to_vec();
    let (spec, log) = ClientSpec::new(ClientScript::Timers(delays));
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.timers.len(), 3, "{}", H::NAME);
    let deadlines: Vec<_> = log.timers.iter().map(|(deadline, _)| *deadline).collect();
    let mut sorted = deadlines.clone();
    sorted.sort();
    assert_eq!(deadlines, sorted, "{}: fired in deadline order", H::NAME);
    for (deadline, fired) in &log.timers {
        assert!(
            fired >= deadline,
            "{}: fired at {fired:?}, due {deadline:?}",
            H::NAME
        );
    }
    drop(log);
    server.shutdown(Duration::from_secs(5));
}

/// A client sends, then resets the connection: the server hears about it exactly once, as a
/// reset.
pub fn peer_reset_mid_stream_gives_exactly_one_connection_lost<H: Harness>(h: &H) {
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let (spec, log) = ClientSpec::new(ClientScript::SendThenAbort(Bytes::from(vec![1u8; 100_000])));
    h.connect(server.local_addr(), spec, connector()).join();
    assert_reset_heard_once(h, &log, &server_log, server, Duration::from_secs(5));
}

/// Twenty idle clients; shutdown closes every connection gracefully (all drained, none
/// aborted), every client sees a clean close, and no thread, task or descriptor is left behind.
pub fn server_shutdown_closes_everything_and_leaks_nothing<H: Harness>(h: &H) {
    const CLIENTS: usize = 20;
    // A runtime's process-wide resources (smol's reactor: an epoll, an eventfd and a timerfd)
    // are made at its first use and kept: a throwaway server makes them before the count, so
    // the scenario gives the same answer alone as after others.
    let (warm_up, _) = LoggingFactory::new(|| Some(Echo));
    h.listen(any_port(), warm_up, Config::default())
        .shutdown(Duration::from_secs(1));
    let workers_before = h.live_workers();
    let fds_before = open_fds();
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (spec, log) = ClientSpec::new(ClientScript::Idle);
            (h.connect(server.local_addr(), spec, connector()), log)
        })
        .collect();
    wait_for(h, || server.connection_count() == CLIENTS);
    assert_eq!(
        server.connection_count(),
        CLIENTS,
        "{}: all connected",
        H::NAME
    );
    let (drained, aborted) = server.shutdown(Duration::from_secs(5));
    assert_eq!((drained, aborted), (CLIENTS, 0), "{}", H::NAME);
    for (client, log) in clients {
        client.join();
        assert_eq!(lock(&log).lost, [Reason::Done], "{}", H::NAME);
    }
    assert_eq!(lock(&server_log).closed.len(), CLIENTS);
    // Worker threads and tasks wind down asynchronously after join: give them a bounded moment.
    for _ in 0..100 {
        if h.live_workers() == workers_before && open_fds() == fds_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        h.live_workers(),
        workers_before,
        "{}: threads/tasks leaked",
        H::NAME
    );
    assert_eq!(open_fds(), fds_before, "{}: descriptors leaked", H::NAME);
}

/// A factory that refuses (returns `None`) gets no callbacks for that peer; the client sees its
/// connection closed at once, and the next peer is served normally (Twisted PR-2).
pub fn refusing_factory_closes_the_socket_without_callbacks<H: Harness>(h: &H) {
    let mut first = true;
    let (factory, server_log) = LoggingFactory::new(move || {
        let refuse = std::mem::replace(&mut first, false);
        (!refuse).then_some(Echo)
    });
    let server = h.listen(any_port(), factory, Config::default());
    let (spec, refused) = ClientSpec::new(ClientScript::ReadAll {
        keep: 16,
        pause_first: None,
    });
    h.connect(server.local_addr(), spec, connector()).join();
    let refused = lock(&refused);
    assert!(refused.received.is_empty(), "{}", H::NAME);
    assert_eq!(
        refused.lost.len(),
        1,
        "{}: the refused client's connection ended",
        H::NAME
    );
    drop(refused);
    let (spec, served) = ClientSpec::new(ClientScript::Exchange(Bytes::from_static(b"next")));
    h.connect(server.local_addr(), spec, connector()).join();
    assert_eq!(lock(&served).received, b"next", "{}", H::NAME);
    server.shutdown(Duration::from_secs(5));
    let server_log = lock(&server_log);
    assert_eq!(server_log.built, 2);
    assert_eq!(
        server_log.closed,
        [Reason::Done],
        "{}: no close reported for the refused peer",
        H::NAME
    );
}

/// Open descriptors of this process (Linux), or 0 elsewhere.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// The peers one connection was known by: to its factory when built and when closed, and to
/// its protocol.
#[derive(Debug, Default)]
struct Peers {
    built: Vec<SocketAddr>,
    closed: Vec<SocketAddr>,
    seen: Vec<Option<SocketAddr>>,
}

/// Echoes, and logs the peer its transport names when the connection is made.
struct PeerEcho(Shared<Peers>);

impl Protocol for PeerEcho {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        lock(&self.0).seen.push(tx.peer());
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

struct PeerFactory(Shared<Peers>);

impl ServerFactory for PeerFactory {
    type Protocol = PeerEcho;
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<PeerEcho> {
        lock(&self.0).built.push(peer);
        Some(PeerEcho(self.0.clone()))
    }
    fn connection_closed(&mut self, peer: SocketAddr, _: &Reason) {
        lock(&self.0).closed.push(peer);
    }
}

/// Behind a PROXY header the protocol sees the header's source from `connection_made` on, while
/// the factory's `connection_closed` hears the peer its `build_protocol` heard: the socket's
/// (the runtimes take it from the connection's registration, not from the connection).
pub fn connection_closed_hears_the_socket_peer_behind_a_proxy_header<H: Harness>(h: &H) {
    let peers = Shared::<Peers>::default();
    let factory = AcceptProxyFactory::new(PeerFactory(peers.clone()), AcceptConfig::required());
    let server = h.listen(any_port(), factory, Config::default());
    let (spec, client) = ClientSpec::new(ClientScript::AskThenHalfClose(Bytes::from_static(
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1234 80\r\nping",
    )));
    h.connect(server.local_addr(), spec, connector()).join();
    assert_eq!(lock(&client).received, b"ping", "{}", H::NAME);
    wait_for(h, || lock(&peers).closed.len() == 1);
    server.shutdown(Duration::from_secs(5));
    let peers = lock(&peers);
    let proxied: SocketAddr = "192.0.2.1:1234".parse().unwrap();
    assert_eq!(
        peers.seen,
        [Some(proxied)],
        "{}: the protocol's peer",
        H::NAME
    );
    assert_eq!(peers.built.len(), 1, "{}", H::NAME);
    assert_ne!(peers.built[0], proxied, "{}", H::NAME);
    assert_eq!(
        peers.closed,
        peers.built,
        "{}: connection_closed hears build_protocol's peer",
        H::NAME
    );
}
