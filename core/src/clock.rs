//! Reading the system's monotonic clock as [`Instant`]s (only with the `std` feature).

use core::time::Duration;

use crate::time::Instant;

/// Maps `std::time::Instant` onto loomwork [`Instant`]s from a fixed epoch, for runtimes.
///
/// The core never reads a clock; runtimes do, through one of these, and pass the result in.
///
/// ```
/// use loomwork::MonotonicClock;
/// let clock = MonotonicClock::new();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// assert!(clock.to_std(b) >= clock.to_std(a));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    epoch: std::time::Instant,
}

impl MonotonicClock {
    /// A clock whose epoch is now.
    pub fn new() -> Self {
        MonotonicClock {
            epoch: std::time::Instant::now(),
        }
    }

    /// The current time.
    pub fn now(&self) -> Instant {
        self.from_std(std::time::Instant::now())
    }

    /// Converts a `std::time::Instant` (clamped to the epoch).
    pub fn from_std(&self, at: std::time::Instant) -> Instant {
        Instant::ZERO + at.saturating_duration_since(self.epoch)
    }

    /// Converts back, for sleeping until a deadline. Saturates far in the future.
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        let far = Duration::from_secs(100 * 365 * 24 * 3600);
        self.epoch
            .checked_add(at.since_epoch().min(far))
            .unwrap_or_else(|| self.epoch + far)
    }

    /// Time from now until `at` (zero when `at` has passed).
    pub fn until(&self, at: Instant) -> Duration {
        at.saturating_duration_since(self.now())
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}
