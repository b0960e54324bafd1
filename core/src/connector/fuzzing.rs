//! The `Connector` and `Backoff` fuzz targets' checks (feature `testing`), kept in core so that
//! a plain `cargo test` replays the committed corpora through the code `cargo fuzz` runs.

use alloc::format;
use alloc::string::String;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::BytesMut;

use crate::connector::{
    Action, Backoff, BackoffConfig, ClientFactory, Config, Connector, Retry, State,
};
use crate::reason::Reason;
use crate::stream::{Protocol, Transport};
use crate::time::Instant;

/// Feeds an arbitrary [`BackoffConfig`] (from `data[0..16]`) and an arbitrary mix of
/// `next_delay`/`reset` calls (the rest): every delay is within `[0, max]`, `max_retries` is
/// honoured exactly, and the first delay after a reset equals `initial` when there is no jitter.
pub fn check_backoff(data: &[u8]) -> Result<(), String> {
    let Some((head, ops)) = data.split_at_checked(16) else {
        return Ok(());
    };
    let word =
        |i: usize| u64::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3], 0, 0, 0, 0]);
    let max = Duration::from_millis(word(0) % 10_000_000);
    let config = BackoffConfig {
        initial: Duration::from_millis(word(4) % 10_000_000),
        factor: f64::from(head[8]) / 16.0,
        max,
        jitter: if head[9] % 2 == 0 {
            0.0
        } else {
            f64::from(head[9]) / 64.0
        },
        max_retries: (head[10] % 3 != 0).then_some(u32::from(head[11] % 8)),
        seed: word(12),
    };
    let mut backoff = Backoff::new(config.clone());
    let mut since_reset = 0u32;
    for &op in ops {
        if op % 7 == 0 {
            backoff.reset();
            since_reset = 0;
            continue;
        }
        match backoff.next_delay() {
            Some(delay) => {
                since_reset += 1;
                if delay > max {
                    return Err(format!("delay {delay:?} over max {max:?}"));
                }
                if config.max_retries.is_some_and(|m| since_reset > m) {
                    return Err(format!(
                        "retry {since_reset} past max_retries {:?}",
                        config.max_retries
                    ));
                }
                let want = config.initial.min(max);
                let off = if delay > want {
                    delay - want
                } else {
                    want - delay
                };
                if since_reset == 1 && config.jitter == 0.0 && off > Duration::from_micros(1) {
                    return Err(format!("first delay {delay:?}, want {want:?}"));
                }
            }
            None if config.max_retries.is_some_and(|m| since_reset >= m) => {}
            None => {
                return Err(format!(
                    "gave up after {since_reset} with {:?}",
                    config.max_retries
                ))
            }
        }
    }
    Ok(())
}

/// Drives a [`Connector`] with an arbitrary sequence of reports (some of them out of place, as
/// a buggy or racing runtime might send): it dials only when connecting, never dials once
/// stopped, asks to be woken only when waiting or connecting, and the factory's answers are the
/// only source of retries.
pub fn check_connector(data: &[u8]) -> Result<(), String> {
    let Some((&answers, ops)) = data.split_first() else {
        return Ok(());
    };
    let config = Config {
        connect_timeout: (answers & 1 == 1).then(|| Duration::from_millis(500)),
        backoff: BackoffConfig {
            max_retries: Some(u32::from(answers >> 5)),
            ..BackoffConfig::default()
        },
    };
    let mut connector = Connector::new(Script { answers, built: 0 }, config);
    let peer = SocketAddr::from(([127, 0, 0, 1], 80));
    let mut now = Instant::ZERO;
    let mut dials = 0u64;
    for &op in ops {
        now += Duration::from_millis(u64::from(op >> 3) * 50);
        let was_stopped = connector.is_ended();
        match op % 8 {
            0 => connector.start(now),
            1 => {
                connector.handle_connected(now, peer);
                let _ = connector.poll_protocol();
            }
            2 => connector.handle_connect_failed(now, Reason::Refused),
            3 => connector.handle_connection_lost(now, Reason::Reset),
            4 | 5 => connector.handle_timeout(now),
            6 => connector.handle_timeout(connector.next_timeout().unwrap_or(now).max(now)),
            _ => connector.stop_trying(),
        }
        if let Some(Action::Dial) = connector.poll_action() {
            dials += 1;
            if was_stopped {
                return Err("dialled after stopping".into());
            }
            if !matches!(connector.state(), State::Connecting { .. }) {
                return Err(format!("Dial in state {:?}", connector.state()));
            }
        }
        let wakes = connector.next_timeout().is_some();
        let may_wake = matches!(
            connector.state(),
            State::Waiting { .. } | State::Connecting { deadline: Some(_) }
        );
        if wakes != may_wake {
            return Err(format!(
                "next_timeout {:?} in {:?}",
                connector.next_timeout(),
                connector.state()
            ));
        }
        if connector.attempts() < dials {
            return Err(format!(
                "{dials} dials but {} attempts",
                connector.attempts()
            ));
        }
    }
    Ok(())
}

/// A factory whose retry answers come from the input's first byte.
struct Script {
    answers: u8,
    built: u32,
}

impl Script {
    fn answer(&mut self) -> Retry {
        self.answers = self.answers.rotate_left(2);
        match self.answers % 4 {
            0 => Retry::Stop,
            1 => Retry::Backoff,
            2 => Retry::After(Duration::from_millis(u64::from(self.answers))),
            _ => Retry::After(Duration::ZERO),
        }
    }
}

/// The protocol a [`Script`] builds; the check never runs it.
struct Idle;

impl Protocol for Idle {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

impl ClientFactory for Script {
    type Protocol = Idle;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<Idle> {
        self.built += 1;
        (self.answers & 0x10 == 0 || self.built % 2 == 0).then_some(Idle)
    }
    fn connection_failed(&mut self, _: &Reason) -> Retry {
        self.answer()
    }
    fn connection_lost(&mut self, _: &Reason) -> Retry {
        self.answer()
    }
}
