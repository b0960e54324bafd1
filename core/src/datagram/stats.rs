//! Per-endpoint traffic counters.

/// Traffic counters for one endpoint, readable from the protocol
/// ([`DatagramTransport::stats`](crate::datagram::DatagramTransport::stats)) and from the driver.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams delivered to the protocol.
    pub datagrams_received: u64,
    /// Payload bytes delivered to the protocol.
    pub bytes_received: u64,
    /// Datagrams the runtime reported as truncated (longer than the receive size).
    pub truncated: u64,
    /// Datagrams dropped because they came from someone other than the connected peer.
    pub filtered: u64,
    /// Datagrams handed to the runtime for sending.
    pub datagrams_sent: u64,
    /// Payload bytes handed to the runtime for sending.
    pub bytes_sent: u64,
    /// Send errors the runtime reported, refusals aside (they count in `refusals`).
    pub send_errors: u64,
    /// ICMP refusals reported (`connection_refused` deliveries and ignored ones).
    pub refusals: u64,
    /// Sends refused because the endpoint was already closing or closed
    /// ([`SendError::Closed`](crate::datagram::SendError::Closed)): datagrams the protocol
    /// meant to send and lost. The test kit reports them.
    pub sends_after_close: u64,
}
