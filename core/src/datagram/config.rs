//! Per-endpoint limits.

use core::time::Duration;

/// The largest UDP payload over IPv4: 65,535 − 20 (IP header) − 8 (UDP header).
pub const MAX_IPV4_PAYLOAD: usize = 65_507;

/// The largest UDP payload over IPv6 without jumbograms: 65,535 − 8 (UDP header).
pub const MAX_IPV6_PAYLOAD: usize = 65_527;

/// Limits for one datagram [`Endpoint`](crate::datagram::Endpoint).
///
/// Every limit is bounded by default (docs/architecture.md §7); `None` means unbounded and must
/// be asked for explicitly.
///
/// ```
/// use loomwork::datagram::{Config, MAX_IPV6_PAYLOAD};
/// let config = Config { max_queued: Some(16), ..Config::default() };
/// assert_eq!(config.receive_size, MAX_IPV6_PAYLOAD);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest datagram a protocol may send. The family's own maximum
    /// ([`MAX_IPV4_PAYLOAD`], [`MAX_IPV6_PAYLOAD`]) applies on top, so an oversize send is
    /// refused with a typed error before it reaches the operating system.
    pub max_send_size: usize,
    /// How many outputs (sends and socket commands) may wait for the runtime. Past it, sends
    /// are refused with [`SendError::QueueFull`](crate::datagram::SendError::QueueFull).
    pub max_queued: Option<usize>,
    /// How many payload bytes may wait for the runtime.
    pub max_queued_bytes: Option<usize>,
    /// How large a datagram the runtime reads whole. Twisted reads 8,192 bytes and truncates
    /// silently (DF-12, KW-6); the default takes the largest UDP payload there is. A longer
    /// datagram is delivered cut to this size with its `truncated` flag set.
    pub receive_size: usize,
    /// How long a graceful close ([`Endpoint::close`](crate::datagram::Endpoint::close) or the
    /// protocol's own `close`) may spend sending the datagrams still queued. Past it the
    /// endpoint ends as an abort would (what is left is dropped) and `stop_protocol` receives
    /// [`Reason::TimedOut`](crate::Reason::TimedOut)`(`[`Timeout::Close`](crate::Timeout::Close)`)`,
    /// so a send path that never drains cannot keep a stop from finishing. `None` waits for
    /// the queue however long it takes.
    ///
    /// The default is 5 s, shorter than a stream's 30 s: nobody acknowledges a datagram, so
    /// there is no slow reader to be patient with. A healthy send path empties even a full
    /// socket buffer within milliseconds; one that has not moved for seconds is stuck (a
    /// saturated or shaped link, a dead route), and waiting longer only delays the stop.
    pub close_timeout: Option<Duration>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_send_size: MAX_IPV6_PAYLOAD,
            max_queued: Some(1024),
            max_queued_bytes: Some(4 * 1024 * 1024),
            receive_size: MAX_IPV6_PAYLOAD,
            close_timeout: Some(Duration::from_secs(5)),
        }
    }
}
