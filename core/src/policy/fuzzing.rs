//! The `policy` fuzz target's check (feature `testing`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! `data[0..4]` choose the read rate, the burst, the write rate and the idle period; the rest
//! is a sequence of operations (data in arbitrary chunks, partial writes, time passing, writes
//! by the protocol, end of stream, errors, local close and abort) against an idle timeout
//! around a read- and write-throttled protocol that records what it is given.
//!
//! Checked after every operation: the protocol has received a prefix of the bytes sent, in
//! order; never more than one burst plus the read rate times the elapsed time; `connection_lost`
//! at most once, and nothing after it; a closed connection wants neither I/O nor time; the idle
//! timeout fires no earlier than one period after the last traffic either way.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::BytesMut;

use crate::policy::{IdleTimeout, IdleTimer, Rate, Throttled};
use crate::reason::{Reason, Timeout};
use crate::stream::{Config, Connection, Protocol, Transport};
use crate::time::Instant;

/// Largest single read the check feeds.
const MAX_CHUNK: usize = 64;

/// Runs the operations encoded in `data`; `Err` names the first violated invariant.
pub fn check_policies(data: &[u8]) -> Result<(), String> {
    let Some((head, mut ops)) = data.split_at_checked(4) else {
        return Ok(());
    };
    let read_rate = 1 + u64::from(head[0]) * 16;
    let burst = 1 + u64::from(head[1]);
    let write_rate = Rate::per_second(1 + u64::from(head[2]) * 16).with_burst(burst);
    let period = (head[3] != 0).then(|| Duration::from_millis(u64::from(head[3]) * 8));
    let throttled = Throttled::new(
        Recorder::default(),
        Some(Rate::per_second(read_rate).with_burst(burst)),
        Some(write_rate),
    );
    // The default close, plus a note of when it happened for the check below.
    let hook = |p: &mut Throttled<Recorder>, _: &mut IdleTimer, tx: &mut Transport<'_, u8>| {
        p.inner_mut().idle_fired = Some(tx.now());
        tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
    };
    let idle = IdleTimeout::with_hook(throttled, period, hook);
    let mut conn = Connection::new(idle, Config::default());
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let mut now = Instant::ZERO;
    conn.handle_connected(now, addr, addr);
    let mut sent = Vec::new();
    // The last instant bytes went either way, as the idle timer sees it.
    let mut last_traffic = now;

    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let operand = |ops: &mut &[u8]| -> u8 {
            let (first, rest) = ops.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
            *ops = rest;
            first
        };
        let mut received_before = conn.protocol().inner().inner().received.len();
        let mut queued_before = conn.queued_bytes();
        match op % 8 {
            0 | 1 => {
                let len = usize::from(operand(&mut ops)) % (MAX_CHUNK + 1);
                let (chunk, rest) = ops.split_at(len.min(ops.len()));
                ops = rest;
                if conn.wants_read() {
                    sent.extend_from_slice(chunk);
                    conn.handle_data(now, chunk);
                }
            }
            2 => {
                let n = usize::from(operand(&mut ops)) * 2;
                let available: usize = conn.poll_write().map(<[u8]>::len).sum();
                conn.handle_written(now, n.min(available));
            }
            3 => {
                now += Duration::from_millis(u64::from(operand(&mut ops)) * 4);
                // Fire whatever fell due on the way, in order, as a runtime would, dating the
                // traffic each wake-up causes and checking an idle close against the traffic
                // before it.
                let due = |conn: &Connection<_>| conn.next_timeout().filter(|at| *at <= now);
                while let Some(at) = due(&conn).or(Some(now)) {
                    let received = conn.protocol().inner().inner().received.len();
                    let queued = conn.queued_bytes();
                    let fired_before = conn.protocol().inner().inner().idle_fired;
                    conn.handle_timeout(at);
                    let recorder = conn.protocol().inner().inner();
                    if let (None, Some(fired), Some(period)) =
                        (fired_before, recorder.idle_fired, period)
                    {
                        if fired < last_traffic + period {
                            return Err(format!(
                                "idle close at {fired:?}, traffic at {last_traffic:?}"
                            ));
                        }
                    }
                    if recorder.received.len() > received || conn.queued_bytes() > queued {
                        last_traffic = at;
                    }
                    if at == now {
                        break;
                    }
                }
                received_before = conn.protocol().inner().inner().received.len();
                queued_before = conn.queued_bytes();
            }
            4 => conn.handle_message(now, operand(&mut ops)),
            5 => conn.handle_read_closed(now),
            6 => conn.close(now),
            _ => {
                if operand(&mut ops) % 2 == 0 {
                    conn.abort(now);
                } else {
                    conn.handle_error(now, Reason::Reset);
                }
            }
        }
        let recorder = conn.protocol().inner().inner();
        if recorder.received.len() > received_before || conn.queued_bytes() > queued_before {
            last_traffic = now;
        }
        if !sent.starts_with(&recorder.received) {
            return Err("the protocol got bytes that were not sent, or out of order".into());
        }
        let allowed =
            burst + (u128::from(read_rate) * u128::from(now.as_nanos()) / 1_000_000_000) as u64;
        if recorder.received.len() as u64 > allowed {
            return Err(format!(
                "{} bytes through by {now:?}, over the {allowed} the rate allows",
                recorder.received.len()
            ));
        }
        if recorder.lost > 1 || recorder.calls_after_lost > 0 {
            return Err(format!(
                "connection_lost {} times, {} calls after it",
                recorder.lost, recorder.calls_after_lost
            ));
        }
        if conn.is_closed() && (conn.wants_read() || conn.next_timeout().is_some()) {
            return Err("a closed connection still wants input or time".into());
        }
    }
    Ok(())
}

/// Records what reaches it; writes `n` bytes when told to by a message.
#[derive(Default)]
struct Recorder {
    received: Vec<u8>,
    idle_fired: Option<Instant>,
    lost: u32,
    calls_after_lost: u32,
}

impl Protocol for Recorder {
    type Message = u8;
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, u8>) {
        self.calls_after_lost += self.lost;
        // Consume a varying share, as framers do, so the rest is offered again later.
        let take = match data.first() {
            Some(b) if b % 3 == 0 => data.len() / 2,
            _ => data.len(),
        };
        self.received.extend_from_slice(&data.split_to(take));
    }
    fn message(&mut self, n: u8, tx: &mut Transport<'_, u8>) {
        self.calls_after_lost += self.lost;
        let _ = tx.write(alloc::vec![b'w'; usize::from(n)]);
    }
    fn connection_lost(&mut self, _: &Reason) {
        self.lost += 1;
    }
}
