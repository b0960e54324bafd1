//! Per-connection limits and thresholds.

use core::time::Duration;

/// Limits and thresholds for one stream connection.
///
/// Every limit is bounded by default (docs/architecture.md §7); `None` means unbounded and must
/// be asked for explicitly.
///
/// # What the write-queue figures count
/// [`high_water`](Self::high_water), [`low_water`](Self::low_water) and
/// [`max_queued`](Self::max_queued) compare with the queue's *account*
/// ([`Transport::queued_memory`](crate::stream::Transport::queued_memory)), which stands for
/// the memory the queue holds rather than its bare payload:
/// - a write of more than 256 bytes, and every [`write_shared`](crate::stream::Transport::write_shared),
///   is an entry of its own, charged its length plus a fixed overhead of 128 bytes (the entry,
///   the list's spare room, a shared buffer's header, the allocator's bookkeeping);
/// - smaller writes ([`write`](crate::stream::Transport::write) of up to 256 bytes,
///   [`write_slice`](crate::stream::Transport::write_slice)) are copied into blocks of at most
///   16 KiB, each charged its bytes plus the same overhead, plus, once full, the few bytes at
///   its end that the next write did not fit in.
///
/// Written bytes of an entry stay charged until the whole entry is written (its buffer lives
/// that long). So the queue's real footprint is at most its account plus two 16 KiB blocks (the
/// one being filled and the one being written out): a
/// million 100-byte writes to a peer that never reads stop at `max_queued` with about
/// `max_queued` bytes held, not twice that. A buffer shared with other connections is charged
/// in full to each of them, although its bytes exist once.
/// [`queued_bytes`](crate::stream::Transport::queued_bytes) still reports the payload alone.
///
/// ```
/// use loomwork::stream::Config;
/// let config = Config { high_water: 256 * 1024, ..Config::default() };
/// assert_eq!(config.low_water, 16 * 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The queue's account (see [above](Self#what-the-write-queue-figures-count)) above which
    /// the protocol gets `pause_producing` (Twisted DF-11: 64 KiB).
    pub high_water: usize,
    /// The queue's account at or below which a paused protocol gets `resume_producing`.
    ///
    /// Twisted resumes only when the buffer is completely empty, which leaves the socket idle
    /// while the producer refills it; resuming at a quarter of the high mark keeps the pipe full.
    pub low_water: usize,
    /// Hard cap on the queue's account (bytes plus overhead, see
    /// [above](Self#what-the-write-queue-figures-count)): a write that would exceed it is refused whole with
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
