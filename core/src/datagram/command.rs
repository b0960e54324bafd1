//! What an endpoint asks its runtime to do: send, change the socket, close.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;

/// One output of an [`Endpoint`](crate::datagram::Endpoint), pulled in the order the protocol
/// asked for them with [`poll_action`](crate::datagram::Endpoint::poll_action).
///
/// Order matters: a send queued after a `connect` must leave through the connected socket, a
/// send queued after `join_group` may expect the membership. The runtime carries each one out
/// before pulling the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one datagram. Report a failure with
    /// [`handle_send_error`](crate::datagram::Endpoint::handle_send_error).
    Send(Transmit),
    /// Change the socket. Report the outcome with
    /// [`handle_command_result`](crate::datagram::Endpoint::handle_command_result).
    Command(Command),
    /// Close the socket: the endpoint is over (`stop_protocol` has run). Always the last output.
    Close,
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The payload, never larger than the endpoint's send limit.
    pub data: Bytes,
    /// Where to: `Some(addr)` for `sendto`, `None` for a plain `send` on the connected socket.
    pub to: Option<SocketAddr>,
}

/// Which network interface a multicast operation uses.
///
/// IPv4 accepts all three forms; IPv6 names interfaces by index only (an address is refused
/// with [`CommandError::InterfaceFamily`](crate::datagram::CommandError::InterfaceFamily)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Interface {
    /// Let the operating system choose (`INADDR_ANY` / index 0), Twisted's `""`.
    #[default]
    Any,
    /// The IPv4 interface with this address.
    Address(Ipv4Addr),
    /// The interface with this index (`if_nametoindex`).
    Index(u32),
}

/// A change to the socket, requested by the protocol through its
/// [`DatagramTransport`](crate::datagram::DatagramTransport).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Command {
    /// Connect the socket to `peer` (Twisted CU-1); connecting again re-targets it.
    Connect(SocketAddr),
    /// Dissolve the association (`connect` with `AF_UNSPEC`).
    Disconnect,
    /// Join a multicast group (Twisted MC-2 `joinGroup`).
    JoinGroup {
        /// The group.
        group: IpAddr,
        /// The interface to join on.
        interface: Interface,
    },
    /// Leave a multicast group (`leaveGroup`).
    LeaveGroup {
        /// The group.
        group: IpAddr,
        /// The interface it was joined on.
        interface: Interface,
    },
    /// Join a source-specific IPv4 group: only `source`'s datagrams to `group` (IGMPv3).
    JoinSourceGroup {
        /// The group.
        group: Ipv4Addr,
        /// The only sender heard.
        source: Ipv4Addr,
        /// The local interface address (`0.0.0.0` for any).
        interface: Ipv4Addr,
    },
    /// Leave a source-specific group.
    LeaveSourceGroup {
        /// The group.
        group: Ipv4Addr,
        /// The sender.
        source: Ipv4Addr,
        /// The local interface address.
        interface: Ipv4Addr,
    },
    /// Multicast TTL (IPv4) or hop limit (IPv6); unlike Twisted (MC-3) the right option for the
    /// socket's family.
    SetTtl(u32),
    /// Whether our own multicast datagrams loop back to us (`IP[V6]_MULTICAST_LOOP`).
    SetLoopback(bool),
    /// The interface multicast datagrams leave through.
    SetOutgoingInterface(Interface),
    /// Whether sending to broadcast addresses is allowed (`SO_BROADCAST`, UD-8).
    SetBroadcast(bool),
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Connect(peer) => write!(f, "connect to {peer}"),
            Command::Disconnect => f.write_str("disconnect"),
            Command::JoinGroup { group, interface } => {
                write!(f, "join group {group} on {interface}")
            }
            Command::LeaveGroup { group, interface } => {
                write!(f, "leave group {group} on {interface}")
            }
            Command::JoinSourceGroup {
                group,
                source,
                interface,
            } => write!(f, "join group {group} from {source} on {interface}"),
            Command::LeaveSourceGroup {
                group,
                source,
                interface,
            } => write!(f, "leave group {group} from {source} on {interface}"),
            Command::SetTtl(ttl) => write!(f, "set multicast TTL to {ttl}"),
            Command::SetLoopback(on) => write!(f, "set multicast loopback {on}"),
            Command::SetOutgoingInterface(interface) => {
                write!(f, "set outgoing interface to {interface}")
            }
            Command::SetBroadcast(on) => write!(f, "set broadcast {on}"),
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Interface::Any => f.write_str("any interface"),
            Interface::Address(addr) => write!(f, "interface {addr}"),
            Interface::Index(index) => write!(f, "interface #{index}"),
        }
    }
}
