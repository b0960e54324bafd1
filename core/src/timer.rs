//! The timer table that protocols schedule into: ids in, deadlines out, no clock inside.

use alloc::collections::BTreeSet;

use crate::time::Instant;

/// A timer set by a protocol through `call_later` / `call_at`; passed back to `timer_fired`.
///
/// Ids are unique for the life of the machine that issued them (never reused), so a stale id
/// can never cancel somebody else's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId {
    // Ordering by deadline first is what makes the table a priority queue.
    at: Instant,
    seq: u64,
}

impl TimerId {
    /// When this timer is due.
    pub fn deadline(&self) -> Instant {
        self.at
    }
}

/// An ordered set of pending timers.
///
/// A `BTreeSet` keyed by (deadline, sequence) gives O(log n) schedule and cancel, the earliest
/// deadline in O(log n), and fires timers with equal deadlines in the order they were set.
/// An empty table allocates nothing, which keeps idle connections small.
///
/// ```
/// use loomwork::{Instant, TimerTable};
/// let mut timers = TimerTable::default();
/// let late = timers.schedule(Instant::from_secs(2));
/// let early = timers.schedule(Instant::from_secs(1));
/// assert_eq!(timers.next_deadline(), Some(Instant::from_secs(1)));
/// assert_eq!(timers.pop_expired(Instant::from_secs(5)), Some(early));
/// assert!(timers.cancel(late));
/// assert_eq!(timers.pop_expired(Instant::from_secs(5)), None);
/// ```
#[derive(Debug, Default, Clone)]
pub struct TimerTable {
    pending: BTreeSet<TimerId>,
    next_seq: u64,
}

impl TimerTable {
    /// Schedules a timer due at `at`.
    pub fn schedule(&mut self, at: Instant) -> TimerId {
        let id = TimerId {
            at,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.pending.insert(id);
        id
    }

    /// Cancels a pending timer; false when it already fired or was cancelled.
    pub fn cancel(&mut self, id: TimerId) -> bool {
        self.pending.remove(&id)
    }

    /// True while `id` is pending.
    pub fn is_pending(&self, id: TimerId) -> bool {
        self.pending.contains(&id)
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.first().map(|id| id.at)
    }

    /// Removes and returns the earliest timer due at or before `now`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<TimerId> {
        match self.pending.first() {
            Some(id) if id.at <= now => self.pending.pop_first(),
            _ => None,
        }
    }

    /// A mark separating the timers scheduled so far from those scheduled later; see
    /// [`pop_expired_before_mark`](Self::pop_expired_before_mark).
    pub fn mark(&self) -> u64 {
        self.next_seq
    }

    /// Like [`pop_expired`](Self::pop_expired), but only timers scheduled before `mark` fire.
    ///
    /// A driver firing timers in a loop uses this so that a timer re-armed for `now` from inside
    /// a callback waits for the next wake-up rather than spinning the loop forever. Because the
    /// table is ordered by (deadline, sequence), once the earliest due timer is newer than the
    /// mark, every older due timer has already been popped.
    pub fn pop_expired_before_mark(&mut self, now: Instant, mark: u64) -> Option<TimerId> {
        match self.pending.first() {
            Some(id) if id.at <= now && id.seq < mark => self.pending.pop_first(),
            _ => None,
        }
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Drops every pending timer.
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_deadlines_fire_in_the_order_they_were_set() {
        let mut t = TimerTable::default();
        let a = t.schedule(Instant::from_secs(1));
        let b = t.schedule(Instant::from_secs(1));
        assert_eq!(t.pop_expired(Instant::from_secs(1)), Some(a));
        assert_eq!(t.pop_expired(Instant::from_secs(1)), Some(b));
    }

    #[test]
    fn nothing_fires_early() {
        let mut t = TimerTable::default();
        t.schedule(Instant::from_millis(1000));
        assert_eq!(t.pop_expired(Instant::from_millis(999)), None);
        assert!(t.pop_expired(Instant::from_millis(1000)).is_some());
    }

    #[test]
    fn cancel_is_idempotent() {
        let mut t = TimerTable::default();
        let a = t.schedule(Instant::from_secs(1));
        assert!(t.cancel(a));
        assert!(!t.cancel(a));
        assert!(t.is_empty());
    }
}
