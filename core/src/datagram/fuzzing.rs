//! The datagram `Endpoint` fuzz target's check (feature `testing`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! `data[0..2]` choose the limits (queued datagrams, queued bytes); the rest is a sequence of
//! runtime inputs, one opcode byte each plus operands (started, datagram, refusal, send error,
//! command failure, time, message, draining outputs, close, abort, fatal error), around a
//! protocol that itself sends, connects, disconnects, joins groups and sets timers as the bytes it
//! receives tell it to.
//!
//! Checked after every input: queue limits hold; nothing is output after the final `Close`;
//! every send is within the family's payload limit; a deadline only while open or closing, and
//! a close always bounded by its deadline (a tick past it ends the endpoint); and at the end,
//! that a close drains to exactly one final `Close`, with `start_protocol` first (if at all) and
//! `stop_protocol` exactly once, last.

use alloc::format;
use alloc::string::String;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::{
    Action, Command, Config, DatagramProtocol, DatagramTransport, Endpoint, Interface,
    MAX_IPV4_PAYLOAD, MAX_IPV6_PAYLOAD,
};
use crate::reason::{IoKind, Reason, Timeout};
use crate::time::Instant;
use crate::timer::TimerId;

/// Runs the inputs encoded in `data` against an [`Endpoint`]; `Err` names the first violated
/// invariant.
pub fn check_endpoint(data: &[u8]) -> Result<(), String> {
    let Some((head, mut ops)) = data.split_at_checked(2) else {
        return Ok(());
    };
    let config = Config {
        max_queued: Some(1 + usize::from(head[0] % 16)),
        max_queued_bytes: Some(1 + usize::from(head[1]) * 1024),
        ..Config::default()
    };
    let (max_queued, max_bytes) = (config.max_queued, config.max_queued_bytes);
    let mut e = Endpoint::new(Chaotic::default(), config);
    let mut now = Instant::ZERO;
    let mut closes = 0usize;
    let mut last_command = Command::SetTtl(1);
    let next = |ops: &mut &[u8]| -> u8 {
        let (first, rest) = ops.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
        *ops = rest;
        first
    };
    while !ops.is_empty() {
        let op = next(&mut ops);
        match op % 11 {
            0 => {
                let local = if op & 0x80 != 0 {
                    "[::1]:4000"
                } else {
                    "127.0.0.1:4000"
                };
                e.handle_started(now, local.parse().map_err(|_| String::from("addr"))?);
            }
            1 | 2 => {
                let len = usize::from(next(&mut ops)) * 8;
                let from = peer(next(&mut ops));
                e.handle_datagram(now, Bytes::from(alloc::vec![op; len]), from, op & 0x40 != 0);
            }
            3 => e.handle_send_error(now, None, Reason::Refused),
            4 => {
                let reason = match next(&mut ops) % 3 {
                    0 => Reason::Refused,
                    1 => Reason::Unreachable,
                    _ => Reason::Io {
                        kind: IoKind::MessageTooLong,
                        code: None,
                    },
                };
                let to = (op & 0x80 != 0).then(|| peer(op));
                e.handle_send_error(now, to, reason);
            }
            5 => e.handle_command_result(now, last_command.clone(), Err(Reason::Unreachable)),
            6 => {
                let close_deadline = if closing(&e) { e.next_timeout() } else { None };
                now += Duration::from_millis(u64::from(next(&mut ops)) * 16);
                e.handle_timeout(now);
                if close_deadline.is_some_and(|deadline| now >= deadline)
                    && (e.reason() != Some(&Reason::TimedOut(Timeout::Close))
                        || e.queued_bytes() != 0)
                {
                    return Err("a close outlived its deadline".into());
                }
            }
            7 => e.handle_message(now, next(&mut ops)),
            8 => {
                for _ in 0..next(&mut ops) {
                    match e.poll_action() {
                        Some(Action::Send(t)) => {
                            if closes > 0 {
                                return Err("a send after the final Close".into());
                            }
                            let max = match t.to.or(e.peer()) {
                                Some(SocketAddr::V6(_)) => MAX_IPV6_PAYLOAD,
                                _ => MAX_IPV4_PAYLOAD,
                            };
                            if t.data.len() > max {
                                return Err(format!("send of {} bytes over {max}", t.data.len()));
                            }
                        }
                        Some(Action::Command(c)) => {
                            if closes > 0 {
                                return Err("a command after the final Close".into());
                            }
                            last_command = c;
                        }
                        Some(Action::Close) => closes += 1,
                        None => break,
                    }
                }
            }
            9 => match op % 3 {
                0 => e.close(now),
                1 => e.abort(now),
                _ => e.handle_error(now, Reason::Lost),
            },
            _ => now += Duration::from_millis(1),
        }
        if max_queued.is_some_and(|m| e.queued() > m)
            || max_bytes.is_some_and(|m| e.queued_bytes() > m)
        {
            return Err(format!(
                "queue over its limits: {} / {} bytes",
                e.queued(),
                e.queued_bytes()
            ));
        }
        match e.next_timeout() {
            Some(_) if e.is_ended() => {
                return Err("a deadline on an endpoint that has ended".into());
            }
            Some(deadline) if closing(&e) && deadline > close_bound(&e, now) => {
                return Err("a close deadline past close_timeout".into());
            }
            None if closing(&e) => return Err("a close with no deadline".into()),
            _ => {}
        }
        if closes > 1 {
            return Err("more than one final Close".into());
        }
    }
    e.close(now);
    while let Some(output) = e.poll_action() {
        if output == Action::Close {
            closes += 1;
        } else if closes > 0 {
            return Err("output after the final Close".into());
        }
    }
    if closes != 1 || !e.is_ended() || e.queued_bytes() != 0 {
        return Err(format!("{closes} final closes; closed {}", e.is_ended()));
    }
    let p = e.protocol();
    if p.starts > 1 || p.stops != p.starts || p.calls_before_start > 0 || p.calls_after_stop > 0 {
        return Err(format!(
            "lifecycle: {} starts, {} stops, {} calls before start, {} after stop",
            p.starts, p.stops, p.calls_before_start, p.calls_after_stop
        ));
    }
    Ok(())
}

/// Started, a close requested, `stop_protocol` not run yet.
fn closing<P: DatagramProtocol>(e: &Endpoint<P>) -> bool {
    e.local().is_some() && !e.wants_read() && !e.is_ended()
}

/// The latest a close requested by `now` may end: `close_timeout` (the default, always set
/// here) after it.
fn close_bound<P: DatagramProtocol>(e: &Endpoint<P>, now: Instant) -> Instant {
    now.saturating_add(e.config().close_timeout.unwrap_or(Duration::MAX))
}

fn peer(n: u8) -> SocketAddr {
    if n & 0x20 != 0 {
        SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1], 5000 + u16::from(n % 4)))
    } else {
        SocketAddr::from(([127, 0, 0, 1], 5000 + u16::from(n % 4)))
    }
}

/// A protocol steered by the bytes it receives and the messages it is posted.
#[derive(Default)]
struct Chaotic {
    starts: u32,
    stops: u32,
    calls_before_start: u32,
    calls_after_stop: u32,
}

impl Chaotic {
    fn called(&mut self) {
        self.calls_before_start += u32::from(self.starts == 0);
        self.calls_after_stop += u32::from(self.stops > 0);
    }

    fn act(&mut self, what: u8, tx: &mut DatagramTransport<'_>) {
        let _ = match what % 9 {
            0 => tx
                .send(Bytes::from(alloc::vec![what; usize::from(what) * 300]))
                .map_err(drop),
            1 => tx
                .send_to(
                    Bytes::from(alloc::vec![what; usize::from(what) * 40]),
                    peer(what),
                )
                .map_err(drop),
            2 => tx.connect(peer(what)).map_err(drop),
            3 => tx.disconnect().map_err(drop),
            4 => tx
                .join_group([239, 1, 1, 1].into(), Interface::Any)
                .map_err(drop),
            5 => tx.set_ttl(u32::from(what)).map_err(drop),
            6 => {
                tx.call_later(Duration::from_millis(u64::from(what)));
                Ok(())
            }
            7 => {
                tx.close();
                Ok(())
            }
            _ => tx.set_loopback(what & 1 == 1).map_err(drop),
        };
    }
}

impl DatagramProtocol for Chaotic {
    type Message = u8;

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.starts += 1;
        tx.call_later(Duration::from_millis(100));
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        _: SocketAddr,
        _: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        self.called();
        if let Some(&first) = data.first() {
            self.act(first.wrapping_add(data.len() as u8), tx);
        }
    }

    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(0, tx);
    }

    fn send_failed(&mut self, _: Option<SocketAddr>, _: &Reason, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(1, tx);
    }

    fn command_failed(&mut self, _: &Command, _: &Reason, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(2, tx);
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(1, tx);
    }

    fn message(&mut self, message: u8, tx: &mut DatagramTransport<'_>) {
        self.called();
        self.act(message, tx);
    }

    fn stop_protocol(&mut self, _: &Reason) {
        self.called();
        self.stops += 1;
    }
}
