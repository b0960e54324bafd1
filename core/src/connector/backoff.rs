//! Reconnect delays: Twisted's `ReconnectingClientFactory` schedule without its bugs (RC-3..RC-6).

use core::time::Duration;

use crate::rand::SplitMix64;

/// Settings of a [`Backoff`]. The defaults are Twisted's (DF-6).
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The first delay (Twisted `initialDelay`, 1 s).
    pub initial: Duration,
    /// Growth factor per retry (Twisted `factor`, e).
    pub factor: f64,
    /// The longest delay (Twisted `maxDelay`, 3600 s). Jitter never takes a delay past it.
    pub max: Duration,
    /// Relative standard deviation of the random spread (Twisted `jitter`, 0.119626565582).
    pub jitter: f64,
    /// Give up after this many retries; `None` retries for ever (Twisted `maxRetries`).
    pub max_retries: Option<u32>,
    /// Seed of the jitter's PRNG, so every schedule replays exactly.
    pub seed: u64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            factor: core::f64::consts::E,
            max: Duration::from_secs(3600),
            jitter: 0.119_626_565_582,
            max_retries: None,
            seed: 0x6c6f_6f6d_776f_726b, // "loomwork"
        }
    }
}

/// Exponential reconnect delays with jitter.
///
/// Differences from Twisted, each a bug there: the first delay is exactly `initial` (KW-8,
/// #12478); [`reset`](Self::reset) is called by the connector as soon as a connection is made,
/// not left to the user (#1994); jitter is clamped to `[0, max]` (RC-5, #8714). Jitter is also
/// applied to the deterministic base schedule rather than compounded into it as Twisted does,
/// so delays do not drift on a random walk.
///
/// ```
/// use core::time::Duration;
/// use loomwork::connector::{Backoff, BackoffConfig};
/// let mut b = Backoff::new(BackoffConfig { jitter: 0.0, ..Default::default() });
/// let first: Vec<u64> = (0..4).map(|_| b.next_delay().unwrap().as_millis() as u64).collect();
/// assert_eq!(first, [1000, 2718, 7389, 20085]);
/// b.reset();
/// assert_eq!(b.next_delay(), Some(Duration::from_secs(1)));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    base_secs: f64,
    retries: u32,
    rng: SplitMix64,
}

impl Backoff {
    /// A backoff at its first delay.
    pub fn new(config: BackoffConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        let base_secs = config.initial.as_secs_f64();
        Backoff {
            config,
            base_secs,
            retries: 0,
            rng,
        }
    }

    /// The delay before the next retry, or `None` once `max_retries` retries were used up.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self
            .config
            .max_retries
            .is_some_and(|max| self.retries >= max)
        {
            return None;
        }
        self.retries = self.retries.saturating_add(1);
        let max = self.config.max.as_secs_f64();
        let base = self.base_secs.min(max);
        let spread = if self.config.jitter > 0.0 {
            base * self.config.jitter * self.rng.next_standard_normal()
        } else {
            0.0
        };
        let delay = clamp_secs(base + spread, max);
        self.base_secs = clamp_secs(base * self.config.factor, max);
        Some(Duration::try_from_secs_f64(delay).unwrap_or(self.config.max))
    }

    /// Back to the first delay and zero retries (a connection succeeded).
    pub fn reset(&mut self) {
        self.base_secs = self.config.initial.as_secs_f64();
        self.retries = 0;
    }

    /// Retries handed out since the last reset.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The settings.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }
}

/// Clamps to `[0, max]`, mapping NaN (from a hostile factor or jitter) to `max`.
fn clamp_secs(secs: f64, max: f64) -> f64 {
    if secs.is_nan() {
        max
    } else {
        secs.clamp(0.0, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn no_jitter() -> BackoffConfig {
        BackoffConfig {
            jitter: 0.0,
            ..Default::default()
        }
    }

    #[test]
    #[allow(clippy::approx_constant)] // the figures are Twisted's printed schedule (RC-4)
    fn schedule_matches_twisted_rc4_and_caps_at_max() {
        // RC-4: 1.0, 2.718, 7.389, 20.09, 54.60, 148.4, 403.4, 1096.6, 2981.0, then 3600.
        let mut b = Backoff::new(no_jitter());
        let got: alloc::vec::Vec<f64> = (0..11)
            .map(|_| b.next_delay().unwrap().as_secs_f64())
            .collect();
        let want = [
            1.0, 2.718, 7.389, 20.09, 54.60, 148.4, 403.4, 1096.6, 2981.0, 3600.0, 3600.0,
        ];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() / w < 1e-3, "got {g}, want {w}");
        }
    }

    #[test]
    fn max_retries_n_allows_n_retries() {
        let mut b = Backoff::new(BackoffConfig {
            max_retries: Some(2),
            ..no_jitter()
        });
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_some());
        assert!(b.next_delay().is_none());
        b.reset();
        assert!(b.next_delay().is_some());
    }

    #[test]
    fn same_seed_same_schedule() {
        let mut a = Backoff::new(BackoffConfig::default());
        let mut b = Backoff::new(BackoffConfig::default());
        for _ in 0..20 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }

    proptest! {
        #[test]
        fn jittered_delays_stay_within_zero_and_max(
            seed: u64,
            jitter in 0.0f64..5.0,
            factor in 0.0f64..10.0,
            initial_ms in 0u64..10_000_000,
        ) {
            let max = Duration::from_secs(3600);
            let mut b = Backoff::new(BackoffConfig {
                seed, jitter, factor, initial: Duration::from_millis(initial_ms), max,
                ..Default::default()
            });
            for _ in 0..50 {
                let d = b.next_delay().unwrap();
                prop_assert!(d <= max);
            }
        }
    }
}
