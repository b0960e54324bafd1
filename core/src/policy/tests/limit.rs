//! LimitConnections (PO-4, PO-5, KW-9): caps, IPv6 grouping, counts released on every ending.

use alloc::vec::Vec;

use super::{addr, connect, Probe};
use crate::policy::{ConnectionLimits, LimitConnections, Limited, Overflow};
use crate::reason::{Limit, Reason, Timeout};
use crate::stream::{Config, Connection, ServerFactory};
use crate::time::Instant;

fn factory(limits: ConnectionLimits) -> LimitConnections<impl ServerFactory<Protocol = Probe>> {
    LimitConnections::new(|_peer| Probe::default(), limits)
}

/// Builds and connects a protocol for `peer`.
fn accept<F: ServerFactory>(f: &mut F, peer: &str) -> Option<Connection<F::Protocol>> {
    let peer = addr(peer);
    let protocol = f.build_protocol(peer)?;
    let mut conn = Connection::new(protocol, Config::default());
    conn.handle_connected(Instant::ZERO, addr("127.0.0.1:80"), peer);
    Some(conn)
}

fn over(max: usize) -> Reason {
    Reason::LimitExceeded {
        limit: Limit::Connections,
        max,
        seen: max + 1,
    }
}

#[test]
fn the_extra_peer_connection_closes_at_once_with_the_typed_reason() {
    let mut f = factory(ConnectionLimits {
        max_per_peer: Some(2),
        ..Default::default()
    });
    let _a = accept(&mut f, "10.0.0.1:1").unwrap();
    let _b = accept(&mut f, "10.0.0.1:2").unwrap();
    let c = accept(&mut f, "10.0.0.1:3").unwrap();
    assert!(c.is_ended(), "closed in connection_made, nothing to flush");
    assert_eq!(c.reason(), Some(&over(2)));
    f.connection_closed(addr("10.0.0.1:3"), c.reason().unwrap());
    assert_eq!(f.connection_count(), 2, "the refusal never counted");
    assert_eq!(f.refused(), 1);
    // Another peer is not affected.
    assert!(matches!(
        accept(&mut f, "10.0.0.2:1").unwrap().protocol(),
        Limited::Admitted(_)
    ));
}

#[test]
fn counts_are_released_once_for_every_kind_of_ending() {
    let mut f = factory(ConnectionLimits {
        max_per_peer: Some(4),
        ..Default::default()
    });
    let peers = ["10.0.0.1:1", "10.0.0.1:2", "10.0.0.1:3", "10.0.0.1:4"];
    let mut conns: Vec<_> = peers.iter().map(|p| accept(&mut f, p).unwrap()).collect();
    assert_eq!(f.peer_count(addr("10.0.0.1:9")), 4);
    let t = Instant::from_secs(1);
    conns[0].close(t); // graceful
    conns[1].abort(t); // our abort
    conns[2].handle_error(t, Reason::Reset); // peer reset
    conns[3].handle_error(t, Reason::TimedOut(Timeout::Idle)); // a timeout
    for (conn, peer) in conns.iter().zip(peers) {
        assert!(conn.is_ended());
        f.connection_closed(addr(peer), conn.reason().unwrap());
    }
    assert_eq!(f.connection_count(), 0);
    assert_eq!(f.peer_count(addr("10.0.0.1:9")), 0);
    // A duplicate report changes nothing.
    f.connection_closed(addr(peers[0]), &Reason::Done);
    assert_eq!(f.connection_count(), 0);
    let again: Vec<_> = (5..9)
        .map(|i| accept(&mut f, &alloc::format!("10.0.0.1:{i}")).unwrap())
        .collect();
    assert!(again.iter().all(|c| !c.is_closed()));
}

#[test]
fn ipv6_hosts_in_one_64_share_the_cap_unless_the_prefix_says_otherwise() {
    let limits = ConnectionLimits {
        max_per_peer: Some(1),
        ..Default::default()
    };
    let mut f = factory(limits);
    let _a = accept(&mut f, "[2001:db8:0:1::1]:1").unwrap();
    let b = accept(&mut f, "[2001:db8:0:1:ffff::2]:1").unwrap();
    assert_eq!(b.reason(), Some(&over(1)));
    let other_net = accept(&mut f, "[2001:db8:0:2::1]:1").unwrap();
    assert!(!other_net.is_closed());
    let mut per_address = factory(ConnectionLimits {
        ipv6_prefix: 128,
        ..limits
    });
    let _a = accept(&mut per_address, "[2001:db8:0:1::1]:1").unwrap();
    assert!(!accept(&mut per_address, "[2001:db8:0:1::2]:1")
        .unwrap()
        .is_closed());
}

#[test]
fn total_cap_and_refuse_mode() {
    let limits = ConnectionLimits {
        max_total: Some(2),
        max_per_peer: None,
        overflow: Overflow::Refuse,
        ..Default::default()
    };
    let mut f = factory(limits);
    assert!(accept(&mut f, "10.0.0.1:1").is_some());
    assert!(accept(&mut f, "10.0.0.2:1").is_some());
    assert!(
        accept(&mut f, "10.0.0.3:1").is_none(),
        "refused outright (DF-16)"
    );
    f.connection_closed(addr("10.0.0.1:1"), &Reason::Done);
    assert!(accept(&mut f, "10.0.0.3:1").is_some());
}

#[test]
fn a_refusing_inner_factory_is_not_counted() {
    let mut toggle = false;
    let inner = move |_peer| {
        toggle = !toggle;
        toggle.then(Probe::default)
    };
    // A closure returning Option<P> is not a factory; spell one out.
    struct Sometimes<F>(F);
    impl<F: FnMut(core::net::SocketAddr) -> Option<Probe>> ServerFactory for Sometimes<F> {
        type Protocol = Probe;
        fn build_protocol(&mut self, peer: core::net::SocketAddr) -> Option<Probe> {
            (self.0)(peer)
        }
    }
    let mut f = LimitConnections::new(Sometimes(inner), ConnectionLimits::default());
    assert!(accept(&mut f, "10.0.0.1:1").is_some());
    assert!(accept(&mut f, "10.0.0.1:2").is_none());
    assert_eq!(f.connection_count(), 1);
}

#[test]
fn nested_limits_release_their_own_counts() {
    let inner_limits = ConnectionLimits {
        max_per_peer: Some(1),
        ..Default::default()
    };
    let inner = LimitConnections::new(|_peer| Probe::default(), inner_limits);
    let mut outer = LimitConnections::new(inner, ConnectionLimits::default());
    let a = accept(&mut outer, "10.0.0.1:1").unwrap();
    let b = accept(&mut outer, "10.0.0.1:2").unwrap();
    assert!(!a.is_closed());
    assert_eq!(b.reason(), Some(&over(1)), "the inner cap refused it");
    assert_eq!(outer.connection_count(), 2, "the outer admitted both");
    outer.connection_closed(addr("10.0.0.1:2"), b.reason().unwrap());
    assert_eq!(outer.connection_count(), 1);
    assert_eq!(outer.inner().connection_count(), 1);
    let _ = connect(Probe::default());
}

mod props {
    use alloc::collections::BTreeMap;
    use alloc::format;

    use proptest::prelude::*;

    use super::{addr, factory};
    use crate::policy::{ConnectionLimits, Limited};
    use crate::reason::Reason;
    use crate::stream::ServerFactory;

    proptest! {
        /// Any interleaving of accepts and closes from a few hosts: the caps always hold, the
        /// counts always equal the admitted connections still open, and they return to zero
        /// once everything has closed (PO-4, PO-5).
        #[test]
        fn counts_track_open_admitted_connections(
            ops in proptest::collection::vec((any::<bool>(), 0u8..4, 0usize..8), 1..200),
            max_total in 1usize..6,
            max_per_peer in 1usize..4,
        ) {
            let limits = ConnectionLimits {
                max_total: Some(max_total),
                max_per_peer: Some(max_per_peer),
                ..Default::default()
            };
            let mut f = factory(limits);
            let mut open: BTreeMap<u16, (u8, bool)> = BTreeMap::new(); // port -> (host, admitted)
            let mut next_port = 1u16;
            for (accept, host, pick) in ops {
                if accept || open.is_empty() {
                    let port = next_port;
                    next_port += 1;
                    let peer = addr(&format!("10.0.0.{host}:{port}"));
                    let admitted = matches!(f.build_protocol(peer), Some(Limited::Admitted(_)));
                    open.insert(port, (host, admitted));
                } else {
                    let port = *open.keys().nth(pick % open.len()).unwrap();
                    let (host, admitted) = open.remove(&port).unwrap();
                    let reason = if admitted { Reason::Reset } else {
                        Reason::LimitExceeded { limit: crate::Limit::Connections, max: 0, seen: 0 }
                    };
                    f.connection_closed(addr(&format!("10.0.0.{host}:{port}")), &reason);
                }
                let admitted = open.values().filter(|(_, a)| *a).count();
                prop_assert_eq!(f.connection_count(), admitted);
                prop_assert!(admitted <= max_total);
                for h in 0..4u8 {
                    let from_host = open.values().filter(|(x, a)| *x == h && *a).count();
                    prop_assert_eq!(f.peer_count(addr(&format!("10.0.0.{h}:0"))), from_host);
                    prop_assert!(from_host <= max_per_peer);
                }
            }
            for (port, (host, _)) in core::mem::take(&mut open) {
                f.connection_closed(addr(&format!("10.0.0.{host}:{port}")), &Reason::Done);
            }
            prop_assert_eq!(f.connection_count(), 0);
        }
    }
}
