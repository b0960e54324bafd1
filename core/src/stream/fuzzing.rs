//! The `Connection` fuzz target's check (feature `testing`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! `data[0..4]` choose the limits (high water, cap, receive limit, close timeout); the rest is a
//! sequence of operations, one opcode byte each plus operands: data in arbitrary chunks, read
//! close, partial writes, errors, timeouts, messages, local close and abort, all around a
//! protocol that itself writes, closes, aborts, half-closes, pauses and sets timers as the bytes
//! it receives tell it to.
//!
//! Checked after every operation: `connection_made` once and first, `connection_lost` at most
//! once and last (a graceful close may linger after it, reading and discarding, but never
//! writing), exactly one terminal action once closed and none before, no shutdown after
//! the terminal action, nothing queued or written after the end, the write queue within its hard
//! cap, the receive buffer within its limit plus one read, and no deadline on a closed
//! connection.

use alloc::format;
use alloc::string::String;
use core::time::Duration;

use bytes::BytesMut;

use crate::reason::Reason;
use crate::stream::{Action, Config, Connection, Protocol, Transport};
use crate::time::Instant;
use crate::timer::TimerId;

/// Largest single read the check feeds (what a runtime reads at most per call, scaled down).
const MAX_CHUNK: usize = 64;

/// Runs the operations encoded in `data` against a [`Connection`]; `Err` names the first
/// violated invariant.
pub fn check_connection(data: &[u8]) -> Result<(), String> {
    let Some((head, mut ops)) = data.split_at_checked(4) else {
        return Ok(());
    };
    let config = Config {
        high_water: usize::from(head[0]) * 4,
        low_water: usize::from(head[0]),
        max_queued: Some(64 + usize::from(head[1]) * 8),
        max_receive_buffer: Some(16 + usize::from(head[2]) * 4),
        close_timeout: (head[3] % 4 != 0).then(|| Duration::from_millis(u64::from(head[3]))),
        close_linger: (head[3] & 0x80 != 0)
            .then(|| Duration::from_millis(u64::from(head[3] & 0x1f))),
    };
    let cap = config.max_queued.unwrap_or(usize::MAX);
    let receive_bound = config.max_receive_buffer.unwrap_or(usize::MAX) + MAX_CHUNK;
    let addr = core::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let mut conn = Connection::new(Chaotic::default(), config);
    let mut now = Instant::ZERO;
    conn.handle_connected(now, addr, addr);
    let mut terminal = 0;

    while let Some((&op, rest)) = ops.split_first() {
        ops = rest;
        let operand = |ops: &mut &[u8]| -> u8 {
            let (first, rest) = ops.split_first().map_or((0, &[][..]), |(f, r)| (*f, r));
            *ops = rest;
            first
        };
        now += Duration::from_millis(1);
        match op % 9 {
            0 | 1 => {
                let len = usize::from(operand(&mut ops)) % (MAX_CHUNK + 1);
                let (chunk, rest) = ops.split_at(len.min(ops.len()));
                ops = rest;
                if op % 9 == 0 {
                    conn.handle_data(now, chunk);
                } else {
                    // In place, as runtime-std reads; a failing read may still have appended.
                    let _ = conn.handle_data_with(now, |buf| {
                        buf.extend_from_slice(chunk);
                        Err::<(), ()>(())
                    });
                }
            }
            2 => conn.handle_read_closed(now),
            3 => {
                let n = usize::from(operand(&mut ops)) * 2;
                let available: usize = conn.poll_write().map(<[u8]>::len).sum();
                conn.handle_written(now, n.min(available));
            }
            4 => conn.handle_error(now, Reason::Reset),
            5 => {
                now += Duration::from_millis(u64::from(operand(&mut ops)) * 4);
                conn.handle_timeout(now);
            }
            6 => conn.handle_message(now, operand(&mut ops)),
            7 => conn.close(now),
            _ => conn.abort(now),
        }
        while let Some(action) = conn.poll_action() {
            match action {
                Action::Close | Action::Abort => terminal += 1,
                Action::ShutdownWrite if terminal > 0 => {
                    return Err("ShutdownWrite after the terminal action".into())
                }
                Action::ShutdownWrite => {}
            }
        }
        let p = conn.protocol();
        if p.made != 1 || p.calls_before_made > 0 {
            return Err(format!(
                "connection_made ran {} times, first? {}",
                p.made,
                p.calls_before_made == 0
            ));
        }
        if p.lost > 1 || p.calls_after_lost > 0 {
            return Err(format!(
                "connection_lost {} times, {} calls after it",
                p.lost, p.calls_after_lost
            ));
        }
        let lost_ok = (p.lost == 1) == conn.is_ended() && (!conn.is_closed() || conn.is_ended());
        if !lost_ok || (terminal == 1) != conn.is_closed() || terminal > 1 {
            return Err(format!(
                "lost {}, is_lost {}, closed {}, terminal actions {terminal}",
                p.lost,
                conn.is_ended(),
                conn.is_closed()
            ));
        }
        if conn.is_ended() && conn.wants_write() {
            return Err("bytes queued after connection_lost".into());
        }
        if conn.queued_bytes() > cap {
            return Err(format!(
                "write queue {} over its cap {cap}",
                conn.queued_bytes()
            ));
        }
        if conn.buffered_bytes() > receive_bound {
            return Err(format!(
                "receive buffer {} over {receive_bound}",
                conn.buffered_bytes()
            ));
        }
        if conn.is_closed()
            && (conn.wants_write() || conn.wants_read() || conn.next_timeout().is_some())
        {
            return Err("a closed connection still wants I/O or time".into());
        }
    }
    Ok(())
}

/// A protocol that does a bit of everything, steered by the bytes it receives.
#[derive(Default)]
pub(crate) struct Chaotic {
    made: u32,
    lost: u32,
    calls_before_made: u32,
    calls_after_lost: u32,
}

impl Chaotic {
    fn called(&mut self) {
        self.calls_before_made += u32::from(self.made == 0);
        self.calls_after_lost += u32::from(self.lost > 0);
    }
}

impl Protocol for Chaotic {
    type Message = u8;

    fn connection_made(&mut self, tx: &mut Transport<'_, u8>) {
        self.made += 1;
        tx.call_later(Duration::from_millis(50));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, u8>) {
        self.called();
        let Some(&first) = data.first() else { return };
        match first % 10 {
            0 => tx.lose_connection(),
            1 => tx.abort_connection(),
            2 => tx.shutdown_write(),
            3 => tx.pause_reading(),
            4 => {
                tx.call_later(Duration::from_millis(u64::from(first)));
            }
            5 => return, // leave the bytes buffered
            6 => {
                // Consume half: partial consumption must be kept for the next read.
                let half = data.len() / 2;
                let _ = tx.write(data.split_to(half).freeze());
                return;
            }
            _ => {}
        }
        let _ = tx.write(data.split().freeze());
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, u8>) {
        self.called();
        tx.lose_connection();
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_, u8>) {
        self.called();
        let _ = tx.write_slice(b"tick");
        tx.call_later(Duration::from_millis(30));
    }

    fn message(&mut self, m: u8, tx: &mut Transport<'_, u8>) {
        self.called();
        match m % 5 {
            0 => tx.resume_reading(),
            1 => tx.abort_connection(),
            2 => tx.lose_connection(),
            _ => {
                let _ = tx.write_slice(&[m; 40]);
            }
        }
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, u8>) {
        self.called();
        tx.pause_reading();
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, u8>) {
        self.called();
        tx.resume_reading();
    }

    fn connection_lost(&mut self, _: &Reason) {
        self.called();
        self.lost += 1;
    }
}
