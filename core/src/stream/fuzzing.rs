//! The `connection` fuzz target's check (feature `fuzz`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! It is a user of the public fuzz driver, [`StreamCheck`]: `data[0..4]` choose the limits
//! (high water, cap, receive limit, close timeout and linger), the rest is the driver's
//! schedule (peers connecting, reads split anywhere, partial and stalled writes, EOF, resets,
//! time, messages, closes and aborts through handles) around [`Chaotic`], a protocol that
//! itself writes, closes, aborts, half-closes, pauses and sets timers as the bytes it receives
//! tell it to. Every invariant is the driver's (see [`StreamCheck`]).

use alloc::string::{String, ToString};
use core::time::Duration;

use bytes::BytesMut;

use crate::reason::Reason;
use crate::stream::{Config, Protocol, Transport};
use crate::testing::StreamCheck;
use crate::timer::TimerId;

/// Runs the schedule encoded in `data` against connections of [`Chaotic`]; `Err` names the
/// first violated invariant and the operations that led to it.
pub fn check_connection(data: &[u8]) -> Result<(), String> {
    let Some((head, schedule)) = data.split_at_checked(4) else {
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
    StreamCheck::protocol(Chaotic::default)
        .config(config)
        .messages(|u| u.arbitrary::<u8>())
        // It writes after closing and past the cap on purpose: the refusals are under test.
        .allow_lost_writes()
        .fuzz_checked(schedule)
        .map_err(|violation| violation.to_string())
}

/// A protocol that does a bit of everything, steered by the bytes it receives: the
/// connection's test protocol in the `connection` fuzz target.
#[derive(Default)]
pub struct Chaotic;

impl Protocol for Chaotic {
    type Message = u8;

    fn connection_made(&mut self, tx: &mut Transport<'_, u8>) {
        tx.call_later(Duration::from_millis(50));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, u8>) {
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
        tx.lose_connection();
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_, u8>) {
        let _ = tx.write_slice(b"tick");
        tx.call_later(Duration::from_millis(30));
    }

    fn message(&mut self, m: u8, tx: &mut Transport<'_, u8>) {
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
        tx.pause_reading();
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, u8>) {
        tx.resume_reading();
    }

    fn connection_lost(&mut self, _: &Reason) {}
}
