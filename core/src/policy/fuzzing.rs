//! The `policy` fuzz target's check (feature `fuzz`), kept in core so that a plain
//! `cargo test` replays the committed corpus through exactly the code `cargo fuzz` runs.
//!
//! A user of the public fuzz driver, [`StreamCheck`]: `data[0..4]` choose the read rate, the
//! burst, the write rate and the idle period; the rest is the driver's schedule, against an
//! idle timeout around a read- and write-throttled protocol that records what it is given. A
//! `Spy` outside the policies watches every callback with the connection's clock and checks,
//! besides the driver's own invariants: the protocol has received a prefix of the bytes the
//! connection was given, in order; never more than one burst plus the read rate times the
//! elapsed time; the idle timeout fires no earlier than one period after the last traffic either
//! way (bytes handed in, or bytes queued by a callback, as the timeout counts them).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::time::Duration;

use bytes::BytesMut;

use crate::policy::{IdleTimeout, IdleTimer, Rate, Throttled};
use crate::reason::{Reason, Timeout};
use crate::stream::{Protocol, Transport};
use crate::testing::StreamCheck;
use crate::time::Instant;
use crate::timer::TimerId;

/// Runs the schedule encoded in `data`; `Err` names the first violated invariant and the
/// operations that led to it.
pub fn check_policies(data: &[u8]) -> Result<(), String> {
    let Some((head, schedule)) = data.split_at_checked(4) else {
        return Ok(());
    };
    let read_rate = 1 + u64::from(head[0]) * 16;
    let burst = 1 + u64::from(head[1]);
    let write_rate = 1 + u64::from(head[2]) * 16;
    let period = (head[3] != 0).then(|| Duration::from_millis(u64::from(head[3]) * 8));
    StreamCheck::protocol(move || {
        let throttled = Throttled::new(
            Recorder::default(),
            Some(Rate::per_second(read_rate).with_burst(burst)),
            Some(Rate::per_second(write_rate).with_burst(burst)),
        );
        // The default close, plus a note of when it happened for the spy's check.
        let hook = |p: &mut Throttled<Recorder>, _: &mut IdleTimer, tx: &mut Transport<'_, u8>| {
            p.inner_mut().idle_fired = Some(tx.now());
            tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
        };
        Spy {
            inner: IdleTimeout::with_hook(throttled, period, hook),
            read_rate,
            burst,
            period,
            given: Vec::new(),
            left_unconsumed: 0,
            last_traffic: None,
            breach: None,
        }
    })
    .messages(|u| u.arbitrary::<u8>())
    // Its writes on messages ignore refusals on purpose: the policies are under test.
    .allow_lost_writes()
    .invariant(|spy| spy.breach.clone().map_or(Ok(()), Err))
    .fuzz_checked(schedule)
    .map_err(|violation| violation.to_string())
}

/// The policies under check, watched from outside with the connection's clock.
struct Spy<H> {
    inner: IdleTimeout<Throttled<Recorder>, H>,
    read_rate: u64,
    burst: u64,
    period: Option<Duration>,
    /// Every byte the connection handed in, in order.
    given: Vec<u8>,
    /// What the policies left in the buffer at the end of the last `data_received`.
    left_unconsumed: usize,
    /// The last instant bytes went either way, as the idle timeout counts them.
    last_traffic: Option<Instant>,
    breach: Option<String>,
}

impl<H> Spy<H>
where
    H: crate::policy::OnIdle<Throttled<Recorder>>,
{
    fn recorder(&self) -> &Recorder {
        self.inner.inner().inner()
    }

    /// Runs one callback of the policies and checks what it did.
    fn watch(
        &mut self,
        tx: &mut Transport<'_, u8>,
        handed_in: bool,
        call: impl FnOnce(&mut IdleTimeout<Throttled<Recorder>, H>, &mut Transport<'_, u8>),
    ) {
        let now = tx.now();
        let queued = tx.queued_bytes();
        let fired_before = self.recorder().idle_fired;
        call(&mut self.inner, tx);
        if let (None, Some(fired), Some(period), Some(last)) = (
            fired_before,
            self.recorder().idle_fired,
            self.period,
            self.last_traffic,
        ) {
            if fired < last + period {
                self.breach(format!("idle close at {fired:?}, traffic at {last:?}"));
            }
        }
        if handed_in || tx.queued_bytes() > queued {
            self.last_traffic = Some(now);
        }
        let received = self.recorder().received.len();
        if !self.given.starts_with(&self.recorder().received) {
            self.breach("the protocol got bytes it was not given, or out of order".into());
        }
        let allowed = self.burst
            + (u128::from(self.read_rate) * u128::from(now.as_nanos()) / 1_000_000_000) as u64;
        if received as u64 > allowed {
            self.breach(format!(
                "{received} bytes through by {now:?}, over the {allowed} the rate allows"
            ));
        }
    }

    fn breach(&mut self, what: String) {
        self.breach.get_or_insert(what);
    }
}

impl<H> Protocol for Spy<H>
where
    H: crate::policy::OnIdle<Throttled<Recorder>>,
{
    type Message = u8;

    fn connection_made(&mut self, tx: &mut Transport<'_, u8>) {
        self.last_traffic = Some(tx.now());
        self.watch(tx, false, |p, tx| p.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, u8>) {
        // The buffer is what was left last time followed by the new bytes.
        self.given
            .extend_from_slice(&data[self.left_unconsumed.min(data.len())..]);
        let handed_in = !data.is_empty();
        self.watch(tx, handed_in, |p, tx| p.data_received(data, tx));
        self.left_unconsumed = data.len();
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.timer_fired(timer, tx));
    }

    fn message(&mut self, m: u8, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.message(m, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.pause_producing(tx));
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.resume_producing(tx));
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, u8>) {
        self.watch(tx, false, |p, tx| p.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.inner.connection_lost(reason);
    }
}

/// Records what reaches it; writes `n` bytes when told to by a message.
#[derive(Default)]
struct Recorder {
    received: Vec<u8>,
    idle_fired: Option<Instant>,
}

impl Protocol for Recorder {
    type Message = u8;
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, u8>) {
        // Consume a varying share, as framers do, so the rest is offered again later.
        let take = match data.first() {
            Some(b) if b % 3 == 0 => data.len() / 2,
            _ => data.len(),
        };
        self.received.extend_from_slice(&data.split_to(take));
    }
    fn message(&mut self, n: u8, tx: &mut Transport<'_, u8>) {
        let _ = tx.write(alloc::vec![b'w'; usize::from(n)]);
    }
}
