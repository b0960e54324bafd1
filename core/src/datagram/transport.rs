//! `DatagramTransport`: the protocol's view of its endpoint (Twisted `IUDPTransport`,
//! `IMulticastTransport`).

use alloc::collections::VecDeque;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::{
    Action, Command, CommandError, Config, Interface, SendError, Stats, Transmit, MAX_IPV4_PAYLOAD,
    MAX_IPV6_PAYLOAD,
};
use crate::reason::Reason;
use crate::time::Instant;
use crate::timer::{TimerId, TimerTable};

/// The handle a [`DatagramProtocol`](crate::datagram::DatagramProtocol) acts through during a
/// callback.
///
/// Nothing here performs I/O: sends and socket commands are queued, in order, and the runtime
/// carries them out after the callback returns. Mistakes the core can see (an oversize
/// datagram, the wrong address family, a full queue) are refused at once with a typed error and
/// leave the endpoint as it was.
pub struct DatagramTransport<'a> {
    pub(crate) state: &'a mut EndpointState,
}

impl DatagramTransport<'_> {
    /// Queues `data` for `to` (Twisted `write(data, addr)`), without copying it.
    ///
    /// On a connected endpoint `to` must be the peer. Refused when the datagram is larger than
    /// the destination family allows (65,507 bytes for IPv4, 65,527 for IPv6) or than
    /// [`Config::max_send_size`], or when `to` is of the other family.
    pub fn send_to(&mut self, data: impl Into<Bytes>, to: SocketAddr) -> Result<(), SendError> {
        let data = data.into();
        self.state.check_send(data.len(), Some(to))?;
        let to = match self.state.peer {
            // Sent as a plain `send` so the OS reports ECONNREFUSED for it (CU-2).
            Some(_) => None,
            None => Some(to),
        };
        self.state.push_send(data, to);
        Ok(())
    }

    /// Queues `data` for the connected peer (Twisted connected `write(data)`).
    pub fn send(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.state.check_send(data.len(), None)?;
        self.state.push_send(data, None);
        Ok(())
    }

    /// Connects to `peer` (Twisted CU-1): later [`send`](Self::send)s need no address and only
    /// `peer`'s datagrams are delivered. Unlike Twisted, connecting again re-targets the
    /// endpoint to the new peer.
    ///
    /// The core filters other senders too, so datagrams that were already queued in the socket
    /// before the connect took effect are never passed off as the peer's.
    pub fn connect(&mut self, peer: SocketAddr) -> Result<(), CommandError> {
        self.state.check_family(peer.ip())?;
        if peer.ip().is_unspecified() || peer.port() == 0 {
            return Err(CommandError::InvalidPeer(peer));
        }
        self.state.push_command(Command::Connect(peer))?;
        self.state.peer = Some(peer);
        Ok(())
    }

    /// Dissolves the connection: datagrams from anyone are delivered again and sends need an
    /// address. Does nothing when not connected.
    pub fn disconnect(&mut self) -> Result<(), CommandError> {
        if self.state.peer.is_none() {
            return if self.state.is_open() {
                Ok(())
            } else {
                Err(CommandError::Closed)
            };
        }
        self.state.push_command(Command::Disconnect)?;
        self.state.peer = None;
        Ok(())
    }

    /// Joins the multicast `group` on `interface` (Twisted MC-2 `joinGroup`). The operating
    /// system's answer arrives later: a failure in `command_failed`.
    pub fn join_group(&mut self, group: IpAddr, interface: Interface) -> Result<(), CommandError> {
        self.state.check_group(group, interface)?;
        self.state
            .push_command(Command::JoinGroup { group, interface })
    }

    /// Leaves a group joined with [`join_group`](Self::join_group).
    pub fn leave_group(&mut self, group: IpAddr, interface: Interface) -> Result<(), CommandError> {
        self.state.check_group(group, interface)?;
        self.state
            .push_command(Command::LeaveGroup { group, interface })
    }

    /// Joins an IPv4 source-specific multicast (SSM) group: only `source`'s datagrams to `group` arrive
    /// (IGMPv3; not in Twisted). `interface` is a local address, `0.0.0.0` for any.
    pub fn join_ssm(
        &mut self,
        group: core::net::Ipv4Addr,
        source: core::net::Ipv4Addr,
        interface: core::net::Ipv4Addr,
    ) -> Result<(), CommandError> {
        self.state.check_group(IpAddr::V4(group), Interface::Any)?;
        self.state.push_command(Command::JoinSourceGroup {
            group,
            source,
            interface,
        })
    }

    /// Leaves a source-specific group.
    pub fn leave_ssm(
        &mut self,
        group: core::net::Ipv4Addr,
        source: core::net::Ipv4Addr,
        interface: core::net::Ipv4Addr,
    ) -> Result<(), CommandError> {
        self.state.check_group(IpAddr::V4(group), Interface::Any)?;
        self.state.push_command(Command::LeaveSourceGroup {
            group,
            source,
            interface,
        })
    }

    /// Sets the multicast TTL (IPv4) or hop limit (IPv6) (Twisted `setTTL`; kernel default 1).
    pub fn set_ttl(&mut self, ttl: u32) -> Result<(), CommandError> {
        self.state.push_command(Command::SetTtl(ttl))
    }

    /// Whether our own multicast datagrams are delivered back to this host (Twisted
    /// `setLoopbackMode`; kernel default on).
    pub fn set_loopback(&mut self, on: bool) -> Result<(), CommandError> {
        self.state.push_command(Command::SetLoopback(on))
    }

    /// The interface multicast datagrams leave through (Twisted `setOutgoingInterface`).
    pub fn set_outgoing_interface(&mut self, interface: Interface) -> Result<(), CommandError> {
        self.state.check_interface(interface)?;
        self.state
            .push_command(Command::SetOutgoingInterface(interface))
    }

    /// Allows or forbids sending to broadcast addresses (Twisted `setBroadcastAllowed`, UD-8).
    pub fn set_broadcast(&mut self, on: bool) -> Result<(), CommandError> {
        self.state.push_command(Command::SetBroadcast(on))
    }

    /// Closes the endpoint: nothing more is delivered, datagrams already queued are still
    /// sent, then `stop_protocol` runs and the socket closes (Twisted `stopListening`).
    /// Sending what is queued may take at most [`Config::close_timeout`]; past it the rest is
    /// dropped and `stop_protocol` hears `TimedOut(Close)`. A second call does nothing.
    pub fn close(&mut self) {
        self.state.begin_close(Reason::Done);
    }

    /// Calls [`timer_fired`](crate::datagram::DatagramProtocol::timer_fired) after `delay`.
    pub fn call_later(&mut self, delay: Duration) -> TimerId {
        let at = self.state.now + delay;
        self.state.timers.schedule(at)
    }

    /// Calls [`timer_fired`](crate::datagram::DatagramProtocol::timer_fired) at `at` (on the
    /// next turn when `at` has passed).
    pub fn call_at(&mut self, at: Instant) -> TimerId {
        self.state.timers.schedule(at)
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.state.timers.cancel(timer)
    }

    /// The time of the event being handled.
    pub fn now(&self) -> Instant {
        self.state.now
    }

    /// Our socket's address (Twisted `getHost`).
    pub fn local(&self) -> Option<SocketAddr> {
        self.state.local
    }

    /// The connected peer, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.state.peer
    }

    /// Outputs waiting for the runtime.
    pub fn queued(&self) -> usize {
        self.state.queue.len()
    }

    /// True once a close has been requested.
    pub fn is_closing(&self) -> bool {
        !self.state.is_open()
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }
}

/// Where an endpoint is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Built; the socket is not bound yet.
    Pending,
    /// Bound; receiving and sending.
    Open,
    /// Close requested: nothing more is delivered; queued outputs drain first, until
    /// `deadline` ([`Config::close_timeout`] after the request), when the endpoint ends as
    /// if aborted.
    Closing {
        reason: Reason,
        deadline: Option<Instant>,
    },
    /// `stop_protocol` has run.
    Closed,
}

/// Everything about an endpoint except the protocol itself; [`DatagramTransport`] borrows it.
#[derive(Debug)]
pub(crate) struct EndpointState {
    pub(crate) now: Instant,
    pub(crate) phase: Phase,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) queue: VecDeque<Action>,
    pub(crate) queued_bytes: usize,
    pub(crate) timers: TimerTable,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
}

impl EndpointState {
    pub(crate) fn new(config: Config) -> Self {
        EndpointState {
            now: Instant::ZERO,
            phase: Phase::Pending,
            local: None,
            peer: None,
            queue: VecDeque::new(),
            queued_bytes: 0,
            timers: TimerTable::default(),
            config,
            stats: Stats::default(),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// The largest datagram allowed to an address of `to`'s family.
    fn max_send_size(&self, to: &SocketAddr) -> usize {
        let family_max = match to {
            SocketAddr::V4(_) => MAX_IPV4_PAYLOAD,
            SocketAddr::V6(_) => MAX_IPV6_PAYLOAD,
        };
        family_max.min(self.config.max_send_size)
    }

    fn check_send(&mut self, len: usize, to: Option<SocketAddr>) -> Result<(), SendError> {
        if !self.is_open() {
            self.stats.sends_after_close += 1;
            return Err(SendError::Closed);
        }
        let dest = match (to, self.peer) {
            (None, None) => return Err(SendError::NotConnected),
            (Some(to), Some(peer)) if to != peer => return Err(SendError::WrongPeer { peer, to }),
            (Some(to), _) => to,
            (None, Some(peer)) => peer,
        };
        if let Some(local) = self.local {
            if local.is_ipv4() != dest.is_ipv4() {
                return Err(SendError::FamilyMismatch { local, to: dest });
            }
        }
        let max = self.max_send_size(&dest);
        if len > max {
            return Err(SendError::TooLarge { len, max });
        }
        let count_full = self
            .config
            .max_queued
            .is_some_and(|m| self.queue.len() >= m);
        let bytes_full = self
            .config
            .max_queued_bytes
            .is_some_and(|m| self.queued_bytes.saturating_add(len) > m);
        if count_full || bytes_full {
            return Err(SendError::QueueFull {
                queued: self.queue.len(),
                queued_bytes: self.queued_bytes,
            });
        }
        Ok(())
    }

    fn push_send(&mut self, data: Bytes, to: Option<SocketAddr>) {
        self.queued_bytes += data.len();
        self.queue.push_back(Action::Send(Transmit { data, to }));
    }

    fn push_command(&mut self, command: Command) -> Result<(), CommandError> {
        if !self.is_open() {
            return Err(CommandError::Closed);
        }
        if self
            .config
            .max_queued
            .is_some_and(|m| self.queue.len() >= m)
        {
            return Err(CommandError::QueueFull);
        }
        self.queue.push_back(Action::Command(command));
        Ok(())
    }

    fn check_family(&self, addr: IpAddr) -> Result<(), CommandError> {
        if !self.is_open() {
            return Err(CommandError::Closed);
        }
        match self.local {
            Some(local) if local.is_ipv4() != addr.is_ipv4() => {
                Err(CommandError::FamilyMismatch { local, addr })
            }
            _ => Ok(()),
        }
    }

    fn check_group(&self, group: IpAddr, interface: Interface) -> Result<(), CommandError> {
        self.check_family(group)?;
        if !group.is_multicast() {
            return Err(CommandError::NotMulticast(group));
        }
        if group.is_ipv6() && matches!(interface, Interface::Address(_)) {
            return Err(CommandError::InterfaceFamily);
        }
        Ok(())
    }

    fn check_interface(&self, interface: Interface) -> Result<(), CommandError> {
        let v6 = self.local.is_some_and(|l| l.is_ipv6());
        if v6 && matches!(interface, Interface::Address(_)) {
            return Err(CommandError::InterfaceFamily);
        }
        Ok(())
    }

    pub(crate) fn begin_close(&mut self, reason: Reason) {
        if self.phase == Phase::Open {
            let deadline = self
                .config
                .close_timeout
                .map(|t| self.now.saturating_add(t));
            self.phase = Phase::Closing { reason, deadline };
            self.timers.clear();
        }
    }
}
