//! Tests of the stream network, written as a user's tests would be.

use alloc::rc::Rc;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::connector::{self, BackoffConfig, ClientFactory, Retry};
use crate::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use crate::reason::Reason;
use crate::stream::{Config, Handle, Protocol, Transport};
use crate::testing::{
    ConnId, Direction, Faults, NetworkConfig, Script, ScriptedFactory, ScriptedPeer, StreamNetwork,
    Transcript,
};
use crate::time::Instant;

fn addr() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 7))
}

struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// Dials and redials for ever with the backoff; its connections play `script`.
struct Persistent {
    script: Script,
    failures: Vec<Reason>,
    losses: Vec<Reason>,
    /// Stop once a connection has ended cleanly.
    stop_when_clean: bool,
}

impl Persistent {
    fn new(script: Script) -> Self {
        Persistent {
            script,
            failures: Vec::new(),
            losses: Vec::new(),
            stop_when_clean: true,
        }
    }
}

impl ClientFactory for Persistent {
    type Protocol = ScriptedPeer;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<ScriptedPeer> {
        Some(ScriptedPeer::new(self.script.clone()))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.failures.push(reason.clone());
        Retry::Backoff
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.losses.push(reason.clone());
        if self.stop_when_clean && reason.is_clean() {
            Retry::Stop
        } else {
            Retry::Backoff
        }
    }
}

fn no_jitter() -> connector::Config {
    connector::Config {
        backoff: BackoffConfig {
            jitter: 0.0,
            ..BackoffConfig::default()
        },
        ..connector::Config::default()
    }
}

fn transcript(net: &StreamNetwork, id: ConnId) -> &Transcript {
    net.protocol::<ScriptedPeer>(id).unwrap().transcript()
}

/// One connection end's reads with their times, and how it ended.
type Seen = (Vec<(Instant, Bytes)>, Option<Reason>);

/// Everything observable about a faulty run: what each connection saw and how it ended.
#[derive(Debug, PartialEq)]
struct Trace {
    stats: crate::testing::StreamNetworkStats,
    end: Instant,
    connections: Vec<Seen>,
    failures: Vec<Vec<Reason>>,
}

fn faulty_run(seed: u64) -> Trace {
    let mut net = StreamNetwork::new(NetworkConfig {
        seed,
        max_read: 100,
        faults: Faults {
            refuse: 0.3,
            reset_per_block: 0.1,
            reset_block: 512,
            stall: 0.2,
            stall_for: Duration::from_millis(30),
            ..Faults::default()
        },
        ..NetworkConfig::default()
    });
    let server = net.listen(addr(), |_| Echo, Config::default());
    let payload = vec![7u8; 2000];
    let script = Script::new()
        .send(&payload)
        .wait_bytes(payload.len())
        .close();
    let clients: Vec<_> = (0..8)
        .map(|_| net.connect(addr(), Persistent::new(script.clone()), no_jitter()))
        .collect();
    let end = net.run_until(Instant::from_secs(600));
    let mut connections = Vec::new();
    for &id in net.server_connections(server) {
        connections.push((Vec::new(), net.reason(id)));
    }
    let mut failures = Vec::new();
    for &client in &clients {
        for &id in net.client_connections(client) {
            let t = transcript(&net, id);
            connections.push((t.reads.clone(), t.reason.clone()));
        }
        failures.push(
            net.connector::<Persistent>(client)
                .unwrap()
                .factory()
                .failures
                .clone(),
        );
    }
    Trace {
        stats: net.stats().clone(),
        end,
        connections,
        failures,
    }
}

#[test]
fn the_same_fault_seed_replays_the_same_run_and_another_seed_does_not() {
    let first = faulty_run(42);
    // The faults did happen, so the comparison means something.
    assert!(first.stats.refusals_injected > 0, "{:?}", first.stats);
    assert!(first.stats.resets_injected > 0, "{:?}", first.stats);
    assert!(first.stats.stalls_injected > 0, "{:?}", first.stats);
    assert_eq!(first, faulty_run(42));
    assert_ne!(first, faulty_run(43));
}

#[test]
fn every_client_gets_through_the_faults_in_the_end() {
    let trace = faulty_run(42);
    // Each connector stops only after a connection that ended cleanly, having read its echo.
    let clean = trace
        .connections
        .iter()
        .filter(|(reads, reason)| {
            reads.iter().map(|(_, b)| b.len()).sum::<usize>() == 2000
                && reason.as_ref().is_some_and(Reason::is_clean)
        })
        .count();
    assert_eq!(clean, 8, "{:?}", trace.stats);
}

#[test]
fn a_refused_first_connect_is_retried_by_the_connector_after_its_backoff_and_succeeds() {
    let mut net = StreamNetwork::new(NetworkConfig {
        faults: Faults {
            refuse: 1.0,
            ..Faults::default()
        },
        ..NetworkConfig::default()
    });
    net.listen(addr(), |_| Echo, Config::default());
    let script = Script::new().send("hello").wait_bytes(5).close();
    let client = net.connect(addr(), Persistent::new(script), no_jitter());
    net.run_for(Duration::from_millis(10));
    let connector = net.connector::<Persistent>(client).unwrap();
    assert_eq!(connector.factory().failures, [Reason::Refused]);
    assert_eq!(connector.attempts(), 1);
    assert!(net.client_connections(client).is_empty());
    assert_eq!(net.stats().refusals_injected, 1);

    net.set_faults(Faults::default());
    net.run_until_idle();
    let connector = net.connector::<Persistent>(client).unwrap();
    assert_eq!(connector.attempts(), 2);
    assert!(connector.is_ended());
    assert_eq!(connector.factory().losses, [Reason::Done]);
    let [id] = net.client_connections(client) else {
        panic!("one connection")
    };
    let seen = transcript(&net, *id);
    // The retry waited exactly the backoff's initial delay.
    assert_eq!(seen.connected_at, Some(Instant::from_secs(1)));
    assert_eq!(seen.received, b"hello");
    assert!(net.is_client_finished(client));
}

#[test]
fn a_refusing_listener_and_an_address_nobody_listens_on_both_refuse() {
    let mut net = StreamNetwork::default();
    let server = net.listen(addr(), |_| Echo, Config::default());
    net.set_refusing(server, true);
    assert_eq!(
        net.dial(addr(), Echo, Config::default()),
        Err(Reason::Refused)
    );
    net.set_refusing(server, false);
    assert!(net.dial(addr(), Echo, Config::default()).is_ok());
    net.unlisten(server);
    assert_eq!(
        net.dial(addr(), Echo, Config::default()),
        Err(Reason::Refused)
    );
    assert_eq!(net.stats().refusals, 2);
    assert_eq!(net.stats().refusals_injected, 0);
}

/// A client that waits for more than ever comes, against a server that does the same: only
/// a fault can end it.
fn stuck_pair(net: &mut StreamNetwork) -> (ScriptedFactory, ConnId) {
    let server = ScriptedFactory::new(Script::new().send("welcome").wait_bytes(1_000));
    net.listen(addr(), server.clone(), Config::default());
    let client = Script::new().send("hi").wait_bytes(1_000);
    let id = net
        .dial(addr(), ScriptedPeer::new(client), Config::default())
        .unwrap();
    (server, id)
}

#[test]
fn an_injected_reset_reaches_both_sides_connection_lost_as_reset() {
    let mut net = StreamNetwork::default();
    let (server, client) = stuck_pair(&mut net);
    net.run_for(Duration::from_secs(1));
    assert_eq!(transcript(&net, client).received, b"welcome");
    assert_eq!(transcript(&net, client.peer()).received, b"hi");
    assert!(server.transcripts().is_empty(), "nothing has ended yet");

    assert!(net.reset(client));
    net.run_until_idle();
    assert_eq!(transcript(&net, client).reason, Some(Reason::Reset));
    assert_eq!(net.reason(client.peer()), Some(Reason::Reset));
    let ended = server.transcripts();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0].reason, Some(Reason::Reset));
    assert_eq!(net.stats().resets_injected, 1);
    assert!(!net.reset(client), "already over");
}

#[test]
fn a_random_reset_fault_resets_a_connection_that_moves_bytes() {
    let mut net = StreamNetwork::new(NetworkConfig {
        faults: Faults {
            reset_per_step: 1.0,
            ..Faults::default()
        },
        ..NetworkConfig::default()
    });
    let (server, client) = stuck_pair(&mut net);
    net.run_until_idle();
    assert_eq!(transcript(&net, client).reason, Some(Reason::Reset));
    assert_eq!(server.transcripts()[0].reason, Some(Reason::Reset));
    // Reset in the first step that moved bytes, once.
    assert_eq!(net.stats().resets_injected, 1);
}

#[test]
fn a_stalled_direction_holds_its_bytes_then_delivers_them_in_order() {
    let mut net = StreamNetwork::default();
    let server = ScriptedFactory::new(Script::new().send("welcome"));
    let listener = net.listen(addr(), server, Config::default());
    let script = Script::new()
        .send("one,")
        .sleep(Duration::from_millis(10))
        .send("two,")
        .sleep(Duration::from_millis(10))
        .send("three")
        .close();
    let client = net
        .dial(addr(), ScriptedPeer::new(script), Config::default())
        .unwrap();
    let stall_end = Instant::from_millis(100);
    net.stall(client, Direction::ToServer, stall_end);
    net.run_until(Instant::from_millis(99));
    let server_end = net.server_connections(listener)[0];
    assert!(transcript(&net, server_end).received.is_empty());
    // The other direction is not stalled.
    assert_eq!(transcript(&net, client).reads[0].0, Instant::ZERO);

    net.run_until_idle();
    let seen = transcript(&net, server_end);
    assert_eq!(seen.received, b"one,two,three");
    assert_eq!(seen.reads[0].0, stall_end);
    // The client's EOF was held too, and came after the bytes.
    assert!(seen.eof_at.is_some_and(|at| at >= stall_end));
    assert_eq!(net.stats().stalls_injected, 1);
}

#[test]
fn a_stalled_direction_fills_its_wire_then_the_writer_queues() {
    let mut net = StreamNetwork::new(NetworkConfig {
        wire_capacity: 1000,
        ..NetworkConfig::default()
    });
    let listener = net.listen(
        addr(),
        ScriptedFactory::new(Script::new()),
        Config::default(),
    );
    let big = vec![1u8; 5000];
    let client = net
        .dial(
            addr(),
            ScriptedPeer::new(Script::new().send(&big)),
            Config::default(),
        )
        .unwrap();
    net.stall(client, Direction::ToServer, Instant::from_secs(1));
    net.run_for(Duration::from_millis(500));
    let queued = net
        .connection::<ScriptedPeer>(client)
        .unwrap()
        .queued_bytes();
    assert_eq!(queued, 4000, "the wire holds 1000");
    net.run_for(Duration::from_secs(1));
    let server_end = net.server_connections(listener)[0];
    assert_eq!(transcript(&net, server_end).received, big);
}

/// A chat room: every line any member sends goes to every member through their handles.
struct Member {
    room: Rc<RefCell<Vec<Handle<Bytes>>>>,
}

impl FrameHandler for Member {
    type Codec = LineCodec;
    type Message = Bytes;
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec, Bytes>) {
        if let Some(handle) = tx.handle() {
            self.room.borrow_mut().push(handle.clone());
        }
    }
    fn frame_received(&mut self, line: Bytes, _: &mut FrameTransport<'_, '_, LineCodec, Bytes>) {
        for member in self.room.borrow().iter() {
            let _ = member.send(line.clone());
        }
    }
    fn message(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec, Bytes>) {
        let _ = tx.send_frame(line);
    }
}

#[test]
fn chat_fan_out_through_handles_reaches_every_member_in_order() {
    let mut net = StreamNetwork::default();
    let room = Rc::new(RefCell::new(Vec::new()));
    let members = room.clone();
    net.listen(
        addr(),
        move |_| {
            Framed::new(
                Member {
                    room: members.clone(),
                },
                LineCodec::new(),
            )
        },
        Config::default(),
    );
    let mut codec = LineCodec::new();
    let speaker = Script::new()
        .sleep(Duration::from_millis(1))
        .send_frame(&mut codec, "hello")
        .send_frame(&mut codec, "world")
        .wait_for(b"world\r\n")
        .close();
    let listener = Script::new().wait_for(b"world\r\n").close();
    let mut ids = vec![net
        .dial(addr(), ScriptedPeer::new(speaker), Config::default())
        .unwrap()];
    for _ in 0..3 {
        let id = net.dial(
            addr(),
            ScriptedPeer::new(listener.clone()),
            Config::default(),
        );
        ids.push(id.unwrap());
    }
    net.run_until_idle();
    assert_eq!(room.borrow().len(), 4);
    for id in ids {
        let seen = transcript(&net, id);
        assert_eq!(seen.received, b"hello\r\nworld\r\n", "{id:?}");
        assert_eq!(seen.reason, Some(Reason::Done));
    }
    assert!(net.stats().deliveries >= 8);
}

#[test]
fn a_refusing_server_factory_gives_the_client_eof_and_no_server_end() {
    let mut net = StreamNetwork::default();
    struct Nobody;
    impl crate::stream::ServerFactory for Nobody {
        type Protocol = Echo;
        fn build_protocol(&mut self, _: SocketAddr) -> Option<Echo> {
            None
        }
    }
    let listener = net.listen(addr(), Nobody, Config::default());
    let client = net
        .dial(
            addr(),
            ScriptedPeer::new(Script::new().wait_eof()),
            Config::default(),
        )
        .unwrap();
    net.run_until_idle();
    assert!(net.server_connections(listener).is_empty());
    assert!(net.is_closed(client.peer()));
    let seen = transcript(&net, client);
    assert!(seen.eof_at.is_some() && seen.is_finished());
    assert_eq!(seen.reason, Some(Reason::Done));
}

#[test]
fn handles_post_in_order_and_refuse_after_the_end() {
    let mut net = StreamNetwork::default();
    net.listen(
        addr(),
        ScriptedFactory::new(Script::new()),
        Config::default(),
    );
    let client = net
        .dial(addr(), ScriptedPeer::new(Script::new()), Config::default())
        .unwrap();
    for word in ["a", "b", "c"] {
        net.post(client, Bytes::from(word)).unwrap();
    }
    net.run_until_idle();
    assert_eq!(transcript(&net, client.peer()).received, b"abc");
    assert!(net.close(client));
    net.run_until_idle();
    assert!(net.is_closed(client) && net.is_closed(client.peer()));
    assert_eq!(
        net.post(client, Bytes::from("late")),
        Err(Bytes::from("late"))
    );
    assert_eq!(net.post(client, 5u32), Err(5), "not its message type");
}

#[test]
fn port_zero_listeners_get_distinct_ports() {
    let mut net = StreamNetwork::default();
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let a = net.listen(any, |_| Echo, Config::default());
    let b = net.listen(any, |_| Echo, Config::default());
    assert_ne!(net.listener_addr(a), net.listener_addr(b));
    assert_ne!(net.listener_addr(a).unwrap().port(), 0);
}

#[test]
#[should_panic(expected = "is in use")]
fn listening_twice_on_one_address_panics() {
    let mut net = StreamNetwork::default();
    net.listen(addr(), |_| Echo, Config::default());
    net.listen(addr(), |_| Echo, Config::default());
}
