//! Socket plumbing for datagram endpoints: binding, multicast setup, carrying out the core's
//! outputs ([`flush`]: sends that never wait, [`Command`]s), and receiving with truncation
//! detection and one error classification.
//!
//! Everything here works on a plain `std::net::UdpSocket`, so both runtimes use it:
//! loomwork-std directly, loomwork-smol through `async_io::Async::get_ref`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};

use crate::reason_from_io;
use bytes::Bytes;
use loomwork::datagram::{Action, Command, DatagramProtocol, Endpoint, Interface, Transmit};
use loomwork::{Instant, MonotonicClock};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockRef, Socket, Type};

/// Binds a plain UDP socket to `addr` (Twisted UD-1: no address reuse; port 0 picks a port).
/// The socket is non-blocking: both runtimes wait for readiness themselves.
pub fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Binds a multicast receiver to `addr`, normally the wildcard address and the group's port
/// (Twisted MC-1 with `listenMultiple=True`).
///
/// - `SO_REUSEADDR` and `SO_REUSEPORT`, so several servers on one host share the port and each
///   receives every group datagram;
/// - on Linux `IP_MULTICAST_ALL` (`IPV6_MULTICAST_ALL`) off, so the socket hears only the
///   groups it joined itself, not every group some other socket on the host joined (MC-5);
/// - IPv6 sockets are IPv6-only, so an IPv4 server may share the port number.
pub fn bind_multicast(addr: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    match socket.set_reuse_port(true) {
        // Twisted tolerates ENOPROTOOPT here (MC-1); so do we.
        Err(err) if err.raw_os_error() != Some(libc::ENOPROTOOPT) => return Err(err),
        _ => {}
    }
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    #[cfg(target_os = "linux")]
    if addr.is_ipv6() {
        socket.set_multicast_all_v6(false)?;
    } else {
        socket.set_multicast_all_v4(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Carries out one socket command for an endpoint bound to `local`.
pub fn apply_command(socket: &UdpSocket, local: SocketAddr, command: &Command) -> io::Result<()> {
    let sock = SockRef::from(socket);
    match *command {
        Command::Connect(peer) => socket.connect(peer),
        Command::Disconnect => disconnect(socket, local),
        Command::JoinGroup { group, interface } => match group {
            IpAddr::V4(group) => match v4_interface(interface) {
                InterfaceIndexOrAddress::Address(addr) => sock.join_multicast_v4(&group, &addr),
                index => sock.join_multicast_v4_n(&group, &index),
            },
            IpAddr::V6(group) => sock.join_multicast_v6(&group, v6_interface(interface)?),
        },
        Command::LeaveGroup { group, interface } => match group {
            IpAddr::V4(group) => match v4_interface(interface) {
                InterfaceIndexOrAddress::Address(addr) => sock.leave_multicast_v4(&group, &addr),
                index => sock.leave_multicast_v4_n(&group, &index),
            },
            IpAddr::V6(group) => sock.leave_multicast_v6(&group, v6_interface(interface)?),
        },
        Command::JoinSourceGroup {
            group,
            source,
            interface,
        } => sock.join_ssm_v4(&source, &group, &interface),
        Command::LeaveSourceGroup {
            group,
            source,
            interface,
        } => sock.leave_ssm_v4(&source, &group, &interface),
        Command::SetTtl(ttl) if local.is_ipv4() => sock.set_multicast_ttl_v4(ttl),
        Command::SetTtl(hops) => sock.set_multicast_hops_v6(hops),
        Command::SetLoopback(on) if local.is_ipv4() => sock.set_multicast_loop_v4(on),
        Command::SetLoopback(on) => sock.set_multicast_loop_v6(on),
        Command::SetOutgoingInterface(interface) if local.is_ipv4() => match interface {
            Interface::Any => sock.set_multicast_if_v4(&Ipv4Addr::UNSPECIFIED),
            Interface::Address(addr) => sock.set_multicast_if_v4(&addr),
            Interface::Index(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the IPv4 outgoing multicast interface is chosen by address, not by index",
            )),
        },
        Command::SetOutgoingInterface(interface) => {
            sock.set_multicast_if_v6(v6_interface(interface)?)
        }
        Command::SetBroadcast(on) => sock.set_broadcast(on),
        // `Command` is non-exhaustive: a command this runtime does not know yet is refused,
        // and the protocol hears about it through `command_failed`.
        _ => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "socket command not supported by this runtime",
        )),
    }
}

/// Dissolves a UDP association so the socket receives from anyone again.
///
/// There is no safe API for this: it is `connect` with an `AF_UNSPEC` address. Linux also
/// releases a port that was picked by the kernel (bound with port 0) on disconnect, so the
/// socket is bound again to its original address, keeping the endpoint's address stable.
#[allow(unsafe_code)]
pub fn disconnect(socket: &UdpSocket, local: SocketAddr) -> io::Result<()> {
    // SAFETY: `try_init` hands us a zeroed `sockaddr_storage`; zero is `AF_UNSPEC`, so the
    // storage is already a valid unspecified address. We only shorten the length to the family
    // field, which is all `connect` reads for `AF_UNSPEC`, and write nothing else.
    let ((), unspecified) = unsafe {
        SockAddr::try_init(|_storage, len| {
            *len = std::mem::size_of::<libc::sa_family_t>() as libc::socklen_t;
            Ok(())
        })
    }?;
    let sock = SockRef::from(socket);
    match sock.connect(&unspecified) {
        // BSDs report EAFNOSUPPORT but dissolve the association all the same.
        Err(err) if err.raw_os_error() != Some(libc::EAFNOSUPPORT) => return Err(err),
        _ => {}
    }
    let now_bound = socket.local_addr().ok();
    if now_bound.map(|a| a.port()) != Some(local.port()) {
        sock.bind(&local.into())?;
    }
    Ok(())
}

/// A received datagram.
#[derive(Debug)]
pub struct Received {
    /// The payload (at most the receive size).
    pub data: Bytes,
    /// The sender.
    pub from: SocketAddr,
    /// The datagram was longer than the receive size and `data` holds only its beginning.
    pub truncated: bool,
}

/// A reusable receive buffer that detects truncation.
///
/// It is one byte longer than the largest datagram the endpoint accepts: a datagram that
/// fills it was longer than that, so it is cut to the receive size and flagged, instead of
/// being passed off as whole (Twisted KW-6). This needs no `MSG_TRUNC` flag, hence no
/// uninitialised buffers, and works the same on every platform.
#[derive(Debug)]
pub struct RecvBuffer {
    buf: Vec<u8>,
    receive_size: usize,
}

impl RecvBuffer {
    /// A buffer for datagrams of up to `receive_size` bytes.
    pub fn new(receive_size: usize) -> Self {
        RecvBuffer {
            buf: vec![0; receive_size.saturating_add(1)],
            receive_size,
        }
    }

    /// Turns the result of one `recv_from` into this buffer into a [`Received`].
    pub fn take(&self, n: usize, from: SocketAddr) -> Received {
        let truncated = n > self.receive_size;
        let len = n.min(self.receive_size);
        Received {
            data: Bytes::copy_from_slice(&self.buf[..len]),
            from,
            truncated,
        }
    }

    /// The buffer to pass to `recv_from`.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// Receives one datagram from a non-blocking socket.
    pub fn recv_from(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        let (n, from) = socket.recv_from(&mut self.buf)?;
        Ok(self.take(n, from))
    }
}

/// What [`receive`] did; the endpoint has already been told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecvOutcome {
    /// A datagram, or the error an earlier send left on the socket, went to the endpoint.
    Delivered,
    /// Nothing is waiting: sleep until the socket is readable.
    Drained,
}

/// Receives one datagram (or one pending error) from a non-blocking socket into `buffer` and
/// hands it to the endpoint. The one receive-error classification of both runtimes:
///
/// - `ECONNREFUSED` is the ICMP answer to an earlier datagram (Twisted CU-3): the protocol
///   hears `connection_refused`, and the socket lives on (KW-7);
/// - any other error also belongs to an earlier send (host unreachable, ...), since a UDP
///   receive has no failure of its own: reading it cleared it, and the protocol hears it as a
///   send error with no destination;
/// - `EINTR` is retried; `EAGAIN` means [`RecvOutcome::Drained`].
pub fn receive<P: DatagramProtocol>(
    buffer: &mut RecvBuffer,
    socket: &UdpSocket,
    endpoint: &mut Endpoint<P>,
    now: Instant,
) -> RecvOutcome {
    loop {
        match buffer.recv_from(socket) {
            Ok(datagram) => {
                endpoint.handle_datagram(now, datagram.data, datagram.from, datagram.truncated);
            }
            Err(err) => match err.kind() {
                io::ErrorKind::WouldBlock => return RecvOutcome::Drained,
                io::ErrorKind::Interrupted => continue,
                // A refusal maps to `Reason::Refused`, which the endpoint routes to
                // `connection_refused`.
                _ => endpoint.handle_send_error(now, None, reason_from_io(&err)),
            },
        }
        return RecvOutcome::Delivered;
    }
}

/// Sends one datagram on a non-blocking socket without waiting: `Ok(true)` once it is sent,
/// `Ok(false)` when the socket's send buffer is full (`EAGAIN`: try again once the socket is
/// writable), `Err` when the send failed (`EINTR` is retried).
pub fn try_send(socket: &UdpSocket, transmit: &Transmit) -> io::Result<bool> {
    loop {
        let sent = match transmit.to {
            Some(to) => socket.send_to(&transmit.data, to),
            None => socket.send(&transmit.data),
        };
        return match sent {
            Ok(_) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(err) => Err(err),
        };
    }
}

/// Where [`flush`] stopped, and so what the runtime waits for next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Every output is carried out: wait for a datagram, a message, a stop request or the
    /// endpoint's next deadline.
    Idle,
    /// The socket's send buffer is full and the datagram in hand waits in `pending`: wait for
    /// the socket to become writable, *and* for a stop request and the endpoint's
    /// [`next_timeout`](Endpoint::next_timeout) (a closing endpoint's close deadline), so that
    /// a send path that never drains cannot keep the endpoint from stopping.
    Blocked,
    /// The budget ran out with outputs left: give reads and messages a turn, then flush again.
    Budget,
    /// The endpoint handed out its final [`Action::Close`]:
    /// close the socket and stop.
    Closed,
}

/// Carries out an endpoint's outputs in order (sends, socket commands, the final close),
/// at most `budget` of them, without ever waiting: the one output loop of both runtimes.
///
/// `pending` holds a datagram the endpoint has handed out but the socket has not taken yet
/// (its send buffer was full); it goes first, before anything else is pulled, so datagrams
/// leave in order. Once the endpoint has ended (an abort, the close deadline, a fatal error)
/// the datagram in hand is dropped with the rest of the queue instead of being waited for: a
/// stop never waits on the network. Send and command failures go to the endpoint
/// (`handle_send_error`, `handle_command_result`), timestamped by `clock`.
pub fn flush<P: DatagramProtocol>(
    socket: &UdpSocket,
    local: SocketAddr,
    endpoint: &mut Endpoint<P>,
    pending: &mut Option<Transmit>,
    clock: &MonotonicClock,
    budget: usize,
) -> Flushed {
    if endpoint.is_ended() {
        *pending = None;
    }
    for _ in 0..budget {
        let transmit = match pending.take() {
            Some(transmit) => transmit,
            None => match endpoint.poll_action() {
                None => return Flushed::Idle,
                Some(Action::Send(transmit)) => transmit,
                Some(Action::Command(command)) => {
                    let result =
                        apply_command(socket, local, &command).map_err(|err| reason_from_io(&err));
                    endpoint.handle_command_result(clock.now(), command, result);
                    continue;
                }
                Some(Action::Close) => return Flushed::Closed,
            },
        };
        match try_send(socket, &transmit) {
            Ok(true) => {}
            Ok(false) => {
                *pending = Some(transmit);
                return Flushed::Blocked;
            }
            Err(err) => endpoint.handle_send_error(clock.now(), transmit.to, reason_from_io(&err)),
        }
    }
    Flushed::Budget
}

/// True when the endpoint has outputs it can carry out without waiting for the socket (a close
/// that ended it or is ready to finish, sends queued while reading, none of them blocked on a
/// full send buffer): the runtime takes another turn at once instead of sleeping.
pub fn has_ready_outputs<P: DatagramProtocol>(
    endpoint: &Endpoint<P>,
    pending: &Option<Transmit>,
) -> bool {
    endpoint.is_ended() || (pending.is_none() && (endpoint.queued() > 0 || !endpoint.wants_read()))
}

fn v4_interface(interface: Interface) -> InterfaceIndexOrAddress {
    match interface {
        Interface::Any => InterfaceIndexOrAddress::Address(Ipv4Addr::UNSPECIFIED),
        Interface::Address(addr) => InterfaceIndexOrAddress::Address(addr),
        Interface::Index(index) => InterfaceIndexOrAddress::Index(index),
    }
}

fn v6_interface(interface: Interface) -> io::Result<u32> {
    match interface {
        Interface::Any => Ok(0),
        Interface::Index(index) => Ok(index),
        Interface::Address(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "IPv6 multicast names interfaces by index",
        )),
    }
}
