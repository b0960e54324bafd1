//! Property tests: the endpoint keeps its invariants over arbitrary input sequences, and no
//! input sequence makes it panic.

use alloc::vec;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;

use super::tests::{OnDatagram, Recorder, Step};
use crate::datagram::*;
use crate::{Instant, IoKind, Reason};

/// One input from the runtime or the outside world.
#[derive(Clone, Debug)]
enum Input {
    Started(bool),
    Datagram {
        len: usize,
        from: u8,
        truncated: bool,
    },
    Refused,
    SendError {
        connected: bool,
        reason: u8,
    },
    CommandFailed,
    Advance(u16),
    Message(Step),
    Drain(u8),
    Close,
    Abort,
    Error,
}

fn peer(n: u8) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(n % 4)))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4).prop_map(|n| Step::Connect(peer(n))),
        Just(Step::Disconnect),
        (0usize..70_000).prop_map(Step::Send),
        (0usize..70_000, 0u8..4).prop_map(|(len, n)| Step::SendTo(len, peer(n))),
        prop_oneof![Just("239.1.1.1"), Just("127.0.0.1"), Just("ff02::1")]
            .prop_map(|g| Step::Join(g.parse().unwrap())),
        (0u64..2_000).prop_map(|ms| Step::Timer(Duration::from_millis(ms))),
        Just(Step::Close),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        any::<bool>().prop_map(Input::Started),
        (0usize..2_000, 0u8..4, any::<bool>()).prop_map(|(len, from, truncated)| Input::Datagram {
            len,
            from,
            truncated
        }),
        Just(Input::Refused),
        (any::<bool>(), 0u8..3)
            .prop_map(|(connected, reason)| Input::SendError { connected, reason }),
        Just(Input::CommandFailed),
        any::<u16>().prop_map(Input::Advance),
        step().prop_map(Input::Message),
        any::<u8>().prop_map(Input::Drain),
        Just(Input::Close),
        Just(Input::Abort),
        Just(Input::Error),
    ]
}

/// Started, a close requested, `stop_protocol` not run yet.
fn is_closing<P: DatagramProtocol>(e: &Endpoint<P>) -> bool {
    e.local().is_some() && !e.wants_read() && !e.is_ended()
}

fn limits() -> impl Strategy<Value = Config> {
    (1usize..8, 1usize..200_000).prop_map(|(queued, bytes)| Config {
        max_queued: Some(queued),
        max_queued_bytes: Some(bytes),
        ..Config::default()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn endpoint_keeps_its_invariants(
        config in limits(),
        echo in any::<bool>(),
        inputs in proptest::collection::vec(input(), 0..60),
    ) {
        let on_datagram = if echo { OnDatagram::Echo } else { OnDatagram::Record };
        let mut e = Endpoint::new(Recorder { on_datagram, ..Recorder::default() }, config.clone());
        let mut now = Instant::ZERO;
        let mut closes = 0;
        let mut last_command = None;
        for input in inputs {
            match input {
                Input::Started(v6) => {
                    let local = if v6 { "[::1]:4000" } else { "127.0.0.1:4000" };
                    e.handle_started(now, local.parse().unwrap());
                }
                Input::Datagram { len, from, truncated } => {
                    e.handle_datagram(now, Bytes::from(alloc::vec![0u8; len]), peer(from), truncated);
                }
                Input::Refused => e.handle_send_error(now, None, Reason::Refused),
                Input::SendError { connected, reason } => {
                    let reason = match reason {
                        0 => Reason::Refused,
                        1 => Reason::Unreachable,
                        _ => Reason::Io { kind: IoKind::MessageTooLong, code: None },
                    };
                    let to = (!connected).then(|| peer(0));
                    e.handle_send_error(now, to, reason);
                }
                Input::CommandFailed => {
                    let command = last_command.clone().unwrap_or(Command::SetTtl(1));
                    e.handle_command_result(now, command, Err(Reason::Unreachable));
                }
                Input::Advance(ms) => {
                    let close_deadline = if is_closing(&e) { e.next_timeout() } else { None };
                    now += Duration::from_millis(u64::from(ms));
                    e.handle_timeout(now);
                    if close_deadline.is_some_and(|deadline| now >= deadline) {
                        prop_assert!(e.is_ended(), "a close outlived its deadline");
                        prop_assert_eq!(e.reason(), Some(&Reason::TimedOut(crate::Timeout::Close)));
                        prop_assert_eq!(e.queued_bytes(), 0);
                    }
                }
                Input::Message(step) => e.handle_message(now, step),
                Input::Drain(n) => {
                    for _ in 0..n {
                        match e.poll_action() {
                            Some(Action::Send(t)) => {
                                let max = match t.to.or(e.peer()) {
                                    Some(SocketAddr::V6(_)) => MAX_IPV6_PAYLOAD,
                                    _ => MAX_IPV4_PAYLOAD,
                                };
                                prop_assert!(t.data.len() <= max);
                                prop_assert_eq!(closes, 0, "output after close");
                            }
                            Some(Action::Command(c)) => {
                                prop_assert_eq!(closes, 0, "output after close");
                                last_command = Some(c);
                            }
                            Some(Action::Close) => closes += 1,
                            None => break,
                        }
                    }
                }
                Input::Close => e.close(now),
                Input::Abort => e.abort(now),
                Input::Error => e.handle_error(now, Reason::Lost),
            }
            // Limits hold after every input.
            prop_assert!(e.queued() <= config.max_queued.unwrap());
            prop_assert!(e.queued_bytes() <= config.max_queued_bytes.unwrap());
            // A deadline only while there is something to wake for: the protocol's timers
            // while open, the close deadline while closing; a close is always bounded by
            // `close_timeout` (the default) and a tick at its deadline ends it.
            let closing = is_closing(&e);
            match e.next_timeout() {
                Some(deadline) => {
                    prop_assert!(!e.is_ended());
                    if closing {
                        prop_assert!(deadline <= now + config.close_timeout.unwrap());
                    }
                }
                None => prop_assert!(!closing, "a close with no deadline"),
            }
        }
        // Whatever happened, a close drains to exactly one final `Close`.
        e.close(now);
        let tail: Vec<Action> = core::iter::from_fn(|| e.poll_action()).collect();
        closes += tail.iter().filter(|o| **o == Action::Close).count();
        prop_assert_eq!(closes, 1);
        prop_assert_eq!(tail.last(), if tail.is_empty() { None } else { Some(&Action::Close) });
        prop_assert!(e.is_ended());
        prop_assert_eq!(e.queued_bytes(), 0);

        // The protocol's life: started first (if ever), stopped at most once, last.
        let events = &e.protocol().events;
        let starts = events.iter().filter(|l| l.starts_with("start")).count();
        let stops = events.iter().filter(|l| l.starts_with("stop")).count();
        prop_assert!(starts <= 1);
        prop_assert_eq!(stops, starts);
        if starts == 1 {
            prop_assert!(events[0].starts_with("start"));
            prop_assert!(events[events.len() - 1].starts_with("stop"));
        }
    }
}

#[cfg(feature = "fuzz")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// The fuzz target's check (see `fuzzing`), driven by proptest on every `cargo test`.
    #[test]
    fn endpoint_fuzz_check_holds(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Err(violation) = super::fuzzing::check_endpoint(&data) {
            prop_assert!(false, "{}", violation);
        }
    }
}
