//! Relays in memory: two [`RelayLeg`]s between a client and an upstream server on a
//! [`StreamNetwork`], with the dialing done by the test loop as a runtime would do it.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::BytesMut;

use super::*;
use crate::connector;
use crate::proxy::{decode, Version, MAX_V2_LEN};
use crate::reason::Reason;
use crate::stream::{Config, Protocol, Transport};
use crate::testing::{ConnId, ListenerId, NetworkConfig, Recorder, StreamNetwork};

const RELAY: &str = "10.0.0.1:1235";
const UPSTREAM: &str = "10.0.0.9:80";

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A test endpoint: sends `send` (then shuts down writing if `shut`), collects what arrives,
/// and on EOF sends `reply` and closes. `reads: false` never reads.
#[derive(Clone, Default)]
struct End {
    send: Vec<u8>,
    shut: bool,
    reply: Vec<u8>,
    reads: bool,
    got: Vec<u8>,
    eof: bool,
    lost: Option<Reason>,
}

impl End {
    fn new(send: &[u8], shut: bool, reply: &[u8]) -> Self {
        End {
            send: send.to_vec(),
            shut,
            reply: reply.to_vec(),
            reads: true,
            ..End::default()
        }
    }
}

impl Protocol for End {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        if !self.reads {
            tx.pause_reading();
        }
        let _ = tx.write(self.send.clone());
        if self.shut {
            tx.shutdown_write();
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.got.extend_from_slice(data);
        data.clear();
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        self.eof = true;
        let _ = tx.write(self.reply.clone());
        tx.lose_connection();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost = Some(reason.clone());
    }
}

/// A relay between a client and an upstream [`End`] on one network; dials are queued by the
/// dialer and carried out by [`Harness::run`], as a runtime would.
struct Harness {
    net: StreamNetwork,
    dials: Arc<spin::Mutex<Vec<Dial>>>,
    relay: ListenerId,
    upstream: Option<ListenerId>,
    client: Option<ConnId>,
}

impl Harness {
    fn new(upstream: Option<End>, config: RelayConfig) -> Self {
        let mut net = StreamNetwork::new(NetworkConfig::default());
        let dials: Arc<spin::Mutex<Vec<Dial>>> = Arc::default();
        let queue = Arc::clone(&dials);
        let dialer: Dialer = Arc::new(move |dial| {
            queue.lock().push(dial);
            Box::new(())
        });
        let relay = net.listen(
            addr(RELAY),
            RelayFactory::new(dialer, config),
            Config::default(),
        );
        let upstream = upstream
            .map(|end| net.listen(addr(UPSTREAM), move |_peer| end.clone(), Config::default()));
        Harness {
            net,
            dials,
            relay,
            upstream,
            client: None,
        }
    }

    fn dial_client(&mut self, end: End) -> ConnId {
        let id = self.net.dial(addr(RELAY), end, Config::default()).unwrap();
        self.client = Some(id);
        id
    }

    /// Runs for up to `within` of virtual time, dialing whatever the client legs ask for,
    /// until `done` holds.
    fn run(&mut self, within: Duration, mut done: impl FnMut(&StreamNetwork) -> bool) -> bool {
        let deadline = self.net.now() + within;
        for _ in 0..10_000 {
            let dials = Arc::clone(&self.dials);
            let held = self
                .net
                .run_until_condition(deadline, |net| done(net) || !dials.lock().is_empty());
            let pending: Vec<Dial> = core::mem::take(&mut *self.dials.lock());
            if pending.is_empty() {
                return held;
            }
            for dial in pending {
                let config = connector::Config::default();
                self.net
                    .connect(addr(UPSTREAM), UpstreamFactory::new(dial), config);
            }
        }
        false
    }

    fn client_end(&self) -> &End {
        self.net.protocol::<End>(self.client.unwrap()).unwrap()
    }

    fn server_end(&self) -> Option<&End> {
        let id = *self.net.server_connections(self.upstream?).first()?;
        self.net.protocol::<End>(id)
    }

    fn relay_legs(&self) -> Vec<ConnId> {
        self.net.server_connections(self.relay).to_vec()
    }
}

#[test]
fn the_four_half_close_orders_pass_every_byte_and_end_cleanly() {
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // (client end, upstream end): who shuts down first, and what the other sends after.
    let cases = [
        (
            "client first",
            End::new(b"hello", true, b""),
            End::new(b"", false, b"bye"),
        ),
        (
            "upstream first",
            End::new(b"", false, b"late"),
            End::new(b"banner", true, b""),
        ),
        (
            "both at once",
            End::new(b"c", true, b""),
            End::new(b"s", true, b""),
        ),
        (
            "client first, big answer",
            End::new(&big[..1000], true, b""),
            End::new(b"", false, &big),
        ),
    ];
    for (name, client, upstream) in cases {
        let mut h = Harness::new(Some(upstream.clone()), RelayConfig::default());
        let id = h.dial_client(client.clone());
        let ended = h.run(Duration::from_secs(60), |net| net.open_connections() == 0);
        assert!(ended, "{name}: connections still open");
        let (c, s) = (h.client_end().clone(), h.server_end().unwrap().clone());
        let expect_at_server = [client.send.clone(), client.reply.clone()].concat();
        let expect_at_client = [upstream.send.clone(), upstream.reply.clone()].concat();
        assert_eq!(s.got, expect_at_server, "{name}: bytes at the upstream");
        assert_eq!(
            c.got.len(),
            expect_at_client.len(),
            "{name}: bytes at the client"
        );
        assert!(
            c.got == expect_at_client,
            "{name}: bytes at the client differ"
        );
        assert!(
            c.eof && s.eof,
            "{name}: each side saw the other's half-close"
        );
        assert_eq!(c.lost, Some(Reason::Done), "{name}");
        assert_eq!(s.lost, Some(Reason::Done), "{name}");
        for leg in h.relay_legs() {
            assert_eq!(h.net.reason(leg), Some(Reason::Done), "{name}: relay leg");
        }
        let _ = id;
    }
}

#[test]
fn an_upstream_connect_failure_ends_the_client_leg_with_its_reason() {
    let mut h = Harness::new(None, RelayConfig::default());
    let id = h.dial_client(End::new(b"hello", false, b""));
    assert!(h.run(Duration::from_secs(60), |net| net.open_connections() == 0));
    assert_eq!(h.net.reason(h.relay_legs()[0]), Some(Reason::Refused));
    assert!(h.client_end().got.is_empty());
    assert!(h.net.is_closed(id));
}

#[test]
fn a_reset_on_either_leg_aborts_the_other() {
    for reset_client in [true, false] {
        let mut h = Harness::new(Some(End::new(b"", false, b"")), RelayConfig::default());
        let client = h.dial_client(End::new(b"x", false, b""));
        assert!(h.run(Duration::from_secs(5), |net| net.open_connections() == 4));
        let upstream_server = h.net.server_connections(h.upstream.unwrap())[0];
        let victim = if reset_client {
            client
        } else {
            upstream_server
        };
        assert!(h.net.reset(victim));
        assert!(h.run(Duration::from_secs(60), |net| net.open_connections() == 0));
        let survivor = if reset_client {
            upstream_server
        } else {
            client
        };
        let reason = h.net.reason(survivor).unwrap();
        assert!(!reason.is_clean(), "the far end saw {reason:?}");
        let leg = h.relay_legs()[0];
        assert!(!h.net.reason(leg).unwrap().is_clean());
    }
}

#[test]
fn a_stalled_reader_bounds_the_relay_by_water_marks_and_window() {
    let config = RelayConfig {
        window: 64 * 1024,
        ..RelayConfig::default()
    };
    let flood: Vec<u8> = vec![7; 8 * 1024 * 1024];
    let mut h = Harness::new(Some(End::new(&flood, false, b"")), config.clone());
    let mut client = End::new(b"", false, b"");
    client.reads = false;
    h.dial_client(client);
    let mut peak = 0;
    let relay = h.relay;
    let settled = h.run(Duration::from_secs(30), |net| {
        for leg in net.server_connections(relay) {
            if let Some(c) = net.connection::<RelayLeg>(*leg) {
                peak = peak.max(c.queued_memory() + c.buffered_bytes());
            }
        }
        false
    });
    assert!(!settled);
    let high = Config::default().high_water;
    let read = NetworkConfig::default().max_read;
    assert!(
        peak > high,
        "the reader stalled long enough to fill the queue: {peak}"
    );
    assert!(
        peak <= high + config.window + read,
        "client leg held {peak} bytes: more than the high-water mark {high} + window {} + one read",
        config.window
    );
}

#[test]
fn the_client_leg_reads_nothing_before_the_upstream_and_sends_a_proxy_header() {
    let dials: Arc<spin::Mutex<Vec<Dial>>> = Arc::default();
    let queue = Arc::clone(&dials);
    let dialer: Dialer = Arc::new(move |dial| {
        queue.lock().push(dial);
        Box::new(())
    });
    let config = RelayConfig {
        send_proxy: Some(Version::V2),
        ..RelayConfig::default()
    };
    let mut client_leg = Recorder::new(RelayLeg::client(dialer, Arc::new(config)));
    client_leg.receive(b"early bytes");
    client_leg.run_until_idle();
    assert_eq!(
        client_leg.unread_bytes(),
        11,
        "held until the upstream is connected"
    );
    let dial = dials.lock().pop().unwrap();
    let mut preamble = BytesMut::from(&dial.preamble[..]);
    let header = decode(&mut preamble, MAX_V2_LEN).unwrap().unwrap();
    assert_eq!(header.source(), Some(dial.peer));
    assert_eq!(header.destination(), Some(dial.local));

    let mut upstream_leg = Recorder::new(RelayLeg::upstream(dial));
    upstream_leg.run_until_idle();
    client_leg.run_until_idle();
    upstream_leg.run_until_idle();
    let written = upstream_leg.take_written();
    assert!(written.starts_with(&crate::proxy::SIGNATURE));
    assert!(written.ends_with(b"early bytes"), "relayed once connected");
    assert_eq!(client_leg.unread_bytes(), 0);
}

#[test]
fn a_graceful_close_of_the_client_leg_closes_both_legs_cleanly() {
    let mut h = Harness::new(Some(End::new(b"", false, b"")), RelayConfig::default());
    h.dial_client(End::new(b"some bytes", false, b""));
    assert!(h.run(Duration::from_secs(5), |net| net.open_connections() == 4));
    let leg = h.relay_legs()[0];
    assert!(h.net.close(leg), "as a server shutdown closes it");
    assert!(h.run(Duration::from_secs(60), |net| net.open_connections() == 0));
    assert_eq!(h.net.reason(leg), Some(Reason::Done));
    assert_eq!(h.server_end().unwrap().got, b"some bytes");
    assert_eq!(h.server_end().unwrap().lost, Some(Reason::Done));
    assert_eq!(h.client_end().lost, Some(Reason::Done));
}

#[test]
fn behind_accept_proxy_the_relay_forwards_the_real_client_upstream() {
    use crate::proxy::{AcceptConfig, AcceptProxyFactory};
    let mut net = StreamNetwork::new(NetworkConfig::default());
    let dials: Arc<spin::Mutex<Vec<Dial>>> = Arc::default();
    let queue = Arc::clone(&dials);
    let dialer: Dialer = Arc::new(move |dial| {
        queue.lock().push(dial);
        Box::new(())
    });
    let config = RelayConfig {
        send_proxy: Some(Version::V1),
        ..RelayConfig::default()
    };
    let factory =
        AcceptProxyFactory::new(RelayFactory::new(dialer, config), AcceptConfig::required());
    net.listen(addr(RELAY), factory, Config::default());
    let upstream = net.listen(
        addr(UPSTREAM),
        |_peer| End::new(b"", false, b""),
        Config::default(),
    );
    let header = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 1235\r\n";
    net.dial(
        addr(RELAY),
        End::new(&[&header[..], b"payload"].concat(), true, b""),
        Config::default(),
    )
    .unwrap();
    for _ in 0..100 {
        net.run_until_condition(net.now() + Duration::from_secs(5), |_| {
            !dials.lock().is_empty()
        });
        let pending: Vec<Dial> = core::mem::take(&mut *dials.lock());
        if pending.is_empty() {
            break;
        }
        for dial in pending {
            assert_eq!(dial.peer, addr("192.0.2.7:50000"));
            net.connect(
                addr(UPSTREAM),
                UpstreamFactory::new(dial),
                connector::Config::default(),
            );
        }
    }
    let server = net.server_connections(upstream)[0];
    let got = &net.protocol::<End>(server).unwrap().got;
    assert_eq!(
        &got[..],
        b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 1235\r\npayload"
    );
}
