//! Per-connection traffic counters: a plain struct, no metrics library.

use core::time::Duration;

/// Traffic counters for one connection, readable from the protocol (`Transport::stats`) and
/// from the driver (`Connection::stats`).
///
/// The driver keeps the byte and backpressure counters; framers and policies add what only
/// they can see through [`Transport::stats_mut`](crate::stream::Transport::stats_mut).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed in by the runtime.
    pub bytes_received: u64,
    /// Bytes the runtime reported as written.
    pub bytes_sent: u64,
    /// How many times the protocol was told to pause producing.
    pub pauses: u64,
    /// Total time spent paused by backpressure (updated when the pause ends).
    pub time_paused: Duration,
    /// Frames decoded and delivered (counted by a framer).
    pub frames_received: u64,
    /// Frames encoded and queued (counted by a framer).
    pub frames_sent: u64,
    /// Frames refused as malformed or over-long (counted by a framer).
    pub frames_rejected: u64,
    /// Total time reading or producing was held back by a throttling policy (updated when
    /// the hold ends).
    pub time_throttled: Duration,
    /// Writes refused because our writing side had already stopped: after an abort, a
    /// half-close, or once a graceful close has flushed. Their bytes never leave; Twisted
    /// drops such writes silently, and the test kit
    /// ([`StreamCheck`](crate::testing::StreamCheck), feature `testing`) reports them.
    pub writes_after_close: u64,
    /// Writes refused because they would have taken the queue past
    /// [`Config::max_queued`](crate::stream::Config::max_queued)
    /// ([`WriteError::QueueFull`](crate::stream::WriteError::QueueFull)).
    pub writes_over_cap: u64,
}
