//! Byte-rate budgets: a lock-free token bucket fed `now`, shareable between connections.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::time::Instant;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A byte rate and the burst allowed on top of it.
///
/// ```
/// use loomwork::policy::Rate;
/// let rate = Rate::per_second(1_000_000);
/// assert_eq!(rate.burst, 100_000); // a tenth of a second by default
/// let rate = rate.with_burst(4096);
/// assert_eq!((rate.bytes_per_second, rate.burst), (1_000_000, 4096));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    /// Sustained bytes per second (at least 1).
    pub bytes_per_second: u64,
    /// Bytes that may pass at once after a quiet spell (at least 1).
    pub burst: u64,
}

impl Rate {
    /// `bytes_per_second`, with a burst of a tenth of a second's worth.
    ///
    /// Twisted measures over whole seconds (DF-17), which lets a full second's worth through
    /// at once; a tenth keeps the rate steady at any time scale a person can see.
    pub const fn per_second(bytes_per_second: u64) -> Self {
        let bytes_per_second = if bytes_per_second == 0 {
            1
        } else {
            bytes_per_second
        };
        let burst = bytes_per_second / 10;
        Rate {
            bytes_per_second,
            burst: if burst == 0 { 1 } else { burst },
        }
    }

    /// The same rate with another burst.
    pub const fn with_burst(self, burst: u64) -> Self {
        Rate {
            burst: if burst == 0 { 1 } else { burst },
            ..self
        }
    }
}

/// A source of byte budget: what a [`Throttled`](crate::policy::Throttled) connection asks
/// before letting bytes through.
///
/// Methods take `&self` so one budget can be shared by every connection of a server
/// (`Arc<RateLimit>`); an owned `RateLimit` is a per-connection budget.
pub trait Budget {
    /// Bytes that may pass at `now` without exceeding the rate.
    fn available(&self, now: Instant) -> u64;
    /// Records that `n` bytes passed at `now`. May overdraw: the debt delays what follows.
    fn charge(&self, now: Instant, n: u64);
    /// The earliest instant, not before `now`, at which `n` bytes (at most one burst) will be
    /// available.
    fn ready_at(&self, now: Instant, n: u64) -> Instant;
}

/// A token bucket as a single atomic number (the generic cell rate algorithm, GCRA).
///
/// The state is the "theoretical arrival time": when the bucket would be full again if
/// nothing else passed. Passing `n` bytes pushes it `n / rate` seconds later; bytes may pass
/// while it is at most one burst's worth of time ahead of `now`. One `u64` updated with
/// compare-and-swap makes it lock-free and `no_std`, and no background refill is needed: the
/// budget is computed from `now` when asked.
///
/// ```
/// use loomwork::Instant;
/// use loomwork::policy::{Budget, Rate, RateLimit};
///
/// let limit = RateLimit::new(Rate::per_second(1000).with_burst(100));
/// assert_eq!(limit.available(Instant::ZERO), 100);
/// limit.charge(Instant::ZERO, 300); // overdraw by 200 bytes: 0.2 s of debt
/// assert_eq!(limit.available(Instant::ZERO), 0);
/// assert_eq!(limit.ready_at(Instant::ZERO, 1), Instant::from_millis(201));
/// assert_eq!(limit.available(Instant::from_millis(300)), 100);
/// ```
#[derive(Debug)]
pub struct RateLimit {
    rate: Rate,
    /// Theoretical arrival time, in nanoseconds since the runtime's epoch.
    tat: AtomicU64,
}

impl RateLimit {
    /// A full bucket for `rate`.
    pub const fn new(rate: Rate) -> Self {
        RateLimit {
            rate,
            tat: AtomicU64::new(0),
        }
    }

    /// A full bucket for `rate`, ready to share between connections.
    pub fn shared(rate: Rate) -> Arc<Self> {
        Arc::new(Self::new(rate))
    }

    /// The configured rate.
    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Nanoseconds that `n` bytes take at this rate, rounded up.
    fn cost(&self, n: u64) -> u64 {
        let per_sec = u128::from(self.rate.bytes_per_second.max(1));
        let nanos = (u128::from(n) * NANOS_PER_SEC).div_ceil(per_sec);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }
}

impl Budget for RateLimit {
    fn available(&self, now: Instant) -> u64 {
        let now = now.as_nanos();
        let tat = self.tat.load(Ordering::Acquire).max(now);
        // Exactly `burst - (tat - now) * rate` bytes, counted in byte-nanoseconds: a burst
        // turned into whole nanoseconds first would be rounded, and rounded up it let a byte
        // through a fraction of a nanosecond early (PO-3's bound broken by 1e-7 of a byte).
        let rate = u128::from(self.rate.bytes_per_second.max(1));
        let allowance = u128::from(self.rate.burst.max(1)) * NANOS_PER_SEC;
        let debt = u128::from(tat - now) * rate;
        let bytes = allowance.saturating_sub(debt) / NANOS_PER_SEC;
        u64::try_from(bytes)
            .unwrap_or(u64::MAX)
            .min(self.rate.burst)
    }

    fn charge(&self, now: Instant, n: u64) {
        if n == 0 {
            return;
        }
        let cost = self.cost(n);
        let now = now.as_nanos();
        // Lost races just retry: the update is a pure function of the value seen.
        let _ = self
            .tat
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                Some(tat.max(now).saturating_add(cost))
            });
    }

    fn ready_at(&self, now: Instant, n: u64) -> Instant {
        let burst = self.rate.burst.max(1);
        let n = n.clamp(1, burst);
        let tat = self.tat.load(Ordering::Acquire);
        // Bytes fit once `burst - (tat - t) * rate >= n` (as `available` counts): at
        // `t = tat - (burst - n) / rate`, rounded up to the next whole nanosecond.
        let rate = u128::from(self.rate.bytes_per_second.max(1));
        let slack = u128::from(burst - n) * NANOS_PER_SEC / rate;
        let at = tat.saturating_sub(u64::try_from(slack).unwrap_or(u64::MAX));
        Instant::from_nanos(at.max(now.as_nanos()))
    }
}

impl<B: Budget + ?Sized> Budget for Arc<B> {
    fn available(&self, now: Instant) -> u64 {
        (**self).available(now)
    }
    fn charge(&self, now: Instant, n: u64) {
        (**self).charge(now, n)
    }
    fn ready_at(&self, now: Instant, n: u64) -> Instant {
        (**self).ready_at(now, n)
    }
}

impl<B: Budget + ?Sized> Budget for &B {
    fn available(&self, now: Instant) -> u64 {
        (**self).available(now)
    }
    fn charge(&self, now: Instant, n: u64) {
        (**self).charge(now, n)
    }
    fn ready_at(&self, now: Instant, n: u64) -> Instant {
        (**self).ready_at(now, n)
    }
}
