//! Multicast conformance (docs/twisted-behaviour.md §9 MC), on both runtimes, inside the
//! private network namespace of `scripts/netns-test.sh` only: every test asserts it is there
//! and fails loudly otherwise. Run them with `sudo scripts/netns-test.sh`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use loomwork::bytes::Bytes;
use loomwork::datagram::{Command, Config, Interface};
use loomwork_conformance::netns::{assert_private_netns, interface_index};
use loomwork_conformance::udp::{Act, Event, Probe, Running, Runtime};
use loomwork_std::udp::socket::{apply_command, bind_multicast};
use socket2::{Domain, SockRef, Socket, Type};

const GUARD: Duration = Duration::from_secs(20);
/// Routed over `lo` (224.0.0.0/4). Not 224.0.0.1: every host is in that group, so only a
/// group like this proves that joining works (MC-5).
const LO_GROUP: Ipv4Addr = Ipv4Addr::new(239, 1, 2, 3);
/// Routed out of the veth `mc0` (239.77.0.0/16).
const WIRE_GROUP: Ipv4Addr = Ipv4Addr::new(239, 77, 1, 1);
const MC0: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const MC1: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 2);
const MC0_OTHER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 3);

fn free_port() -> u16 {
    UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wildcard(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
}

fn socket(bind: &str) -> UdpSocket {
    let socket = UdpSocket::bind(bind).unwrap();
    socket.set_read_timeout(Some(GUARD)).unwrap();
    socket
}

fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0; 2048];
    let (n, from) = socket
        .recv_from(&mut buf)
        .expect("a datagram within the guard time");
    buf.truncate(n);
    (buf, from)
}

/// Waits until `server` has carried out everything it was asked so far: the message is
/// handled after earlier outputs (the joins in `start_protocol`, say) went to the socket.
fn settled<P>(server: &Running<P>)
where
    P: loomwork::datagram::DatagramProtocol<Message = Act>,
{
    let sync = socket("127.0.0.1:0");
    server.send(Act::SendTo(
        Bytes::from_static(b"sync"),
        sync.local_addr().unwrap(),
    ));
    assert_eq!(recv(&sync).0, b"sync");
}

fn echo_joined(group: IpAddr, interface: Interface) -> Probe {
    Probe {
        echo: true,
        on_start: vec![Act::Join(group, interface), Act::CloseAfter(GUARD)],
        ..Probe::default()
    }
}

fn two_servers_on_one_port_both_receive_a_group_datagram(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    let group = IpAddr::V4(LO_GROUP);
    let first = rt.listen_multicast(wildcard(port), echo_joined(group, Interface::Any));
    let second = rt.listen_multicast(wildcard(port), echo_joined(group, Interface::Any));
    settled(&first);
    settled(&second);
    let client = socket("127.0.0.1:0");
    client.send_to(b"ping", (LO_GROUP, port)).unwrap();
    assert_eq!(recv(&client).0, b"ping");
    assert_eq!(recv(&client).0, b"ping");
    for server in [first, second] {
        assert_eq!(server.stop().payloads(), [Bytes::from_static(b"ping")]);
    }
}

fn a_socket_that_did_not_join_hears_nothing_mc5(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    let joined = rt.listen_multicast(
        wildcard(port),
        echo_joined(IpAddr::V4(LO_GROUP), Interface::Any),
    );
    settled(&joined);
    // Same port, no join: ours (IP_MULTICAST_ALL off) and, as a control that the test can
    // fail, a socket with the kernel default (on), which hears the other socket's group.
    let ours = bind_multicast(wildcard(port)).unwrap();
    let default = Socket::new(Domain::IPV4, Type::DGRAM, None).unwrap();
    default.set_reuse_address(true).unwrap();
    default.set_reuse_port(true).unwrap();
    default.bind(&wildcard(port).into()).unwrap();
    let default: UdpSocket = default.into();
    default.set_read_timeout(Some(GUARD)).unwrap();

    let client = socket("127.0.0.1:0");
    client.send_to(b"ping", (LO_GROUP, port)).unwrap();
    // The kernel delivers one multicast datagram to every matching socket in one pass, so
    // once the joined server's echo is back, every copy that exists is queued.
    assert_eq!(recv(&client).0, b"ping");
    assert_eq!(
        recv(&default).0,
        b"ping",
        "control: IP_MULTICAST_ALL on hears it"
    );
    let mut buf = [0; 64];
    let err = ours
        .recv_from(&mut buf)
        .expect_err("a socket that did not join heard the group");
    assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    joined.stop();
}

fn leave_group_stops_delivery(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    let group = IpAddr::V4(LO_GROUP);
    let server = rt.listen_multicast(wildcard(port), echo_joined(group, Interface::Any));
    settled(&server);
    let client = socket("127.0.0.1:0");
    client.send_to(b"one", (LO_GROUP, port)).unwrap();
    assert_eq!(recv(&client).0, b"one");

    server.send(Act::Leave(group));
    settled(&server);
    client.send_to(b"two", (LO_GROUP, port)).unwrap();
    // Unicast to the same socket, sent after "two": if "two" had been delivered, its echo
    // would come first.
    client
        .send_to(b"marker", (Ipv4Addr::LOCALHOST, port))
        .unwrap();
    assert_eq!(recv(&client).0, b"marker");
    let probe = server.stop();
    assert_eq!(
        probe.payloads(),
        [Bytes::from_static(b"one"), Bytes::from_static(b"marker")]
    );
}

/// Joins the wire group on mc0, sends to it from the same socket, then sends a unicast
/// marker to itself; returns what it heard. Over `lo` every multicast datagram comes back in
/// whatever the loop option says, so this uses the veth: our own copy can only come from the
/// loopback option.
fn hears_itself(rt: Runtime, loopback: bool) -> Vec<Bytes> {
    let port = free_port();
    let probe = Probe {
        close_after: Some(if loopback { 2 } else { 1 }),
        on_start: vec![
            Act::Join(IpAddr::V4(WIRE_GROUP), Interface::Address(MC0)),
            Act::Loopback(loopback),
            Act::SendTo(
                Bytes::from_static(b"self"),
                SocketAddr::from((WIRE_GROUP, port)),
            ),
            Act::SendTo(
                Bytes::from_static(b"marker"),
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            ),
            Act::CloseAfter(GUARD),
        ],
        ..Probe::default()
    };
    let server = rt.listen_multicast(wildcard(port), probe);
    let probe = server.join();
    assert!(
        !probe
            .events
            .iter()
            .any(|e| matches!(e, Event::SendFailed(..) | Event::CommandFailed(..))),
        "{:?}",
        probe.events
    );
    let mut heard = probe.payloads();
    heard.sort();
    heard
}

fn loopback_off_means_a_sender_does_not_hear_itself(rt: Runtime) {
    assert_private_netns();
    assert_eq!(
        hears_itself(rt, true),
        [Bytes::from_static(b"marker"), Bytes::from_static(b"self")]
    );
    assert_eq!(hears_itself(rt, false), [Bytes::from_static(b"marker")]);
}

fn outgoing_interface_is_applied(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    // A receiver on the mc0 end of the wire.
    let receiver = bind_multicast(wildcard(port)).unwrap();
    receiver.set_nonblocking(false).unwrap();
    receiver.set_read_timeout(Some(GUARD)).unwrap();
    SockRef::from(&receiver)
        .join_multicast_v4(&WIRE_GROUP, &MC0)
        .unwrap();
    // The route sends the group out of mc0; the endpoint overrides it with mc1, so the
    // datagram crosses the wire and arrives on mc0 from mc1's address.
    let probe = Probe {
        on_start: vec![
            Act::OutgoingInterface(Interface::Address(MC1)),
            Act::Ttl(3),
            Act::SendTo(
                Bytes::from_static(b"via mc1"),
                SocketAddr::from((WIRE_GROUP, port)),
            ),
            Act::CloseAfter(GUARD),
        ],
        ..Probe::default()
    };
    let sender = rt.listen_udp("0.0.0.0:0".parse().unwrap(), probe, Config::default());
    let (data, from) = recv(&receiver);
    assert_eq!(data, b"via mc1");
    assert_eq!(from.ip(), IpAddr::V4(MC1));
    let probe = sender.stop();
    assert!(
        !probe
            .events
            .iter()
            .any(|e| matches!(e, Event::CommandFailed(..))),
        "{:?}",
        probe.events
    );
}

fn source_specific_join_hears_only_its_source(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    let group = Ipv4Addr::new(239, 77, 3, 3);
    let probe = Probe {
        echo: true,
        on_start: vec![Act::JoinSource(group, MC0, MC1), Act::CloseAfter(GUARD)],
        ..Probe::default()
    };
    let server = rt.listen_multicast(wildcard(port), probe);
    settled(&server);
    // Both senders go out of mc0, so both datagrams cross the wire, in order, and arrive on
    // mc1; only MC0's is wanted. Once the wanted one is echoed, the other one, ahead of it in
    // the same queue, has been dropped or delivered.
    let sender = |source: Ipv4Addr| {
        let sender = socket(&format!("{source}:0"));
        SockRef::from(&sender).set_multicast_if_v4(&MC0).unwrap();
        sender
    };
    let (other, wanted) = (sender(MC0_OTHER), sender(MC0));
    other.send_to(b"other", (group, port)).unwrap();
    wanted.send_to(b"wanted", (group, port)).unwrap();
    assert_eq!(recv(&wanted).0, b"wanted");
    assert_eq!(server.stop().payloads(), [Bytes::from_static(b"wanted")]);
}

fn ipv6_group_joined_by_interface_index(rt: Runtime) {
    assert_private_netns();
    let port = free_port();
    let group: Ipv6Addr = "ff12::77".parse().unwrap();
    let (mc0, mc1) = (interface_index("mc0"), interface_index("mc1"));
    let bind: SocketAddr = format!("[::]:{port}").parse().unwrap();
    let server = rt.listen_multicast(bind, echo_joined(IpAddr::V6(group), Interface::Index(mc1)));
    settled_v6(&server);
    let sender = Socket::new(Domain::IPV6, Type::DGRAM, None).unwrap();
    sender.set_multicast_if_v6(mc0).unwrap();
    sender
        .bind(&"[::]:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let sender: UdpSocket = sender.into();
    sender.set_read_timeout(Some(GUARD)).unwrap();
    let to = std::net::SocketAddrV6::new(group, port, 0, mc0);
    sender.send_to(b"v6", to).unwrap();
    assert_eq!(recv(&sender).0, b"v6");
    assert_eq!(server.stop().payloads(), [Bytes::from_static(b"v6")]);
}

/// [`settled`] for an IPv6 endpoint.
fn settled_v6<P>(server: &Running<P>)
where
    P: loomwork::datagram::DatagramProtocol<Message = Act>,
{
    let sync = socket("[::1]:0");
    server.send(Act::SendTo(
        Bytes::from_static(b"sync"),
        sync.local_addr().unwrap(),
    ));
    assert_eq!(recv(&sync).0, b"sync");
}

/// The socket commands both runtimes carry out, read back from the socket.
#[test]
#[ignore = "needs a private netns: scripts/netns-test.sh"]
fn ttl_loopback_and_interfaces_are_applied_to_the_socket() {
    assert_private_netns();
    let v4 = bind_multicast(wildcard(0)).unwrap();
    let local = v4.local_addr().unwrap();
    for command in [
        Command::SetTtl(7),
        Command::SetLoopback(false),
        Command::SetOutgoingInterface(Interface::Address(MC1)),
        Command::SetBroadcast(true),
    ] {
        apply_command(&v4, local, &command).unwrap();
    }
    let sock = SockRef::from(&v4);
    assert_eq!(sock.multicast_ttl_v4().unwrap(), 7);
    assert!(!sock.multicast_loop_v4().unwrap());
    assert_eq!(sock.multicast_if_v4().unwrap(), MC1);
    assert!(sock.broadcast().unwrap());
    assert!(
        !sock.multicast_all_v4().unwrap(),
        "IP_MULTICAST_ALL is off (MC-5)"
    );

    let v6 = bind_multicast("[::]:0".parse().unwrap()).unwrap();
    let local = v6.local_addr().unwrap();
    let mc1 = interface_index("mc1");
    for command in [
        Command::SetTtl(9),
        Command::SetLoopback(false),
        Command::SetOutgoingInterface(Interface::Index(mc1)),
    ] {
        apply_command(&v6, local, &command).unwrap();
    }
    let sock = SockRef::from(&v6);
    assert_eq!(
        sock.multicast_hops_v6().unwrap(),
        9,
        "the IPv6 option, unlike Twisted (MC-3)"
    );
    assert!(!sock.multicast_loop_v6().unwrap());
    assert_eq!(sock.multicast_if_v6().unwrap(), mc1);
}

macro_rules! on_every_runtime {
    ($($scenario:ident),* $(,)?) => {
        mod on_std {
            $(#[test]
              #[ignore = "needs a private netns: scripts/netns-test.sh"]
              fn $scenario() { super::$scenario(super::Runtime::Std) })*
        }
        mod on_smol {
            $(#[test]
              #[ignore = "needs a private netns: scripts/netns-test.sh"]
              fn $scenario() { super::$scenario(super::Runtime::Smol) })*
        }
        mod on_tokio {
            $(#[test]
              #[ignore = "needs a private netns: scripts/netns-test.sh"]
              fn $scenario() { super::$scenario(super::Runtime::Tokio) })*
        }
    };
}

on_every_runtime!(
    two_servers_on_one_port_both_receive_a_group_datagram,
    a_socket_that_did_not_join_hears_nothing_mc5,
    leave_group_stops_delivery,
    loopback_off_means_a_sender_does_not_hear_itself,
    outgoing_interface_is_applied,
    source_specific_join_hears_only_its_source,
    ipv6_group_joined_by_interface_index,
);
