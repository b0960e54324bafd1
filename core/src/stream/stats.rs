//! Per-connection traffic counters: a plain struct, no metrics library.

use core::time::Duration;

/// Traffic counters for one connection, readable from the protocol (`Transport::stats`) and
/// from the driver (`Connection::stats`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes handed in by the runtime.
    pub bytes_received: u64,
    /// Bytes the runtime reported as written.
    pub bytes_sent: u64,
    /// How many times the protocol was told to pause producing.
    pub pauses: u64,
    /// Total time spent paused by backpressure (updated when the pause ends).
    pub time_paused: Duration,
}
