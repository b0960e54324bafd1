//! The UDP scenarios on the in-memory network (`loomwork::datagram::network`), in virtual
//! time: the same protocols as on real sockets, plus what loopback cannot show (loss and
//! reordering, replayed exactly from a seed).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use loomwork::bytes::Bytes;
use loomwork::datagram::network::{LinkConfig, Network, NodeId};
use loomwork::datagram::{
    Config, DatagramProtocol, DatagramTransport, Interface, SendError, MAX_IPV4_PAYLOAD,
};
use loomwork::{Instant, Reason, TimerId};
use loomwork_conformance::udp::{echo_payload, Act, Event, Probe};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Sends echo payloads one at a time, checks each answer, re-sends on a timeout.
struct Pinger {
    server: SocketAddr,
    count: u32,
    seq: u32,
    timer: Option<TimerId>,
    retries: u32,
    verified: u32,
    /// The payload in flight, built once per sequence number.
    current: Bytes,
}

impl Pinger {
    fn new(server: SocketAddr, count: u32) -> Self {
        Pinger {
            server,
            count,
            seq: 0,
            timer: None,
            retries: 0,
            verified: 0,
            current: Bytes::from(echo_payload(0)),
        }
    }

    fn send_current(&mut self, tx: &mut DatagramTransport<'_>) {
        tx.send_to(self.current.clone(), self.server)
            .expect("payloads fit");
        self.timer = Some(tx.call_later(Duration::from_millis(50)));
    }
}

impl DatagramProtocol for Pinger {
    type Message = ();

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.send_current(tx);
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        assert_eq!(from, self.server);
        assert!(!truncated);
        if data != self.current {
            return; // a late answer to a datagram already re-sent
        }
        self.verified += 1;
        if let Some(timer) = self.timer.take() {
            tx.cancel_timer(timer);
        }
        self.seq += 1;
        self.current = Bytes::from(echo_payload(self.seq));
        if self.seq == self.count {
            tx.close();
        } else {
            self.send_current(tx);
        }
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        self.retries += 1;
        self.send_current(tx);
    }
}

fn echo_run(link: LinkConfig) -> (u32, u32, Instant) {
    let mut net = Network::new(link);
    let server = addr("10.0.0.1:9999");
    net.add(
        server,
        Probe {
            echo: true,
            ..Probe::default()
        },
        Config::default(),
    );
    let client = net.add(
        addr("10.0.0.2:5000"),
        Pinger::new(server, 10_000),
        Config::default(),
    );
    let end = net.run_until_idle();
    let pinger = net.protocol::<Pinger>(client).unwrap();
    (pinger.verified, pinger.retries, end)
}

#[test]
fn echo_10_000_datagrams_of_mixed_sizes() {
    let (verified, retries, end) = echo_run(LinkConfig::default());
    assert_eq!((verified, retries), (10_000, 0));
    // 10,000 round trips of 2 × 100 µs, exactly: virtual time does not drift.
    assert_eq!(end, Instant::from_millis(2_000));
}

#[test]
fn echo_over_a_lossy_reordering_link_recovers_and_replays_exactly() {
    let link = LinkConfig {
        loss: 0.1,
        jitter: Duration::from_millis(5),
        seed: 42,
        ..LinkConfig::default()
    };
    let (verified, retries, end) = echo_run(link.clone());
    assert_eq!(verified, 10_000);
    assert!(
        retries > 1_000,
        "about a fifth of the round trips lose a datagram: {retries}"
    );
    assert_eq!(
        echo_run(link),
        (verified, retries, end),
        "same seed, same run"
    );
}

fn probe(on_start: Vec<Act>) -> Probe {
    Probe {
        on_start,
        ..Probe::default()
    }
}

fn payloads(net: &Network, id: NodeId) -> Vec<Bytes> {
    net.protocol::<Probe>(id).unwrap().payloads()
}

fn events(net: &Network, id: NodeId) -> &[Event] {
    &net.protocol::<Probe>(id).unwrap().events
}

fn send_to(net: &mut Network, from: NodeId, data: &'static [u8], to: SocketAddr) {
    net.post::<Probe>(from, Act::SendTo(Bytes::from_static(data), to))
        .unwrap();
    net.run_until_idle();
}

#[test]
fn connected_mode_filters_other_senders() {
    let mut net = Network::new(LinkConfig::default());
    let (a_addr, s_addr) = (addr("10.0.0.2:1"), addr("10.0.0.1:7"));
    let server = net.add(s_addr, probe(vec![Act::Connect(a_addr)]), Config::default());
    let a = net.add(a_addr, Probe::default(), Config::default());
    let b = net.add(addr("10.0.0.3:1"), Probe::default(), Config::default());
    send_to(&mut net, b, b"from b", s_addr);
    send_to(&mut net, a, b"from a", s_addr);
    assert_eq!(payloads(&net, server), [Bytes::from_static(b"from a")]);
    assert_eq!(net.stats().filtered, 1);
}

#[test]
fn refusal_reaches_connection_refused_and_the_endpoint_lives_on() {
    let mut net = Network::new(LinkConfig::default());
    let live_addr = addr("10.0.0.3:1");
    let client = net.add(
        addr("10.0.0.2:1"),
        Probe {
            on_start: vec![
                Act::Connect(addr("10.0.0.9:9")),
                Act::Send(Bytes::from_static(b"hello")),
            ],
            on_refused: vec![
                Act::Connect(live_addr),
                Act::Send(Bytes::from_static(b"still here")),
            ],
            ..Probe::default()
        },
        Config::default(),
    );
    let live = net.add(live_addr, Probe::default(), Config::default());
    net.run_until_idle();
    assert!(events(&net, client).contains(&Event::Refused));
    assert_eq!(payloads(&net, live), [Bytes::from_static(b"still here")]);
}

#[test]
fn reconnect_to_a_new_peer_and_disconnect() {
    let mut net = Network::new(LinkConfig::default());
    let (s_addr, a_addr, b_addr) = (addr("10.0.0.1:7"), addr("10.0.0.2:1"), addr("10.0.0.3:1"));
    let server = net.add(s_addr, probe(vec![Act::Connect(a_addr)]), Config::default());
    let a = net.add(a_addr, Probe::default(), Config::default());
    let b = net.add(b_addr, Probe::default(), Config::default());
    net.post::<Probe>(server, Act::Connect(b_addr)).unwrap();
    net.post::<Probe>(server, Act::Send(Bytes::from_static(b"to b")))
        .unwrap();
    net.run_until_idle();
    send_to(&mut net, a, b"a while b", s_addr);
    send_to(&mut net, b, b"b while b", s_addr);
    net.post::<Probe>(server, Act::Disconnect).unwrap();
    send_to(&mut net, a, b"a after", s_addr);
    assert_eq!(payloads(&net, b), [Bytes::from_static(b"to b")]);
    assert_eq!(
        payloads(&net, server),
        [
            Bytes::from_static(b"b while b"),
            Bytes::from_static(b"a after")
        ]
    );
}

#[test]
fn oversize_send_is_a_typed_error_and_the_endpoint_keeps_working() {
    let mut net = Network::new(LinkConfig::default());
    let a_addr = addr("10.0.0.2:1");
    let server = net.add(addr("10.0.0.1:7"), Probe::default(), Config::default());
    let a = net.add(a_addr, Probe::default(), Config::default());
    let big = Bytes::from(vec![0; MAX_IPV4_PAYLOAD + 1]);
    net.post::<Probe>(server, Act::SendTo(big, a_addr)).unwrap();
    send_to(&mut net, server, b"fine", a_addr);
    assert_eq!(
        events(&net, server)[1],
        Event::SendRefused(SendError::TooLarge {
            len: MAX_IPV4_PAYLOAD + 1,
            max: MAX_IPV4_PAYLOAD
        })
    );
    assert_eq!(payloads(&net, a), [Bytes::from_static(b"fine")]);
}

#[test]
fn truncation_is_flagged() {
    let mut net = Network::new(LinkConfig::default());
    let s_addr = addr("10.0.0.1:7");
    let small = Config {
        receive_size: 4,
        ..Config::default()
    };
    let server = net.add(s_addr, Probe::default(), small);
    let a = net.add(addr("10.0.0.2:1"), Probe::default(), Config::default());
    send_to(&mut net, a, b"12345", s_addr);
    assert!(
        matches!(&events(&net, server)[1], Event::Datagram { data, truncated: true, .. } if data.len() == 4)
    );
}

#[test]
fn multicast_members_receive_until_they_leave_and_loopback_off_is_silent() {
    let mut net = Network::new(LinkConfig::default());
    let group: IpAddr = "239.1.2.3".parse().unwrap();
    let to = SocketAddr::new(group, 8005);
    let join = |loopback| {
        probe(vec![
            Act::Join(group, Interface::Any),
            Act::Loopback(loopback),
        ])
    };
    let first = net.add(addr("10.0.0.1:8005"), join(true), Config::default());
    let second = net.add(addr("10.0.0.2:8005"), join(false), Config::default());
    let outsider = net.add(addr("10.0.0.3:8005"), Probe::default(), Config::default());
    send_to(&mut net, outsider, b"one", to);
    net.post::<Probe>(first, Act::Leave(group)).unwrap();
    send_to(&mut net, outsider, b"two", to);
    send_to(&mut net, second, b"own", to);
    assert_eq!(payloads(&net, first), [Bytes::from_static(b"one")]);
    assert_eq!(
        payloads(&net, second),
        [Bytes::from_static(b"one"), Bytes::from_static(b"two")]
    );
    assert!(payloads(&net, outsider).is_empty());
    net.close(second);
    assert_eq!(
        events(&net, second).last(),
        Some(&Event::Stopped(Reason::Done))
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the loss, jitter and seed, the echo exchange completes with every payload
    /// verified, and the same seed replays the same run.
    #[test]
    fn any_lossy_link_completes_the_exchange(
        loss in 0.0f64..0.5,
        jitter_us in 0u64..20_000,
        seed in proptest::prelude::any::<u64>(),
    ) {
        let link = LinkConfig {
            loss,
            jitter: Duration::from_micros(jitter_us),
            seed,
            ..LinkConfig::default()
        };
        let run = |link: LinkConfig| {
            let mut net = Network::new(link);
            let server = addr("10.0.0.1:9999");
            net.add(server, Probe { echo: true, ..Probe::default() }, Config::default());
            let client = net.add(addr("10.0.0.2:5000"), Pinger::new(server, 200), Config::default());
            let end = net.run_until_idle();
            let pinger = net.protocol::<Pinger>(client).unwrap();
            (pinger.verified, pinger.retries, end)
        };
        let first = run(link.clone());
        proptest::prop_assert_eq!(first.0, 200);
        proptest::prop_assert_eq!(run(link), first);
    }
}
