//! Script-style tests of the `Endpoint` driver, with explicit times.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::*;
use crate::{Instant, Reason, TimerId};

/// What the recorder does when a datagram arrives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum OnDatagram {
    #[default]
    Record,
    Echo,
}

/// A protocol that records every callback as a line and can be scripted from the test.
#[derive(Default)]
pub(super) struct Recorder {
    pub(super) events: Vec<String>,
    pub(super) on_datagram: OnDatagram,
    pub(super) script: Vec<Step>,
}

/// Something the recorder does through its transport when the test posts it as a message.
#[derive(Clone, Debug)]
pub(super) enum Step {
    Connect(SocketAddr),
    Disconnect,
    Send(usize),
    SendTo(usize, SocketAddr),
    Join(IpAddr),
    Timer(Duration),
    Close,
}

impl Recorder {
    fn run(&mut self, step: Step, tx: &mut DatagramTransport<'_>) {
        let result = match step {
            Step::Connect(peer) => tx.connect(peer).map_err(|e| e.to_string()),
            Step::Disconnect => tx.disconnect().map_err(|e| e.to_string()),
            Step::Send(len) => tx
                .send(Bytes::from(alloc::vec![7u8; len]))
                .map_err(|e| e.to_string()),
            Step::SendTo(len, to) => tx
                .send_to(Bytes::from(alloc::vec![7u8; len]), to)
                .map_err(|e| e.to_string()),
            Step::Join(group) => tx
                .join_group(group, Interface::Any)
                .map_err(|e| e.to_string()),
            Step::Timer(delay) => {
                tx.call_later(delay);
                Ok(())
            }
            Step::Close => {
                tx.close();
                Ok(())
            }
        };
        if let Err(err) = result {
            self.events.push(alloc::format!("error: {err}"));
        }
    }
}

impl DatagramProtocol for Recorder {
    type Message = Step;

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.events
            .push(alloc::format!("start {}", tx.local().unwrap()));
        for step in core::mem::take(&mut self.script) {
            self.run(step, tx);
        }
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if let Some(peer) = tx.peer() {
            assert_eq!(
                (from.ip(), from.port()),
                (peer.ip(), peer.port()),
                "a stranger got through"
            );
        }
        self.events.push(alloc::format!(
            "datagram {} from {from} truncated={truncated}",
            data.len()
        ));
        if self.on_datagram == OnDatagram::Echo {
            if let Err(err) = tx.send_to(data, from) {
                self.events.push(alloc::format!("error: {err}"));
            }
        }
    }

    fn connection_refused(&mut self, _tx: &mut DatagramTransport<'_>) {
        self.events.push("refused".into());
    }

    fn send_failed(
        &mut self,
        to: Option<SocketAddr>,
        reason: &Reason,
        _tx: &mut DatagramTransport<'_>,
    ) {
        self.events
            .push(alloc::format!("send failed to {to:?}: {reason}"));
    }

    fn command_failed(
        &mut self,
        command: &Command,
        reason: &Reason,
        _tx: &mut DatagramTransport<'_>,
    ) {
        self.events
            .push(alloc::format!("command failed: {command}: {reason}"));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut DatagramTransport<'_>) {
        self.events.push(alloc::format!(
            "timer {:?} at {:?}",
            timer.deadline(),
            tx.now()
        ));
    }

    fn message(&mut self, step: Step, tx: &mut DatagramTransport<'_>) {
        self.run(step, tx);
    }

    fn stop_protocol(&mut self, reason: &Reason) {
        self.events.push(alloc::format!("stop: {reason}"));
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const LOCAL: &str = "127.0.0.1:4000";
const A: &str = "127.0.0.1:5001";
const B: &str = "127.0.0.1:5002";

fn started(recorder: Recorder) -> Endpoint<Recorder> {
    let mut endpoint = Endpoint::new(recorder, Config::default());
    endpoint.handle_started(Instant::ZERO, addr(LOCAL));
    endpoint
}

fn drain(endpoint: &mut Endpoint<Recorder>) -> Vec<Action> {
    core::iter::from_fn(|| endpoint.poll_action()).collect()
}

fn events(endpoint: &Endpoint<Recorder>) -> Vec<&str> {
    endpoint
        .protocol()
        .events
        .iter()
        .map(String::as_str)
        .collect()
}

fn datagram(len: usize) -> Bytes {
    Bytes::from(alloc::vec![1u8; len])
}

#[test]
fn echo_sends_each_datagram_back_to_its_sender_ud3() {
    let mut e = started(Recorder {
        on_datagram: OnDatagram::Echo,
        ..Recorder::default()
    });
    e.handle_datagram(Instant::ZERO, Bytes::from_static(b"abc"), addr(A), false);
    e.handle_datagram(Instant::ZERO, Bytes::new(), addr(B), false);
    let out = drain(&mut e);
    assert_eq!(
        out,
        [
            Action::Send(Transmit {
                data: Bytes::from_static(b"abc"),
                to: Some(addr(A))
            }),
            Action::Send(Transmit {
                data: Bytes::new(),
                to: Some(addr(B))
            }),
        ]
    );
    assert_eq!(e.stats().datagrams_received, 2);
    assert_eq!(e.stats().datagrams_sent, 2);
    assert_eq!(e.queued_bytes(), 0);
}

#[test]
fn truncated_flag_reaches_the_protocol_and_the_stats_kw6() {
    let mut e = started(Recorder::default());
    e.handle_datagram(Instant::ZERO, datagram(100), addr(A), true);
    assert_eq!(
        events(&e)[1],
        "datagram 100 from 127.0.0.1:5001 truncated=true"
    );
    assert_eq!(e.stats().truncated, 1);
}

#[test]
fn connected_endpoint_filters_other_senders_cu1() {
    let mut e = started(Recorder::default());
    e.handle_message(Instant::ZERO, Step::Connect(addr(A)));
    assert_eq!(drain(&mut e), [Action::Command(Command::Connect(addr(A)))]);
    e.handle_datagram(Instant::ZERO, datagram(1), addr(B), false);
    e.handle_datagram(Instant::ZERO, datagram(2), addr(A), false);
    assert_eq!(
        events(&e)[1..],
        ["datagram 2 from 127.0.0.1:5001 truncated=false"]
    );
    assert_eq!(e.stats().filtered, 1);
}

#[test]
fn reconnect_retargets_and_disconnect_accepts_everyone_again() {
    let mut e = started(Recorder::default());
    e.handle_message(Instant::ZERO, Step::Connect(addr(A)));
    e.handle_message(Instant::ZERO, Step::Connect(addr(B)));
    e.handle_message(Instant::ZERO, Step::Send(3));
    assert_eq!(e.peer(), Some(addr(B)));
    e.handle_datagram(Instant::ZERO, datagram(1), addr(A), false);
    e.handle_datagram(Instant::ZERO, datagram(2), addr(B), false);
    e.handle_message(Instant::ZERO, Step::Disconnect);
    e.handle_message(Instant::ZERO, Step::Send(1));
    e.handle_datagram(Instant::ZERO, datagram(3), addr(A), false);
    assert_eq!(
        drain(&mut e),
        [
            Action::Command(Command::Connect(addr(A))),
            Action::Command(Command::Connect(addr(B))),
            Action::Send(Transmit {
                data: datagram(3).map_all(7),
                to: None
            }),
            Action::Command(Command::Disconnect),
        ]
    );
    assert_eq!(
        events(&e)[1..],
        [
            "datagram 2 from 127.0.0.1:5002 truncated=false",
            "error: send without an address on an unconnected endpoint",
            "datagram 3 from 127.0.0.1:5001 truncated=false",
        ]
    );
}

trait MapAll {
    fn map_all(self, byte: u8) -> Bytes;
}
impl MapAll for Bytes {
    fn map_all(self, byte: u8) -> Bytes {
        Bytes::from(alloc::vec![byte; self.len()])
    }
}

#[test]
fn send_to_while_connected_accepts_only_the_peer_cu2() {
    let mut e = started(Recorder::default());
    e.handle_message(Instant::ZERO, Step::Connect(addr(A)));
    e.handle_message(Instant::ZERO, Step::SendTo(1, addr(A)));
    e.handle_message(Instant::ZERO, Step::SendTo(1, addr(B)));
    let out = drain(&mut e);
    assert_eq!(
        out[1],
        Action::Send(Transmit {
            data: datagram(1).map_all(7),
            to: None
        })
    );
    assert_eq!(out.len(), 2);
    assert_eq!(
        events(&e)[1],
        "error: endpoint is connected to 127.0.0.1:5001; cannot send to 127.0.0.1:5002"
    );
}

#[test]
fn oversize_sends_are_typed_errors_and_the_endpoint_goes_on() {
    let mut e = started(Recorder::default());
    e.handle_message(Instant::ZERO, Step::SendTo(MAX_IPV4_PAYLOAD + 1, addr(A)));
    e.handle_message(Instant::ZERO, Step::SendTo(MAX_IPV4_PAYLOAD, addr(A)));
    let out = drain(&mut e);
    assert_eq!(out.len(), 1);
    assert_eq!(
        events(&e)[1],
        "error: datagram of 65508 bytes exceeds the maximum of 65507"
    );
    assert!(e.wants_read());
}

#[test]
fn ipv6_allows_larger_datagrams_but_the_config_caps_both() {
    let mut e = Endpoint::new(Recorder::default(), Config::default());
    e.handle_started(Instant::ZERO, addr("[::1]:4000"));
    e.handle_message(
        Instant::ZERO,
        Step::SendTo(MAX_IPV6_PAYLOAD, addr("[::1]:5")),
    );
    e.handle_message(
        Instant::ZERO,
        Step::SendTo(MAX_IPV6_PAYLOAD + 1, addr("[::1]:5")),
    );
    assert_eq!(drain(&mut e).len(), 1);

    let config = Config {
        max_send_size: 100,
        ..Config::default()
    };
    let mut e = Endpoint::new(Recorder::default(), config);
    e.handle_started(Instant::ZERO, addr(LOCAL));
    let mut tx = e.transport();
    assert_eq!(
        tx.send_to(datagram(101), addr(A)),
        Err(SendError::TooLarge { len: 101, max: 100 })
    );
}

#[test]
fn family_mismatch_is_refused_ud6() {
    let mut e = started(Recorder::default());
    let mut tx = e.transport();
    let v6 = addr("[::1]:5");
    assert!(matches!(
        tx.send_to(datagram(1), v6),
        Err(SendError::FamilyMismatch { .. })
    ));
    assert!(matches!(
        tx.connect(v6),
        Err(CommandError::FamilyMismatch { .. })
    ));
    assert!(matches!(
        tx.join_group("ff02::1".parse().unwrap(), Interface::Any),
        Err(CommandError::FamilyMismatch { .. })
    ));
    assert_eq!(
        tx.connect(addr("0.0.0.0:5")),
        Err(CommandError::InvalidPeer(addr("0.0.0.0:5")))
    );
    assert_eq!(
        tx.connect(addr("127.0.0.1:0")),
        Err(CommandError::InvalidPeer(addr("127.0.0.1:0")))
    );
    assert_eq!(tx.queued(), 0);
}

#[test]
fn group_commands_validate_their_arguments_mc2() {
    let mut e = started(Recorder::default());
    let mut tx = e.transport();
    let unicast = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(
        tx.join_group(unicast, Interface::Any),
        Err(CommandError::NotMulticast(unicast))
    );
    let group: IpAddr = "239.1.2.3".parse().unwrap();
    tx.join_group(group, Interface::Address(Ipv4Addr::LOCALHOST))
        .unwrap();
    tx.set_ttl(4).unwrap();
    tx.set_loopback(false).unwrap();
    tx.leave_group(group, Interface::Index(1)).unwrap();
    let out = drain(&mut e);
    assert_eq!(
        out,
        [
            Action::Command(Command::JoinGroup {
                group,
                interface: Interface::Address(Ipv4Addr::LOCALHOST)
            }),
            Action::Command(Command::SetTtl(4)),
            Action::Command(Command::SetLoopback(false)),
            Action::Command(Command::LeaveGroup {
                group,
                interface: Interface::Index(1)
            }),
        ]
    );

    let mut e = Endpoint::new(Recorder::default(), Config::default());
    e.handle_started(Instant::ZERO, addr("[::]:4000"));
    let mut tx = e.transport();
    let group6: IpAddr = "ff02::1".parse().unwrap();
    assert_eq!(
        tx.join_group(group6, Interface::Address(Ipv4Addr::LOCALHOST)),
        Err(CommandError::InterfaceFamily)
    );
    assert_eq!(
        tx.set_outgoing_interface(Interface::Address(Ipv4Addr::LOCALHOST)),
        Err(CommandError::InterfaceFamily)
    );
    tx.join_group(group6, Interface::Index(1)).unwrap();
}

#[test]
fn refusal_reaches_connection_refused_only_when_connected_cu3_ud5() {
    let mut e = started(Recorder::default());
    e.handle_send_error(Instant::ZERO, None, Reason::Refused);
    assert_eq!(
        events(&e).len(),
        1,
        "unconnected refusals are ignored (UD-5)"
    );
    e.handle_message(Instant::ZERO, Step::Connect(addr(A)));
    e.handle_send_error(Instant::ZERO, None, Reason::Refused);
    e.handle_send_error(Instant::ZERO, None, Reason::Refused);
    assert_eq!(events(&e)[1..], ["refused", "refused"]);
    assert!(e.wants_read(), "a refusal never closes the endpoint (KW-7)");
    assert_eq!(e.stats().refusals, 3);
}

#[test]
fn send_errors_are_reported_and_never_fatal() {
    let mut e = started(Recorder::default());
    let too_long = Reason::Io {
        kind: crate::IoKind::MessageTooLong,
        code: None,
    };
    e.handle_send_error(Instant::ZERO, Some(addr(A)), too_long);
    e.handle_send_error(Instant::ZERO, Some(addr(A)), Reason::Unreachable);
    assert_eq!(
        events(&e)[1..],
        [
            "send failed to Some(127.0.0.1:5001): message too long",
            "send failed to Some(127.0.0.1:5001): no route to host",
        ]
    );
    assert!(e.wants_read());
}

#[test]
fn failed_connect_leaves_the_endpoint_unconnected() {
    let mut e = started(Recorder::default());
    e.handle_message(Instant::ZERO, Step::Connect(addr(A)));
    let Some(Action::Command(cmd)) = e.poll_action() else {
        panic!("expected connect")
    };
    e.handle_command_result(Instant::ZERO, cmd, Err(Reason::Unreachable));
    assert_eq!(e.peer(), None);
    assert_eq!(
        events(&e)[1],
        "command failed: connect to 127.0.0.1:5001: no route to host"
    );
    e.handle_datagram(Instant::ZERO, datagram(1), addr(B), false);
    assert_eq!(e.stats().datagrams_received, 1);
}

#[test]
fn queue_limits_refuse_whole_sends() {
    let config = Config {
        max_queued: Some(2),
        max_queued_bytes: Some(10),
        ..Config::default()
    };
    let mut e = Endpoint::new(Recorder::default(), config);
    e.handle_started(Instant::ZERO, addr(LOCAL));
    let mut tx = e.transport();
    tx.send_to(datagram(6), addr(A)).unwrap();
    assert_eq!(
        tx.send_to(datagram(5), addr(A)),
        Err(SendError::QueueFull {
            queued: 1,
            queued_bytes: 6
        })
    );
    tx.send_to(datagram(4), addr(A)).unwrap();
    assert_eq!(
        tx.send_to(datagram(0), addr(A)),
        Err(SendError::QueueFull {
            queued: 2,
            queued_bytes: 10
        })
    );
    assert_eq!(tx.set_ttl(1), Err(CommandError::QueueFull));
    assert_eq!(drain(&mut e).len(), 2);
    let mut tx = e.transport();
    tx.send_to(datagram(10), addr(A)).unwrap();
}

#[test]
fn timers_fire_at_their_deadline_and_not_before() {
    let mut e = started(Recorder {
        script: alloc::vec![Step::Timer(Duration::from_millis(500))],
        ..Recorder::default()
    });
    assert_eq!(e.next_timeout(), Some(Instant::from_millis(500)));
    e.handle_timeout(Instant::from_millis(499));
    assert_eq!(events(&e).len(), 1);
    e.handle_timeout(Instant::from_millis(600));
    assert_eq!(events(&e)[1], "timer 500ms at 600ms");
    assert_eq!(e.next_timeout(), None);
}

#[test]
fn close_flushes_queued_sends_then_stops_once_ud2() {
    let mut e = started(Recorder {
        script: alloc::vec![
            Step::SendTo(1, addr(A)),
            Step::Timer(Duration::from_secs(1)),
            Step::Close,
            Step::SendTo(1, addr(A)),
        ],
        ..Recorder::default()
    });
    assert!(!e.wants_read());
    assert_eq!(
        e.next_timeout(),
        Some(Instant::from_secs(5)),
        "the protocol's timers die with the close; only the close deadline is left"
    );
    e.handle_datagram(Instant::ZERO, datagram(1), addr(A), false);
    let out = drain(&mut e);
    assert!(matches!(out[..], [Action::Send(_), Action::Close]));
    assert_eq!(
        events(&e),
        [
            "start 127.0.0.1:4000",
            "error: send on a closed endpoint",
            "stop: connection was closed cleanly"
        ]
    );
    e.close(Instant::ZERO);
    e.abort(Instant::ZERO);
    assert_eq!(e.poll_action(), None);
    assert_eq!(events(&e).len(), 3);
}

/// An endpoint with `close_timeout` and three 100-byte sends queued for A.
fn three_queued(close_timeout: Option<Duration>) -> Endpoint<Recorder> {
    let recorder = Recorder {
        script: alloc::vec![Step::SendTo(100, addr(A)); 3],
        ..Recorder::default()
    };
    let config = Config {
        close_timeout,
        ..Config::default()
    };
    let mut e = Endpoint::new(recorder, config);
    e.handle_started(Instant::ZERO, addr(LOCAL));
    e
}

#[test]
fn close_that_cannot_drain_ends_at_its_deadline_with_timed_out_close() {
    let mut e = three_queued(Some(Duration::from_secs(2)));
    // The runtime takes one send and finds the socket's buffer full: it holds that datagram
    // and waits for the socket, the deadline or a stop.
    assert!(matches!(e.poll_action(), Some(Action::Send(_))));
    e.close(Instant::from_secs(1));
    assert!(!e.wants_read());
    assert_eq!(e.next_timeout(), Some(Instant::from_secs(3)));
    // Early and duplicate wake-ups change nothing.
    e.handle_timeout(Instant::from_millis(2_999));
    e.handle_timeout(Instant::from_millis(2_999));
    assert!(!e.is_ended());
    assert_eq!(e.queued(), 2);
    e.handle_timeout(Instant::from_secs(3));
    assert!(e.is_ended());
    assert_eq!(e.reason(), Some(&Reason::TimedOut(crate::Timeout::Close)));
    assert_eq!(
        (e.queued(), e.queued_bytes()),
        (0, 0),
        "the rest is dropped"
    );
    assert_eq!(e.next_timeout(), None);
    assert_eq!(drain(&mut e), [Action::Close]);
    assert_eq!(
        events(&e)[1..],
        ["stop: graceful close timed out; connection aborted"]
    );
    // Later inputs find it over.
    e.handle_timeout(Instant::from_secs(10));
    e.abort(Instant::from_secs(10));
    assert_eq!(e.poll_action(), None);
    assert_eq!(events(&e).len(), 2);
}

#[test]
fn close_that_drains_in_time_ends_done_and_its_deadline_is_gone() {
    let mut e = three_queued(Some(Duration::from_secs(2)));
    e.close(Instant::from_secs(1));
    let out = drain(&mut e);
    assert!(matches!(
        out[..],
        [
            Action::Send(_),
            Action::Send(_),
            Action::Send(_),
            Action::Close
        ]
    ));
    assert_eq!(e.reason(), Some(&Reason::Done));
    assert_eq!(e.next_timeout(), None);
    e.handle_timeout(Instant::from_secs(3));
    assert_eq!(e.reason(), Some(&Reason::Done));
    assert_eq!(events(&e)[1..], ["stop: connection was closed cleanly"]);
}

#[test]
fn the_protocols_own_close_is_bounded_from_the_time_it_closed() {
    let mut e = three_queued(Some(Duration::from_millis(250)));
    e.handle_message(Instant::from_secs(7), Step::Close);
    assert_eq!(e.next_timeout(), Some(Instant::from_millis(7_250)));
    e.handle_timeout(Instant::from_millis(7_250));
    assert_eq!(e.reason(), Some(&Reason::TimedOut(crate::Timeout::Close)));
    assert_eq!(drain(&mut e), [Action::Close]);
}

#[test]
fn a_second_close_does_not_move_the_deadline() {
    let mut e = three_queued(Some(Duration::from_secs(2)));
    e.close(Instant::from_secs(1));
    e.close(Instant::from_secs(2));
    assert_eq!(e.next_timeout(), Some(Instant::from_secs(3)));
}

#[test]
fn without_a_close_timeout_a_close_waits_for_the_queue() {
    let mut e = three_queued(None);
    e.close(Instant::from_secs(1));
    assert_eq!(e.next_timeout(), None);
    e.handle_timeout(Instant::from_secs(1_000_000));
    assert!(!e.is_ended());
    assert_eq!(e.queued(), 3);
    assert_eq!(drain(&mut e).len(), 4);
    assert_eq!(e.reason(), Some(&Reason::Done));
}

#[test]
fn abort_while_closing_drops_the_rest_at_once() {
    let mut e = three_queued(Some(Duration::from_secs(2)));
    assert!(matches!(e.poll_action(), Some(Action::Send(_))));
    e.close(Instant::from_secs(1));
    e.abort(Instant::from_millis(1_001));
    assert_eq!(e.reason(), Some(&Reason::Aborted));
    assert_eq!(e.next_timeout(), None);
    assert_eq!(drain(&mut e), [Action::Close]);
    assert_eq!(events(&e)[1..], ["stop: connection was aborted locally"]);
}

#[test]
fn abort_drops_queued_sends() {
    let mut e = started(Recorder {
        script: alloc::vec![Step::SendTo(1, addr(A))],
        ..Recorder::default()
    });
    e.abort(Instant::ZERO);
    assert_eq!(drain(&mut e), [Action::Close]);
    assert_eq!(e.reason(), Some(&Reason::Aborted));
}

#[test]
fn an_endpoint_closed_before_it_started_never_calls_the_protocol() {
    let mut e = Endpoint::new(Recorder::default(), Config::default());
    e.close(Instant::ZERO);
    assert_eq!(drain(&mut e), [Action::Close]);
    e.handle_started(Instant::ZERO, addr(LOCAL));
    assert!(events(&e).is_empty());
}

#[test]
fn fatal_error_stops_the_protocol_with_its_reason() {
    let mut e = started(Recorder::default());
    let reason = Reason::Io {
        kind: crate::IoKind::Other,
        code: Some(9),
    };
    e.handle_error(Instant::ZERO, reason.clone());
    assert_eq!(drain(&mut e), [Action::Close]);
    assert_eq!(e.reason(), Some(&reason));
    assert_eq!(events(&e)[1], "stop: I/O error (os error 9)");
}
