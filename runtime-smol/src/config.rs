//! How a server listens.

use loomwork::stream::Config;

/// Settings of [`listen_tcp_with`](crate::listen_tcp_with) and its executor variants.
///
/// ```
/// use loomwork_smol::ListenConfig;
/// // Four SO_REUSEPORT listeners: the kernel spreads new connections over four accept tasks.
/// let config = ListenConfig { listeners: 4, ..ListenConfig::default() };
/// assert_eq!(config.backlog, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// Limits and thresholds of every accepted connection.
    pub connection: Config,
    /// How many listening sockets to open on the address, each with its own accept task. More
    /// than one sets `SO_REUSEPORT` so the kernel balances connections between them; 0 counts
    /// as 1.
    pub listeners: usize,
    /// The `listen(2)` backlog of each listening socket.
    pub backlog: i32,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            connection: Config::default(),
            listeners: 1,
            backlog: 1024,
        }
    }
}
