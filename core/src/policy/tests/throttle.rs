//! Throttled and RateLimit (PO-3).

use alloc::sync::Arc;
use alloc::vec::Vec;

use bytes::BytesMut;

use super::{connect, flush, ms, Probe};
use crate::policy::{Budget, Rate, RateLimit, Throttled};
use crate::stream::{Protocol, Transport};
use crate::time::Instant;

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[test]
fn reads_over_budget_wait_for_the_refill_and_nothing_is_lost() {
    let rate = Rate::per_second(1_000).with_burst(100);
    let mut conn = connect(Throttled::new(Probe::default(), Some(rate), None));
    let input = pattern(1_000);
    conn.handle_data(ms(0), &input);
    let mut wakeups = 0;
    while let Some(at) = conn.next_timeout() {
        wakeups += 1;
        // Every refill is exactly one burst later: 100 bytes per 100 ms.
        assert_eq!(at, ms(100 * wakeups));
        conn.handle_timeout(at);
        let got = conn.protocol().inner().received.len() as u64;
        assert_eq!(got, (100 * (wakeups + 1)).min(1_000));
        assert!(wakeups < 50, "bounded");
    }
    assert_eq!(wakeups, 9);
    assert_eq!(conn.protocol().inner().received, input);
    assert!(conn.wants_read());
    assert_eq!(
        conn.stats().time_throttled,
        core::time::Duration::from_millis(900)
    );
}

#[test]
fn a_frame_longer_than_a_burst_still_completes() {
    /// Consumes only whole 250-byte records.
    #[derive(Default)]
    struct Records(usize);
    impl Protocol for Records {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
            while data.len() >= 250 {
                let _ = data.split_to(250);
                self.0 += 1;
            }
        }
    }
    let rate = Rate::per_second(1_000).with_burst(100);
    let mut conn = connect(Throttled::new(Records::default(), Some(rate), None));
    conn.handle_data(ms(0), &[0; 500]);
    let mut now = ms(0);
    while let Some(at) = conn.next_timeout() {
        now = at;
        conn.handle_timeout(at);
        assert!(now < ms(10_000), "bounded");
    }
    assert_eq!(conn.protocol().inner().0, 2);
    // The second record is charged 250 bytes: it cannot start before the first is paid for.
    assert!(now >= ms(300), "finished at {now:?}");
}

#[test]
fn inner_pause_survives_the_throttle_release() {
    /// Pauses reading after the first byte and never resumes.
    #[derive(Default)]
    struct Stubborn(usize);
    impl Protocol for Stubborn {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
            self.0 += data.len();
            data.clear();
            tx.pause_reading();
        }
    }
    let rate = Rate::per_second(1_000).with_burst(10);
    let mut conn = connect(Throttled::new(Stubborn::default(), Some(rate), None));
    conn.handle_data(ms(0), &[0; 30]);
    assert_eq!(conn.protocol().inner().0, 10);
    conn.handle_timeout(ms(10));
    // The throttle let go, but the protocol's own pause still holds.
    assert!(!conn.wants_read());
    assert_eq!(conn.protocol().inner().0, 10);
}

#[test]
fn one_shared_budget_limits_all_connections_together() {
    let shared = RateLimit::shared(Rate::per_second(1_000).with_burst(100));
    let mut a = connect(Throttled::with_budgets(
        Probe::default(),
        Some(shared.clone()),
        None,
    ));
    let mut b = connect(Throttled::with_budgets(
        Probe::default(),
        Some(shared.clone()),
        None,
    ));
    a.handle_data(ms(0), &[1; 1_000]);
    b.handle_data(ms(0), &[2; 1_000]);
    let mut now = Instant::ZERO;
    for _ in 0..10_000 {
        let next = [a.next_timeout(), b.next_timeout()]
            .into_iter()
            .flatten()
            .min();
        let Some(at) = next else { break };
        if at > ms(1_000) {
            break;
        }
        now = at;
        a.handle_timeout(now);
        b.handle_timeout(now);
    }
    let total = a.protocol().inner().received.len() + b.protocol().inner().received.len();
    // One second at 1,000 B/s plus the initial burst, whatever the split between the two.
    assert_eq!(total, 1_100, "at {now:?}");
    assert!(a.protocol().inner().received.len() >= 100);
    assert!(b.protocol().inner().received.len() >= 100);
}

/// Writes 100 bytes whenever it may produce, up to a total.
#[derive(Default)]
struct Producer {
    written: usize,
    paused: bool,
    pauses: usize,
}

impl Producer {
    fn produce(&mut self, tx: &mut Transport<'_>) {
        if !self.paused && self.written < 10_000 {
            let _ = tx.write_slice(&[7; 100]);
            self.written += 100;
        }
    }
}

impl Protocol for Producer {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.produce(tx);
    }
    fn data_received(&mut self, d: &mut BytesMut, _: &mut Transport<'_>) {
        d.clear();
    }
    fn message(&mut self, _: (), tx: &mut Transport<'_>) {
        self.produce(tx);
    }
    fn pause_producing(&mut self, _: &mut Transport<'_>) {
        self.paused = true;
        self.pauses += 1;
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_>) {
        self.paused = false;
        self.produce(tx);
    }
}

#[test]
fn writes_over_budget_pause_the_producer_until_the_debt_is_paid() {
    let rate = Rate::per_second(1_000).with_burst(100);
    let mut conn = connect(Throttled::new(Producer::default(), None, Some(rate)));
    // The first 100 bytes used the burst: paused at once, resumed when 1 byte fits again.
    assert!(conn.protocol().is_write_throttled());
    assert_eq!(conn.protocol().inner().pauses, 1);
    assert_eq!(conn.next_timeout(), Some(ms(1)));
    let mut now = ms(0);
    let mut sent = flush(&mut conn, now).len();
    while let Some(at) = conn.next_timeout() {
        if at > ms(1_000) {
            break;
        }
        now = at;
        conn.handle_timeout(now);
        // Poking it meanwhile does not get past the pause.
        conn.handle_message(now, ());
        sent += flush(&mut conn, now).len();
    }
    // 1,000 B/s for one second on top of the 100-byte burst.
    assert_eq!(sent, 1_100, "at {now:?}");
    assert!(conn.stats().time_throttled > core::time::Duration::ZERO);
}

#[test]
fn transport_backpressure_and_throttle_pause_the_producer_once() {
    let rate = Rate::per_second(1_000).with_burst(100);
    let throttled = Throttled::new(Probe::default(), None, Some(rate));
    let mut conn = crate::stream::Connection::new(
        throttled,
        crate::stream::Config {
            high_water: 50,
            low_water: 0,
            ..Default::default()
        },
    );
    let a = super::addr("127.0.0.1:1");
    conn.handle_connected(ms(0), a, a);
    conn.handle_message(ms(0), &[1; 300]); // over the high mark and over budget
    assert_eq!(
        conn.protocol().inner().pauses,
        1,
        "one pause for two reasons"
    );
    conn.handle_written(ms(0), 300); // transport drained: still throttled
    assert_eq!(conn.protocol().inner().resumes, 0);
    let at = conn.next_timeout().expect("throttle timer");
    assert_eq!(at, ms(201));
    conn.handle_timeout(at);
    assert_eq!(conn.protocol().inner().resumes, 1);
}

#[test]
fn rate_limit_never_overflows_on_hostile_numbers() {
    let limit = RateLimit::new(Rate::per_second(u64::MAX).with_burst(u64::MAX));
    limit.charge(Instant::MAX, u64::MAX);
    let _ = limit.available(Instant::MAX);
    let _ = limit.ready_at(Instant::ZERO, u64::MAX);
    let slow = Arc::new(RateLimit::new(Rate::per_second(0)));
    slow.charge(Instant::ZERO, u64::MAX);
    assert_eq!(slow.available(Instant::from_secs(1)), 0);
}

/// However much of the burst is spent first, and however long after that it is drawn on
/// again: taken greedily (all that `available` allows, at each instant `ready_at` names), a
/// bucket never lets through more than one burst plus the rate times the elapsed time, also for
/// rates and bursts that do not divide into whole nanoseconds (PO-3). Before the burst was
/// counted in byte-nanoseconds it was rounded up to whole nanoseconds, and a byte could pass
/// early (at 398 B/s with a 233-byte burst, after 199 bytes at 0 and the rest from 51 ms on).
#[test]
fn rate_limit_never_lets_through_more_than_a_burst_plus_the_rate() {
    for (rate, burst) in [(398u64, 233u64), (3, 2), (997, 13), (1_000_003, 77)] {
        for first in [1, burst / 2, burst * 6 / 7, burst] {
            for gap_ms in [0u64, 1, 51, 77, 250] {
                let limit = RateLimit::new(Rate::per_second(rate).with_burst(burst));
                limit.charge(Instant::ZERO, first);
                let mut total = u128::from(first);
                let mut now = Instant::from_millis(gap_ms);
                for _ in 0..500 {
                    let n = limit.available(now);
                    limit.charge(now, n);
                    total += u128::from(n);
                    let elapsed = u128::from(now.as_nanos());
                    let bound = u128::from(burst) + u128::from(rate) * elapsed / 1_000_000_000;
                    assert!(
                        total <= bound,
                        "{rate} B/s, burst {burst}, {first} first, gap {gap_ms} ms: \
                         {total} through at {now:?}, bound {bound}"
                    );
                    now = limit.ready_at(now, 1);
                }
            }
        }
    }
}

mod props {
    use alloc::vec::Vec;

    use proptest::prelude::*;

    use super::super::{connect, Probe};
    use crate::policy::{Rate, Throttled};
    use crate::time::Instant;

    proptest! {
        /// Whatever the chunking and arrival times: every byte reaches the protocol, in order,
        /// and by any instant no more than one burst plus the rate times the elapsed time has
        /// been let through (PO-3).
        #[test]
        fn reads_never_exceed_the_rate_and_nothing_is_lost(
            chunks in proptest::collection::vec((1usize..400, 0u64..300), 1..30),
            rate in 100u64..5_000,
            burst in 1u64..500,
        ) {
            let limit = Rate::per_second(rate).with_burst(burst);
            let mut conn = connect(Throttled::new(Probe::default(), Some(limit), None));
            let mut sent = Vec::new();
            let mut now = Instant::ZERO;
            let bound = |at: Instant| burst + (u128::from(rate) * at.as_nanos() as u128 / 1_000_000_000) as u64;
            for (i, (len, gap_ms)) in chunks.iter().enumerate() {
                let target = now + core::time::Duration::from_millis(*gap_ms);
                // Let time pass, firing what is due on the way.
                while let Some(at) = conn.next_timeout().filter(|at| *at <= target) {
                    now = at;
                    conn.handle_timeout(now);
                    let got = conn.protocol().inner().received.len() as u64;
                    prop_assert!(got <= bound(now), "{got} > {} at {now:?}", bound(now));
                }
                now = target;
                conn.handle_timeout(now);
                if conn.wants_read() {
                    let chunk: Vec<u8> = (0..*len).map(|j| (i * 31 + j) as u8).collect();
                    conn.handle_data(now, &chunk);
                    sent.extend_from_slice(&chunk);
                }
                let got = conn.protocol().inner().received.len() as u64;
                prop_assert!(got <= bound(now), "{got} > {} at {now:?}", bound(now));
            }
            for _ in 0..100_000 {
                let Some(at) = conn.next_timeout() else { break };
                now = at;
                conn.handle_timeout(now);
                let got = conn.protocol().inner().received.len() as u64;
                prop_assert!(got <= bound(now), "{got} > {} at {now:?}", bound(now));
            }
            prop_assert_eq!(&conn.protocol().inner().received, &sent);
        }
    }
}
