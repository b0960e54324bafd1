//! The datagram kit finds bugs: deliberately broken datagram protocols, each reported for the
//! reason it is broken; correct ones, a close whose sends never drain included, not reported.

use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::datagram::{Config, DatagramProtocol, DatagramTransport};
use crate::reason::{Reason, Timeout};
use crate::testing::properties::{datagram_schedule, datagram_schedule_with_messages};
use crate::testing::{DatagramCheck, DatagramOp};
use crate::timer::TimerId;

/// Short datagrams of any bytes, and the words the protocols below react to.
fn datagrams() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..32),
        1 => Just(b"bye".to_vec()),
        1 => Just(b"part".to_vec()),
        1 => Just(b"end".to_vec()),
    ]
    .boxed()
}

fn send<M>(peer: usize, data: &[u8]) -> DatagramOp<M> {
    DatagramOp::Send {
        peer,
        data: data.to_vec(),
        truncated: false,
    }
}

/// Pseudo-random fuzz inputs from a fixed seed.
fn fuzz_inputs(count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    (0..count).map(move |i| {
        let len = 1 + (i * 37) % 600;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    })
}

// ----- correct protocols ------------------------------------------------------------------

/// Twisted's UDP echo, which closes on `bye` after answering it.
struct Echo;

impl DatagramProtocol for Echo {
    type Message = u8;

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        let bye = &data[..] == b"bye";
        let _ = tx.send_to(data, from);
        if bye {
            tx.close();
        }
    }

    fn message(&mut self, message: u8, tx: &mut DatagramTransport<'_>) {
        tx.call_later(Duration::from_millis(u64::from(message)));
    }
}

#[test]
fn a_correct_echo_passes_every_property_and_the_fuzzer() {
    let check = DatagramCheck::protocol(|| Echo)
        .messages(|u| u.arbitrary::<u8>())
        .cases(64);
    check
        .stops_exactly_once(datagram_schedule_with_messages(datagrams(), any::<u8>()))
        .unwrap();
    // Not with `bye`: a close stops the endpoint for every peer, wherever it falls.
    let no_bye = proptest::collection::vec(any::<u8>(), 0..32);
    check.same_replies_however_interleaved(no_bye).unwrap();
    for input in fuzz_inputs(300) {
        check.fuzz_checked(&input).unwrap();
    }
}

#[test]
fn an_echo_on_ipv6_with_tiny_queues_passes() {
    let check = DatagramCheck::protocol(|| Echo)
        .local("[fd00::a]:12345".parse().unwrap())
        .config(Config {
            max_queued: Some(2),
            max_queued_bytes: Some(64),
            ..Config::default()
        })
        .cases(64);
    check
        .stops_exactly_once(datagram_schedule(datagrams()))
        .unwrap();
    let outcome = check.run([send(2, b"hi")]).unwrap();
    assert_eq!(outcome.sent_to("[fd00::1]:50003".parse().unwrap()), ["hi"]);
}

/// A close whose sends the socket never takes is ended by the close deadline, the sends
/// dropped: the endpoint's bound, not a broken invariant.
#[test]
fn a_close_that_never_drains_ends_at_its_deadline_and_is_not_reported() {
    let check = DatagramCheck::protocol(|| Echo);
    let outcome = check
        .run([
            DatagramOp::Writable { on: false },
            send(0, b"one"),
            send(1, b"two"),
            DatagramOp::Close,
            DatagramOp::Advance(Duration::from_secs(6)),
        ])
        .unwrap();
    assert!(outcome.sent.is_empty(), "{outcome:?}");
    assert_eq!(outcome.reason, Some(Reason::TimedOut(Timeout::Close)));
}

#[test]
fn a_command_failure_reaches_the_protocol_and_sends_follow_the_socket() {
    /// Connects to the first peer it hears from and answers on the connected socket.
    #[derive(Default)]
    struct Connecting {
        failures: usize,
    }
    impl DatagramProtocol for Connecting {
        type Message = ();
        fn datagram_received(
            &mut self,
            data: Bytes,
            from: SocketAddr,
            _: bool,
            tx: &mut DatagramTransport<'_>,
        ) {
            if tx.peer().is_none() {
                let _ = tx.connect(from);
            }
            let _ = tx.send(data);
        }
        fn command_failed(
            &mut self,
            _: &crate::datagram::Command,
            _: &Reason,
            _: &mut DatagramTransport<'_>,
        ) {
            self.failures += 1;
        }
    }
    let check = DatagramCheck::protocol(Connecting::default);
    let outcome = check
        .run([send(1, b"a"), send(2, b"filtered"), send(1, b"b")])
        .unwrap();
    assert_eq!(outcome.sent_to(check.peer_address(1)), ["a", "b"]);
    let failed = check
        .run([
            DatagramOp::CommandFailed {
                reason: Reason::Unreachable,
            },
            send(1, b"a"),
        ])
        .unwrap();
    // The connect failed: the send queued behind it goes out on an unconnected socket.
    assert_eq!(failed.sent, [(Bytes::from("a"), None)]);
}

// ----- broken protocols -------------------------------------------------------------------

/// Says goodbye after closing, so the goodbye is refused and lost (the error ignored).
struct GoodbyeAfterClose;

impl DatagramProtocol for GoodbyeAfterClose {
    type Message = ();

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if &data[..] == b"bye" {
            tx.close();
            let _ = tx.send_to(&b"goodbye"[..], from);
        } else {
            let _ = tx.send_to(data, from);
        }
    }
}

#[test]
fn a_protocol_that_sends_after_closing_is_reported() {
    let check = DatagramCheck::protocol(|| GoodbyeAfterClose).cases(64);
    let failure = check
        .stops_exactly_once(datagram_schedule(datagrams()))
        .unwrap_err();
    assert!(
        failure
            .what
            .contains("sent after closing (in datagram_received): 1 datagram(s) refused and lost"),
        "{failure}"
    );
    // The same, from a hand-written schedule.
    let violation = check.run([send(0, b"hi"), send(3, b"bye")]).unwrap_err();
    assert!(violation.what.contains("sent after closing"), "{violation}");
    assert!(
        violation.trace.last().unwrap().contains("b\"bye\""),
        "{violation}"
    );
}

/// Pings the first peer it hears from until it answers, retransmitting after twice the round
/// trip it last measured, with no floor (RFC 6298 has one, of a second): an answer at the same
/// instant as the ping measures zero, and a zero timeout re-arms for the same instant forever.
#[derive(Default)]
struct RttProbe {
    peer: Option<SocketAddr>,
    pinged_at: Option<crate::Instant>,
    timeout: Duration,
}

impl DatagramProtocol for RttProbe {
    type Message = ();

    fn datagram_received(
        &mut self,
        _: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        match (self.peer, self.pinged_at) {
            (None, _) => {
                self.peer = Some(from);
                self.pinged_at = Some(tx.now());
                self.timeout = Duration::from_secs(1);
                let _ = tx.send_to(&b"ping"[..], from);
                tx.call_later(self.timeout);
            }
            (Some(peer), Some(pinged_at)) if peer == from => {
                self.timeout = 2 * tx.now().saturating_duration_since(pinged_at);
                self.pinged_at = None;
            }
            _ => {}
        }
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        if let Some(peer) = self.peer {
            self.pinged_at = Some(tx.now());
            let _ = tx.send_to(&b"ping"[..], peer);
        }
        tx.call_later(self.timeout);
    }
}

#[test]
fn a_protocol_whose_timer_rearms_at_the_same_instant_forever_is_reported() {
    let check = DatagramCheck::protocol(RttProbe::default).cases(64);
    let failure = check
        .stops_exactly_once(datagram_schedule(datagrams()))
        .unwrap_err();
    assert!(failure.what.contains("timer storm"), "{failure}");
    // And the fuzz driver: two empty datagrams from peer 0, then a jump to the deadline.
    let input = [0, 0, 0, 0, 18];
    assert_eq!(
        check.decode_schedule(&input),
        [send(0, b""), send(0, b""), DatagramOp::NextDeadline]
    );
    let found = check.fuzz_checked(&input).unwrap_err();
    assert!(found.what.contains("timer storm"), "{found}");
    // A round trip that takes time is fine: a ping at 0, the answer at 0.5 s, then a ping
    // every second (the timer armed at 0 for 1 s, re-armed for twice 0.5 s).
    let outcome = check
        .run([
            send(0, b"hello"),
            DatagramOp::Advance(Duration::from_millis(500)),
            send(0, b"pong"),
            DatagramOp::Advance(Duration::from_secs(4)),
        ])
        .unwrap();
    assert_eq!(outcome.sent_to(check.peer_address(0)).len(), 5);
}

/// Reassembles `part`s until `end` and answers the sender with how many parts it had, but
/// keeps one count for all peers instead of one per peer.
#[derive(Default)]
struct SharedReassembly {
    parts: BytesMut,
}

impl DatagramProtocol for SharedReassembly {
    type Message = ();

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        match &data[..] {
            b"part" => self.parts.extend_from_slice(b"+"),
            b"end" => {
                let whole = self.parts.split().freeze();
                let _ = tx.send_to(whole, from);
            }
            _ => {}
        }
    }
}

#[test]
fn a_protocol_that_mixes_peers_state_is_reported_by_the_interleaving_property() {
    let check = DatagramCheck::protocol(SharedReassembly::default).cases(128);
    // Every invariant holds: only the replies are wrong.
    check
        .stops_exactly_once(datagram_schedule(datagrams()))
        .unwrap();
    let failure = check
        .same_replies_however_interleaved(datagrams())
        .unwrap_err();
    assert!(failure.what.contains("peer by peer, "), "{failure}");
    assert!(failure.what.contains("; interleaved, "), "{failure}");
}

/// Reads a length from the first byte and slices without checking it against the datagram.
struct TrustsTheLength;

impl DatagramProtocol for TrustsTheLength {
    type Message = ();

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if let Some(&len) = data.first() {
            let body = data.slice(1..1 + usize::from(len));
            let _ = tx.send_to(body, from);
        }
    }
}

#[test]
fn a_panic_in_the_protocol_reaches_the_fuzzer() {
    extern crate std;
    let check = DatagramCheck::protocol(|| TrustsTheLength);
    let panicked = fuzz_inputs(100).any(|input| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check.fuzz(&input))).is_err()
    });
    assert!(panicked);
}

#[test]
fn a_violation_names_what_and_the_operations_that_led_there() {
    let check = DatagramCheck::protocol(|| GoodbyeAfterClose);
    let text = check
        .run([send(0, b"hi"), send(1, b"bye")])
        .unwrap_err()
        .to_string();
    assert!(text.contains("sent after closing"), "{text}");
    assert!(
        text.contains("#1 Send { peer: 1, data: b\"bye\", truncated: false }"),
        "{text}"
    );
    assert_eq!(
        check.decode_schedule(&[]),
        vec![],
        "an empty input is an empty schedule"
    );
}
