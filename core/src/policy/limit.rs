//! `LimitConnections`: a total cap and a per-peer cap on concurrent connections (Twisted
//! `LimitTotalConnectionsFactory`, PO-4, and `LimitConnectionsByPeer`, PO-5, KW-9).

use alloc::collections::{BTreeMap, BTreeSet};
use core::net::{IpAddr, SocketAddr};

use bytes::BytesMut;

use crate::reason::{Limit, Reason};
use crate::stream::{Protocol, ServerFactory, Transport};
use crate::timer::TimerId;

/// What happens to a connection over a limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Overflow {
    /// Accept it, then close it at once with
    /// `Reason::LimitExceeded { limit: Limit::Connections, .. }` (the default). The typed
    /// reason reaches `connection_lost` and every enclosing factory's `connection_closed`, so
    /// refusals can be logged and counted like any other ending.
    #[default]
    Close,
    /// Refuse it in `build_protocol` (Twisted's behaviour with no overflow protocol, DF-16):
    /// the runtime closes the socket and nothing else hears of it.
    Refuse,
}

/// The caps a [`LimitConnections`] enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionLimits {
    /// Concurrent connections in all (`None`: unlimited, Twisted's DF-16 default).
    pub max_total: Option<usize>,
    /// Concurrent connections per peer (Twisted DF-15: 5).
    pub max_per_peer: Option<usize>,
    /// IPv4 peers sharing this many leading bits count as one peer (default 32: per address).
    pub ipv4_prefix: u8,
    /// IPv6 peers sharing this many leading bits count as one peer (default 64: one host
    /// usually owns a whole /64, so counting per address would let it dodge the cap).
    pub ipv6_prefix: u8,
    /// What happens to a connection over a cap.
    pub overflow: Overflow,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_total: None,
            max_per_peer: Some(5),
            ipv4_prefix: 32,
            ipv6_prefix: 64,
            overflow: Overflow::Close,
        }
    }
}

/// A peer as the per-peer cap counts it: its address with the host bits beyond the configured
/// prefix cleared. IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as IPv4.
///
/// ```
/// use loomwork::policy::{ConnectionLimits, PeerKey};
/// let limits = ConnectionLimits::default();
/// let a = PeerKey::new("[2001:db8::1]:1000".parse().unwrap(), &limits);
/// let b = PeerKey::new("[2001:db8::ffff:2]:2000".parse().unwrap(), &limits);
/// assert_eq!(a, b); // same /64
/// let v4 = PeerKey::new("10.0.0.1:5".parse().unwrap(), &limits);
/// let mapped = PeerKey::new("[::ffff:10.0.0.1]:6".parse().unwrap(), &limits);
/// assert_eq!(v4, mapped);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeerKey {
    /// An IPv4 network.
    V4(u32),
    /// An IPv6 network.
    V6(u128),
}

impl PeerKey {
    /// The key `peer` is counted under.
    pub fn new(peer: SocketAddr, limits: &ConnectionLimits) -> Self {
        let ip = match peer.ip() {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            },
            v4 => v4,
        };
        match ip {
            IpAddr::V4(v4) => {
                let bits = u32::from(limits.ipv4_prefix.min(32));
                let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
                PeerKey::V4(u32::from(v4) & mask)
            }
            IpAddr::V6(v6) => {
                let bits = u32::from(limits.ipv6_prefix.min(128));
                let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
                PeerKey::V6(u128::from(v6) & mask)
            }
        }
    }
}

/// A factory wrapper that caps concurrent connections, in all and per peer.
///
/// Counts are taken when a protocol is built and released in `connection_closed`, exactly once
/// per connection however it ends (graceful close, abort, reset, timeout). Connections over a
/// cap are handled as [`ConnectionLimits::overflow`] says; they never count. A refusal by the
/// wrapped factory passes through as a refusal (Twisted's `WrappingFactory` wraps `None` and
/// crashes, KW-9).
///
/// ```
/// use loomwork::policy::{ConnectionLimits, LimitConnections, Limited};
/// use loomwork::stream::ServerFactory;
/// use loomwork::{Limit, Reason};
/// # use loomwork::stream::{Protocol, Transport};
/// # struct Echo;
/// # impl Protocol for Echo {
/// #     type Message = ();
/// #     fn data_received(&mut self, d: &mut bytes::BytesMut, _: &mut Transport<'_>) { d.clear(); }
/// # }
///
/// let limits = ConnectionLimits { max_per_peer: Some(1), ..Default::default() };
/// let mut factory = LimitConnections::new(|_peer| Echo, limits);
/// let (a, b) = ("10.0.0.1:1000".parse().unwrap(), "10.0.0.1:1001".parse().unwrap());
/// assert!(matches!(factory.build_protocol(a), Some(Limited::Admitted(_))));
/// assert!(matches!(factory.build_protocol(b), Some(Limited::Refused(_))));
/// factory.connection_closed(b, &Reason::LimitExceeded { limit: Limit::Connections, max: 1, seen: 2 });
/// factory.connection_closed(a, &Reason::Done);
/// assert_eq!(factory.connection_count(), 0);
/// assert!(matches!(factory.build_protocol(b), Some(Limited::Admitted(_))));
/// ```
#[derive(Debug)]
pub struct LimitConnections<F> {
    inner: F,
    limits: ConnectionLimits,
    total: usize,
    per_peer: BTreeMap<PeerKey, usize>,
    /// Live connections that were closed for overflow: their ending must not be counted.
    /// A live TCP connection's peer address (with its port) is unique on one listener.
    overflowing: BTreeSet<SocketAddr>,
    refused: u64,
}

impl<F: ServerFactory> LimitConnections<F> {
    /// Wraps `inner` with `limits`.
    pub fn new(inner: F, limits: ConnectionLimits) -> Self {
        LimitConnections {
            inner,
            limits,
            total: 0,
            per_peer: BTreeMap::new(),
            overflowing: BTreeSet::new(),
            refused: 0,
        }
    }

    /// Connections admitted and not yet ended.
    pub fn connection_count(&self) -> usize {
        self.total
    }

    /// Admitted connections from `peer`'s network.
    pub fn peer_count(&self, peer: SocketAddr) -> usize {
        let key = PeerKey::new(peer, &self.limits);
        self.per_peer.get(&key).copied().unwrap_or(0)
    }

    /// Connections turned away by a cap so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// The wrapped factory.
    pub fn inner(&self) -> &F {
        &self.inner
    }

    /// The wrapped factory, mutably.
    pub fn inner_mut(&mut self) -> &mut F {
        &mut self.inner
    }

    /// The cap `peer` would exceed, as a reason, if any.
    fn over_limit(&self, key: PeerKey) -> Option<Reason> {
        let over = |max: Option<usize>, count: usize| {
            max.filter(|max| count >= *max)
                .map(|max| Reason::LimitExceeded {
                    limit: Limit::Connections,
                    max,
                    seen: count + 1,
                })
        };
        let from_peer = self.per_peer.get(&key).copied().unwrap_or(0);
        over(self.limits.max_total, self.total)
            .or_else(|| over(self.limits.max_per_peer, from_peer))
    }
}

impl<F: ServerFactory> ServerFactory for LimitConnections<F> {
    type Protocol = Limited<F::Protocol>;

    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let key = PeerKey::new(peer, &self.limits);
        if let Some(reason) = self.over_limit(key) {
            self.refused += 1;
            return match self.limits.overflow {
                Overflow::Refuse => None,
                Overflow::Close => {
                    self.overflowing.insert(peer);
                    Some(Limited::Refused(reason))
                }
            };
        }
        let protocol = self.inner.build_protocol(peer)?;
        self.total += 1;
        *self.per_peer.entry(key).or_insert(0) += 1;
        Some(Limited::Admitted(protocol))
    }

    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        if self.overflowing.remove(&peer) {
            return;
        }
        let key = PeerKey::new(peer, &self.limits);
        match self.per_peer.get_mut(&key) {
            // Not ours (a close we never counted): leave every count alone.
            None => return,
            Some(count) if *count <= 1 => {
                self.per_peer.remove(&key);
            }
            Some(count) => *count -= 1,
        }
        self.total = self.total.saturating_sub(1);
        self.inner.connection_closed(peer, reason);
    }
}

/// The protocol a [`LimitConnections`] builds: the wrapped one, or a refusal that closes at once.
#[derive(Debug)]
pub enum Limited<P> {
    /// Within the caps: everything goes to the wrapped protocol.
    Admitted(P),
    /// Over a cap: closes in `connection_made` with this reason.
    Refused(Reason),
}

impl<P: Protocol> Protocol for Limited<P> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.connection_made(tx),
            Limited::Refused(reason) => tx.lose_connection_with(reason.clone()),
        }
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.data_received(data, tx),
            Limited::Refused(_) => data.clear(),
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.read_closed(tx),
            Limited::Refused(_) => tx.lose_connection(),
        }
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        if let Limited::Admitted(p) = self {
            p.timer_fired(timer, tx);
        }
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        if let Limited::Admitted(p) = self {
            p.message(message, tx);
        }
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.pause_producing(tx),
            Limited::Refused(_) => tx.pause_reading(),
        }
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.resume_producing(tx),
            Limited::Refused(_) => tx.resume_reading(),
        }
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self {
            Limited::Admitted(p) => p.close_requested(tx),
            Limited::Refused(_) => tx.lose_connection(),
        }
    }

    fn connection_lost(&mut self, reason: &Reason) {
        if let Limited::Admitted(p) = self {
            p.connection_lost(reason);
        }
    }
}
