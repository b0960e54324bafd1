//! `IdleTimer`: Twisted's `TimeoutMixin` as a small component a protocol embeds (TM-1..TM-4).

use core::time::Duration;

use crate::stream::Transport;
use crate::time::Instant;
use crate::timer::TimerId;

/// An idle timeout a protocol controls itself, like Twisted's `TimeoutMixin`.
///
/// Embed one in the protocol, call [`set_timeout`](Self::set_timeout) to arm it,
/// [`reset`](Self::reset) on activity, and ask [`expired`](Self::expired) in `timer_fired`.
/// Unlike Twisted (TM-4, PO-6) the timer lives in the connection's timer table, so it can never
/// outlive the connection or fire into a closed one, and using it after it fired is not an
/// error: a later `set_timeout` simply arms a fresh one (TM-3).
///
/// Resetting is cheap: it only records the time of the activity. The transport timer is moved
/// when it comes due and finds activity since it was set, so a busy connection costs one timer
/// per period rather than one per read.
///
/// ```
/// use core::time::Duration;
/// use bytes::BytesMut;
/// use loomwork::policy::IdleTimer;
/// use loomwork::stream::{Config, Connection, Protocol, Transport};
/// use loomwork::{Instant, Reason, TimerId, Timeout};
///
/// /// Closes after 10 s of silence from the peer.
/// struct Quiet { idle: IdleTimer }
/// impl Protocol for Quiet {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         self.idle.set_timeout(Some(Duration::from_secs(10)), tx);
///     }
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         data.clear();
///         self.idle.reset(tx);
///     }
///     fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
///         if self.idle.expired(timer, tx) {
///             tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
///         }
///     }
/// }
///
/// let addr = "127.0.0.1:1".parse().unwrap();
/// let mut conn = Connection::new(Quiet { idle: IdleTimer::new() }, Config::default());
/// conn.handle_connected(Instant::ZERO, addr, addr);
/// conn.handle_data(Instant::from_secs(5), b"still here");
/// conn.handle_timeout(Instant::from_secs(10)); // moved to 15 s by the data at 5 s
/// assert!(!conn.is_closed());
/// assert_eq!(conn.next_timeout(), Some(Instant::from_secs(15)));
/// conn.handle_timeout(Instant::from_secs(15));
/// assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IdleTimer {
    period: Option<Duration>,
    /// The transport timer currently set, while the timeout is active.
    armed: Option<TimerId>,
    /// The last activity while active.
    last_activity: Instant,
}

impl IdleTimer {
    /// An inactive timer (Twisted's `timeOut = None`, DF-14).
    pub const fn new() -> Self {
        IdleTimer {
            period: None,
            armed: None,
            last_activity: Instant::ZERO,
        }
    }

    /// A timer with `period` that is not running yet: [`start`](Self::start) runs it (a
    /// wrapper's configuration, applied once the connection is made).
    pub const fn with_period(period: Option<Duration>) -> Self {
        IdleTimer {
            period,
            armed: None,
            last_activity: Instant::ZERO,
        }
    }

    /// The current period; `None` when off.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// True while the timeout is running.
    pub fn is_active(&self) -> bool {
        self.armed.is_some()
    }

    /// When the connection will be idle for a full period, if nothing happens before.
    pub fn deadline(&self) -> Option<Instant> {
        self.armed?;
        self.period.map(|period| self.last_activity + period)
    }

    /// Sets the period and returns the previous one (TM-1): starts the timeout if it was not
    /// running, restarts a running one with the new period from now, and stops it for `None`.
    pub fn set_timeout<M>(
        &mut self,
        period: Option<Duration>,
        tx: &mut Transport<'_, M>,
    ) -> Option<Duration> {
        let previous = core::mem::replace(&mut self.period, period);
        self.disarm(tx);
        if let Some(period) = period {
            self.last_activity = tx.now();
            self.armed = Some(tx.call_later(period));
        }
        previous
    }

    /// Restarts a running timeout from now (TM-2). Does nothing when it is not running: never
    /// set, cancelled, or already expired.
    pub fn reset<M>(&mut self, tx: &Transport<'_, M>) {
        if self.armed.is_some() {
            self.last_activity = tx.now();
        }
    }

    /// Stops the timeout, keeping the period (so [`start`](Self::start) can resume it).
    pub fn cancel<M>(&mut self, tx: &mut Transport<'_, M>) {
        self.disarm(tx);
    }

    /// Starts the timeout with the current period, from now; does nothing when the period is
    /// `None` or it is already running.
    pub fn start<M>(&mut self, tx: &mut Transport<'_, M>) {
        if let (Some(period), None) = (self.period, self.armed) {
            self.last_activity = tx.now();
            self.armed = Some(tx.call_later(period));
        }
    }

    /// Call from `timer_fired`: true when `timer` is this timeout and the connection has now
    /// been idle for a whole period (the timeout is then no longer running, TM-3). When there
    /// was activity since, the timer is moved to the new deadline and this returns false.
    /// False, untouched, for any other timer.
    pub fn expired<M>(&mut self, timer: TimerId, tx: &mut Transport<'_, M>) -> bool {
        if self.armed != Some(timer) {
            return false;
        }
        self.armed = None;
        let Some(period) = self.period else {
            return false;
        };
        let deadline = self.last_activity + period;
        if tx.now() >= deadline {
            return true;
        }
        self.armed = Some(tx.call_at(deadline));
        false
    }

    /// True when `timer` is this timeout's transport timer.
    pub fn owns(&self, timer: TimerId) -> bool {
        self.armed == Some(timer)
    }

    fn disarm<M>(&mut self, tx: &mut Transport<'_, M>) {
        if let Some(timer) = self.armed.take() {
            tx.cancel_timer(timer);
        }
    }
}
