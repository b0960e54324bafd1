//! Per-connection limits and thresholds.

use core::time::Duration;

/// Limits and thresholds for one stream connection.
///
/// Every limit is bounded by default (docs/architecture.md §7); `None` means unbounded and must
/// be asked for explicitly.
///
/// ```
/// use loomwork::stream::Config;
/// let config = Config { high_water: 256 * 1024, ..Config::default() };
/// assert_eq!(config.low_water, 16 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Queued bytes above which the protocol gets `pause_producing` (Twisted DF-11: 64 KiB).
    pub high_water: usize,
    /// Queued bytes at or below which a paused protocol gets `resume_producing`.
    ///
    /// Twisted resumes only when the buffer is completely empty, which leaves the socket idle
    /// while the producer refills it; resuming at a quarter of the high mark keeps the pipe full.
    pub low_water: usize,
    /// Hard cap on queued bytes: a write that would exceed it is refused whole with
    /// [`WriteError::QueueFull`](crate::stream::WriteError::QueueFull), so a protocol that
    /// ignores backpressure cannot exhaust memory (Twisted KW-2).
    pub max_queued: Option<usize>,
    /// Maximum bytes the receive buffer may hold that the protocol has not consumed. Past it
    /// the connection is closed with `Reason::LimitExceeded { limit: ReceiveBuffer, .. }`.
    pub max_receive_buffer: Option<usize>,
    /// How long a graceful close may take to flush before the connection is aborted with
    /// `Reason::TimedOut(Timeout::Close)`, so a close can never hang forever (Twisted KW-10).
    pub close_timeout: Option<Duration>,
    /// After a graceful close has flushed, how long to keep reading (and discarding) the peer's
    /// input while waiting for its EOF before closing the socket. Closing a socket with unread
    /// input makes the kernel send a reset, which can destroy the tail of our own reply still in
    /// flight; lingering avoids that. `None` closes at once.
    pub close_linger: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            high_water: 64 * 1024,
            low_water: 16 * 1024,
            max_queued: Some(16 * 1024 * 1024),
            max_receive_buffer: Some(1024 * 1024),
            close_timeout: Some(Duration::from_secs(30)),
            close_linger: Some(Duration::from_secs(2)),
        }
    }
}
