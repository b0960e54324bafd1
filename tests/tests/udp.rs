//! UDP conformance over real loopback sockets, the same scenarios on both runtimes
//! (docs/twisted-behaviour.md §7 UD, §8 CU). The peers are plain std sockets, independent of
//! loomwork.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use loomwork::bytes::Bytes;
use loomwork::datagram::{Config, SendError, MAX_IPV4_PAYLOAD};
use loomwork::{IoKind, Reason};
use loomwork_conformance::udp::{echo_payload as payload, Act, Event, Probe, Runtime};

/// A guard on every scenario: the probe closes itself after this long whatever happens, so a
/// broken runtime fails the test instead of hanging it.
const GUARD: Duration = Duration::from_secs(20);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A plain loopback socket that gives up on a read after `timeout`.
fn peer(timeout: Duration) -> UdpSocket {
    let socket = UdpSocket::bind(any_port()).unwrap();
    socket.set_read_timeout(Some(timeout)).unwrap();
    socket
}

fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 70_000];
    let (n, from) = socket
        .recv_from(&mut buf)
        .expect("datagram within the timeout");
    buf.truncate(n);
    (buf, from)
}

fn echo_10_000_datagrams_of_mixed_sizes(rt: Runtime) {
    let server = rt.listen_udp(
        any_port(),
        Probe {
            echo: true,
            on_start: vec![Act::CloseAfter(Duration::from_secs(300))],
            ..Probe::default()
        },
        Config::default(),
    );
    let client = peer(Duration::from_millis(500));
    let started = Instant::now();
    let budget = Duration::from_secs(240);
    let (mut retries, mut bytes) = (0u32, 0usize);
    let mut buf = vec![0; 70_000];
    for seq in 0..10_000u32 {
        let sent = payload(seq);
        client.send_to(&sent, server.local_addr()).unwrap();
        loop {
            assert!(
                started.elapsed() < budget,
                "echo run exceeded {budget:?} at {seq}"
            );
            match client.recv_from(&mut buf) {
                Ok((n, from)) if buf[..n] == sent[..] => {
                    assert_eq!(from, server.local_addr());
                    break;
                }
                // A late answer to a datagram we already re-sent: skip it.
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    retries += 1;
                    assert!(retries < 100, "too much loss on loopback");
                    client.send_to(&sent, server.local_addr()).unwrap();
                }
                Err(err) => panic!("recv: {err}"),
            }
        }
        bytes += sent.len();
    }
    let probe = server.stop();
    eprintln!(
        "{rt:?}: 10000 datagrams, {bytes} bytes echoed in {:?}, {retries} re-sent",
        started.elapsed()
    );
    assert_eq!(probe.received(), 10_000 + retries as usize);
    assert!(probe.events.iter().all(|e| !matches!(
        e,
        Event::Datagram {
            truncated: true,
            ..
        } | Event::SendRefused(_)
            | Event::SendFailed(..)
    )));
    assert_eq!(probe.events.last(), Some(&Event::Stopped(Reason::Done)));
}

fn longer_datagrams_than_the_receive_size_are_flagged_truncated(rt: Runtime) {
    let config = Config {
        receive_size: 1_000,
        ..Config::default()
    };
    let probe = Probe {
        close_after: Some(3),
        on_start: vec![Act::CloseAfter(GUARD)],
        ..Probe::default()
    };
    let server = rt.listen_udp(any_port(), probe, config);
    let client = peer(GUARD);
    for len in [1_500, 1_000, 1_001] {
        client.send_to(&vec![9; len], server.local_addr()).unwrap();
    }
    let probe = server.join();
    let seen: Vec<(usize, bool)> = probe
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Datagram {
                data, truncated, ..
            } => Some((data.len(), *truncated)),
            _ => None,
        })
        .collect();
    assert_eq!(seen, [(1_000, true), (1_000, false), (1_000, true)]);
}

fn connected_mode_filters_other_senders(rt: Runtime) {
    let a = peer(GUARD);
    let b = peer(GUARD);
    let probe = Probe {
        echo: true,
        on_start: vec![
            Act::Connect(a.local_addr().unwrap()),
            Act::CloseAfter(GUARD),
        ],
        ..Probe::default()
    };
    let server = rt.listen_udp(any_port(), probe, Config::default());
    // B's datagram goes first, so by the time A's echo is back B's has been dropped, either by
    // the kernel or, if it was queued before the connect took effect, by the core.
    b.send_to(b"from b", server.local_addr()).unwrap();
    a.send_to(b"from a", server.local_addr()).unwrap();
    assert_eq!(recv(&a).0, b"from a");
    let probe = server.stop();
    assert_eq!(probe.payloads(), [Bytes::from_static(b"from a")]);
}

fn the_core_filters_a_stranger_queued_before_the_connect(rt: Runtime) {
    // The kernel keeps datagrams that were queued before `connect`; only the core's own
    // filter keeps B's out of a protocol connected to A (defence in depth).
    let a = peer(GUARD);
    let b = peer(GUARD);
    let socket = UdpSocket::bind(any_port()).unwrap();
    let local = socket.local_addr().unwrap();
    b.send_to(b"queued from b", local).unwrap();
    let probe = Probe {
        echo: true,
        on_start: vec![
            Act::Connect(a.local_addr().unwrap()),
            Act::CloseAfter(GUARD),
        ],
        ..Probe::default()
    };
    let server = rt.adopt_udp(socket, probe, Config::default());
    a.send_to(b"from a", local).unwrap();
    // B's datagram is ahead of A's in the socket's queue: once A's echo is back, B's was read.
    assert_eq!(recv(&a).0, b"from a");
    let probe = server.stop();
    assert_eq!(probe.payloads(), [Bytes::from_static(b"from a")]);
}

fn refusal_reaches_connection_refused_and_the_socket_lives_on(rt: Runtime) {
    let closed = UdpSocket::bind(any_port()).unwrap().local_addr().unwrap(); // dropped: closed
    let live = peer(GUARD);
    let probe = Probe {
        on_start: vec![
            Act::Connect(closed),
            Act::Send(Bytes::from_static(b"hello")),
            Act::CloseAfter(GUARD),
        ],
        on_refused: vec![
            Act::Connect(live.local_addr().unwrap()),
            Act::Send(Bytes::from_static(b"still here")),
        ],
        ..Probe::default()
    };
    let server = rt.listen_udp(any_port(), probe, Config::default());
    let (data, from) = recv(&live);
    assert_eq!(data, b"still here");
    assert_eq!(from, server.local_addr());
    let probe = server.stop();
    assert!(probe.events.contains(&Event::Refused), "{:?}", probe.events);
}

fn reconnect_to_a_new_peer_and_disconnect(rt: Runtime) {
    let a = peer(GUARD);
    let b = peer(GUARD);
    let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    let probe = Probe {
        echo: true,
        on_start: vec![Act::Connect(a_addr), Act::CloseAfter(GUARD)],
        ..Probe::default()
    };
    let server = rt.listen_udp(any_port(), probe, Config::default());
    let local = server.local_addr();
    server.send(Act::Send(Bytes::from_static(b"1")));
    assert_eq!(recv(&a), (b"1".to_vec(), local));

    // Unlike Twisted (CU-1), connecting again re-targets the endpoint.
    server.send(Act::Connect(b_addr));
    server.send(Act::Send(Bytes::from_static(b"2")));
    assert_eq!(recv(&b), (b"2".to_vec(), local));
    a.send_to(b"a while b", local).unwrap();
    b.send_to(b"b while b", local).unwrap();
    assert_eq!(recv(&b).0, b"b while b");

    server.send(Act::Disconnect);
    server.send(Act::SendTo(Bytes::from_static(b"3"), a_addr));
    // A's next datagram is "3", not an echo of "a while b": that one was filtered. And it
    // comes from the same address: disconnecting kept the port.
    assert_eq!(recv(&a), (b"3".to_vec(), local));
    a.send_to(b"a after", local).unwrap();
    assert_eq!(recv(&a).0, b"a after");
    b.send_to(b"b after", local).unwrap();
    assert_eq!(recv(&b).0, b"b after");
    let probe = server.stop();
    assert_eq!(
        probe.payloads(),
        [
            Bytes::from_static(b"b while b"),
            Bytes::from_static(b"a after"),
            Bytes::from_static(b"b after"),
        ]
    );
}

fn oversize_send_is_a_typed_error_and_the_endpoint_keeps_working(rt: Runtime) {
    let a = peer(GUARD);
    let a_addr = a.local_addr().unwrap();
    let probe = Probe {
        on_start: vec![Act::CloseAfter(GUARD)],
        ..Probe::default()
    };
    let server = rt.listen_udp(any_port(), probe, Config::default());
    server.send(Act::SendTo(
        Bytes::from(vec![0; MAX_IPV4_PAYLOAD + 1]),
        a_addr,
    ));
    // An error only the OS sees (port 0 is not a destination) is reported, not fatal.
    server.send(Act::SendTo(
        Bytes::from_static(b"x"),
        "127.0.0.1:0".parse().unwrap(),
    ));
    server.send(Act::SendTo(Bytes::from(vec![1; MAX_IPV4_PAYLOAD]), a_addr));
    let (data, _) = recv(&a);
    assert_eq!(data.len(), MAX_IPV4_PAYLOAD);
    let probe = server.stop();
    assert_eq!(
        probe.events[1],
        Event::SendRefused(SendError::TooLarge {
            len: MAX_IPV4_PAYLOAD + 1,
            max: MAX_IPV4_PAYLOAD
        })
    );
    assert!(
        matches!(
            &probe.events[2],
            Event::SendFailed(
                Some(_),
                Reason::Io {
                    kind: IoKind::InvalidInput,
                    ..
                }
            )
        ),
        "{:?}",
        probe.events
    );
    assert_eq!(probe.events.last(), Some(&Event::Stopped(Reason::Done)));
}

fn ipv6_echo(rt: Runtime) {
    let Ok(client) = UdpSocket::bind("[::1]:0") else {
        panic!("IPv6 loopback is required for this test");
    };
    client.set_read_timeout(Some(GUARD)).unwrap();
    let probe = Probe {
        echo: true,
        on_start: vec![Act::CloseAfter(GUARD)],
        ..Probe::default()
    };
    let server = rt.listen_udp("[::1]:0".parse().unwrap(), probe, Config::default());
    let big = vec![5; 65_000];
    client.send_to(&big, server.local_addr()).unwrap();
    assert_eq!(recv(&client), (big, server.local_addr()));
    server.stop();
}

fn stop_ends_an_idle_endpoint_promptly(rt: Runtime) {
    let server = rt.listen_udp(any_port(), Probe::default(), Config::default());
    let probe = server.stop();
    assert_eq!(probe.events.last(), Some(&Event::Stopped(Reason::Done)));
}

macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        mod on_std {
            $(#[test] fn $scenario() { super::$scenario(super::Runtime::Std) })*
        }
        mod on_smol {
            $(#[test] fn $scenario() { super::$scenario(super::Runtime::Smol) })*
        }
        mod on_tokio {
            $(#[test] fn $scenario() { super::$scenario(super::Runtime::Tokio) })*
        }
    };
}

on_every_runtime!(
    echo_10_000_datagrams_of_mixed_sizes,
    longer_datagrams_than_the_receive_size_are_flagged_truncated,
    connected_mode_filters_other_senders,
    the_core_filters_a_stranger_queued_before_the_connect,
    refusal_reaches_connection_refused_and_the_socket_lives_on,
    reconnect_to_a_new_peer_and_disconnect,
    oversize_send_is_a_typed_error_and_the_endpoint_keeps_working,
    ipv6_echo,
    stop_ends_an_idle_endpoint_promptly,
);
