//! `Pair`: a client and a server `Connection` joined by an in-memory wire and a virtual clock.

use core::net::SocketAddr;
use core::time::Duration;

use crate::stream::{Config, Connection, Protocol};
use crate::testing::Wire;
use crate::time::Instant;

/// How a [`Pair`]'s wire behaves.
#[derive(Clone, Debug)]
pub struct PairConfig {
    /// Largest chunk handed to one `handle_data` (1 = a byte at a time; PR-4 says it must not
    /// matter).
    pub max_read: usize,
    /// Bytes the wire holds per direction, like a kernel's socket buffers: a writer whose peer
    /// does not read fills this, then its own queue, and backpressure follows.
    pub wire_capacity: usize,
    /// Connection settings for both sides.
    pub connection: Config,
    /// The client's address.
    pub client_addr: SocketAddr,
    /// The server's address.
    pub server_addr: SocketAddr,
}

impl Default for PairConfig {
    fn default() -> Self {
        PairConfig {
            max_read: 64 * 1024,
            wire_capacity: 256 * 1024,
            connection: Config::default(),
            client_addr: SocketAddr::from(([127, 0, 0, 1], 50_000)),
            server_addr: SocketAddr::from(([127, 0, 0, 1], 8_000)),
        }
    }
}

/// A client and a server protocol connected in memory, with virtual time.
///
/// [`run`](Self::run) moves bytes both ways, carries out close/abort/half-close actions, and
/// jumps the clock to the next deadline whenever nothing else can happen, until both sides are
/// closed or a time limit passes. Fully deterministic: the same inputs give the same run.
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
/// use loomwork::testing::{Pair, PairConfig};
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, d: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(d.split().freeze());
///     }
/// }
/// #[derive(Default)]
/// struct Ask(Vec<u8>);
/// impl Protocol for Ask {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         let _ = tx.write_slice(b"ping");
///     }
///     fn data_received(&mut self, d: &mut BytesMut, tx: &mut Transport<'_>) {
///         self.0.extend_from_slice(&d.split());
///         if self.0.len() == 4 { tx.lose_connection(); }
///     }
/// }
///
/// let mut pair = Pair::new(Ask::default(), Echo, PairConfig { max_read: 1, ..Default::default() });
/// pair.run(core::time::Duration::from_secs(1));
/// assert_eq!(pair.client.protocol().0, b"ping");
/// assert!(pair.client.is_closed() && pair.server.is_closed());
/// ```
pub struct Pair<C: Protocol, S: Protocol> {
    /// The client side.
    pub client: Connection<C>,
    /// The server side.
    pub server: Connection<S>,
    now: Instant,
    config: PairConfig,
    to_server: Wire,
    to_client: Wire,
}

impl<C: Protocol, S: Protocol> Pair<C, S> {
    /// Connects both sides at time zero, server first (LB-1).
    pub fn new(client: C, server: S, config: PairConfig) -> Self {
        let mut pair = Pair {
            client: Connection::new(client, config.connection.clone()),
            server: Connection::new(server, config.connection.clone()),
            now: Instant::ZERO,
            config,
            to_server: Wire::default(),
            to_client: Wire::default(),
        };
        let (c, s) = (pair.config.client_addr, pair.config.server_addr);
        pair.server.handle_connected(pair.now, s, c);
        pair.client.handle_connected(pair.now, c, s);
        pair
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves everything that can move without time passing; false if nothing moved.
    pub fn pump(&mut self) -> bool {
        let mut progressed = false;
        for _ in 0..10_000 {
            let mut moved = false;
            let now = self.now;
            let cap = self.config.wire_capacity;
            let max_read = self.config.max_read.max(1);
            moved |= Wire::pump_both(
                &mut self.client,
                &mut self.server,
                &mut self.to_server,
                &mut self.to_client,
                now,
                cap,
                max_read,
            );
            if !moved {
                break;
            }
            progressed = true;
        }
        progressed
    }

    /// Pumps, then jumps to the next deadline, until both sides are closed, nothing is
    /// scheduled, or `limit` of virtual time has passed. Returns true if both sides closed.
    pub fn run(&mut self, limit: Duration) -> bool {
        let end = self.now + limit;
        loop {
            self.pump();
            if self.client.is_closed() && self.server.is_closed() {
                return true;
            }
            let next = match (self.client.next_timeout(), self.server.next_timeout()) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return false,
            };
            if next > end {
                self.now = end;
                return false;
            }
            self.now = self.now.max(next);
            self.client.handle_timeout(self.now);
            self.server.handle_timeout(self.now);
        }
    }

    /// Moves the clock forward by `by`, firing what is due on the way.
    pub fn advance(&mut self, by: Duration) {
        let end = self.now + by;
        loop {
            self.pump();
            let next = [self.client.next_timeout(), self.server.next_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    self.client.handle_timeout(self.now);
                    self.server.handle_timeout(self.now);
                }
                _ => break,
            }
        }
        self.now = end;
        self.client.handle_timeout(end);
        self.server.handle_timeout(end);
        self.pump();
    }
}
