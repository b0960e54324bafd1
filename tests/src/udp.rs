//! Datagram scenarios' shared parts: one switch over the three runtimes and a scriptable probe
//! protocol that records what happens to it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use loomwork::bytes::Bytes;
use loomwork::datagram::{
    Command, CommandError, Config, DatagramProtocol, DatagramTransport, Interface, SendError,
    MAX_IPV4_PAYLOAD,
};
use loomwork::Reason;

/// Datagram `seq` of an echo run: sizes cycle through the interesting ones (empty, around the
/// Ethernet MTU, Twisted's 8 KiB default, the IPv4 maximum) and pseudo-random ones; the bytes
/// are a function of `seq`, and the first four carry it when there is room.
pub fn echo_payload(seq: u32) -> Vec<u8> {
    const SIZES: [usize; 15] = [
        0,
        1,
        3,
        4,
        100,
        1_472,
        1_473,
        8_191,
        8_192,
        8_193,
        16_384,
        32_768,
        65_000,
        65_506,
        MAX_IPV4_PAYLOAD,
    ];
    let len = match SIZES.get(seq as usize % 16) {
        Some(&len) => len,
        None => (seq as usize).wrapping_mul(7_919) % (MAX_IPV4_PAYLOAD + 1),
    };
    let mut data: Vec<u8> = (0..len)
        .map(|i| (seq as usize * 31 + i * 7) as u8)
        .collect();
    if len >= 4 {
        data[..4].copy_from_slice(&seq.to_le_bytes());
    }
    data
}

/// Which runtime drives the endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    /// `loomwork-std`: a thread per endpoint.
    Std,
    /// `loomwork-smol`: a task per endpoint on the global executor.
    Smol,
    /// `loomwork-tokio`: a task per endpoint on the conformance suite's tokio runtime.
    Tokio,
}

/// A running endpoint on either runtime.
pub enum Running<P: DatagramProtocol> {
    /// On `loomwork-std`.
    Std(loomwork_std::UdpEndpoint<P>),
    /// On `loomwork-smol`.
    Smol(loomwork_smol::UdpEndpoint<P>),
    /// On `loomwork-tokio`.
    Tokio(loomwork_tokio::UdpEndpoint<P>),
}

/// Runs `f` inside the conformance suite's tokio runtime (for `loomwork-tokio`'s functions
/// that start on the current runtime).
fn in_tokio<T>(f: impl FnOnce() -> T) -> T {
    let _entered = crate::runtimes::tokio_runtime().enter();
    f()
}

/// Blocks the calling thread on `future` on the conformance suite's tokio runtime.
fn block_on_tokio<T>(future: impl std::future::Future<Output = T>) -> T {
    crate::runtimes::tokio_runtime().block_on(future)
}

impl Runtime {
    /// `listen_udp_with` on this runtime.
    pub fn listen_udp<P>(self, addr: SocketAddr, protocol: P, config: Config) -> Running<P>
    where
        P: DatagramProtocol + Send + 'static,
        P::Message: Send + 'static,
    {
        match self {
            Runtime::Std => {
                Running::Std(loomwork_std::listen_udp_with(addr, protocol, config).expect("bind"))
            }
            Runtime::Smol => {
                Running::Smol(loomwork_smol::listen_udp_with(addr, protocol, config).expect("bind"))
            }
            Runtime::Tokio => Running::Tokio(
                in_tokio(|| loomwork_tokio::listen_udp_with(addr, protocol, config)).expect("bind"),
            ),
        }
    }

    /// `adopt_udp` on this runtime: runs `protocol` on an already bound socket.
    pub fn adopt_udp<P>(
        self,
        socket: std::net::UdpSocket,
        protocol: P,
        config: Config,
    ) -> Running<P>
    where
        P: DatagramProtocol + Send + 'static,
        P::Message: Send + 'static,
    {
        match self {
            Runtime::Std => {
                Running::Std(loomwork_std::adopt_udp(socket, protocol, config).expect("adopt"))
            }
            Runtime::Smol => {
                Running::Smol(loomwork_smol::adopt_udp(socket, protocol, config).expect("adopt"))
            }
            Runtime::Tokio => Running::Tokio(
                in_tokio(|| loomwork_tokio::adopt_udp(socket, protocol, config)).expect("adopt"),
            ),
        }
    }

    /// `listen_multicast_with` on this runtime.
    pub fn listen_multicast<P>(self, bind: SocketAddr, protocol: P) -> Running<P>
    where
        P: DatagramProtocol + Send + 'static,
        P::Message: Send + 'static,
    {
        let config = Config::default();
        match self {
            Runtime::Std => Running::Std(
                loomwork_std::listen_multicast_with(bind, protocol, config).expect("bind"),
            ),
            Runtime::Smol => Running::Smol(
                loomwork_smol::listen_multicast_with(bind, protocol, config).expect("bind"),
            ),
            Runtime::Tokio => Running::Tokio(
                in_tokio(|| loomwork_tokio::listen_multicast_with(bind, protocol, config))
                    .expect("bind"),
            ),
        }
    }
}

impl<P: DatagramProtocol> Running<P> {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        match self {
            Running::Std(h) => h.local_addr(),
            Running::Smol(h) => h.local_addr(),
            Running::Tokio(h) => h.local_addr(),
        }
    }

    /// Posts a message; panics when the endpoint refuses it.
    pub fn send(&self, message: P::Message) {
        let posted = match self {
            Running::Std(h) => h.send(message).is_ok(),
            Running::Smol(h) => h.send(message).is_ok(),
            Running::Tokio(h) => h.send(message).is_ok(),
        };
        assert!(posted, "endpoint refused a message");
    }

    /// Stops gracefully and waits for the protocol.
    pub fn stop(self) -> P {
        match self {
            Running::Std(h) => {
                h.stop();
                h.join()
            }
            Running::Smol(h) => {
                h.stop();
                smol::block_on(h.join())
            }
            Running::Tokio(h) => {
                h.stop();
                block_on_tokio(h.join())
            }
        }
    }

    /// Waits for the protocol to close the endpoint itself.
    pub fn join(self) -> P {
        match self {
            Running::Std(h) => h.join(),
            Running::Smol(h) => smol::block_on(h.join()),
            Running::Tokio(h) => block_on_tokio(h.join()),
        }
    }
}

/// Who asks a running endpoint to stop, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopBy {
    /// `UdpEndpoint::stop` (graceful).
    OwnerStop,
    /// `UdpEndpoint::abort`.
    OwnerAbort,
    /// `UdpHandle::close` (graceful).
    HandleClose,
    /// `UdpHandle::abort`.
    HandleAbort,
}

impl<P> Running<P>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send,
{
    /// Asks the endpoint to stop, as `by` says, without waiting.
    pub fn request_stop(&self, by: StopBy) {
        match (self, by) {
            (Running::Std(h), StopBy::OwnerStop) => h.stop(),
            (Running::Std(h), StopBy::OwnerAbort) => h.abort(),
            (Running::Std(h), StopBy::HandleClose) => h.handle().close(),
            (Running::Std(h), StopBy::HandleAbort) => h.handle().abort(),
            (Running::Smol(h), StopBy::OwnerStop) => h.stop(),
            (Running::Smol(h), StopBy::OwnerAbort) => h.abort(),
            (Running::Smol(h), StopBy::HandleClose) => h.handle().close(),
            (Running::Smol(h), StopBy::HandleAbort) => h.handle().abort(),
            (Running::Tokio(h), StopBy::OwnerStop) => h.stop(),
            (Running::Tokio(h), StopBy::OwnerAbort) => h.abort(),
            (Running::Tokio(h), StopBy::HandleClose) => h.handle().close(),
            (Running::Tokio(h), StopBy::HandleAbort) => h.handle().abort(),
        }
    }

    /// Joins on another thread and waits at most `limit` for it: the protocol, or `None` if
    /// the endpoint is still running then (it is left running, detached), so a runtime that
    /// never ends fails a test instead of hanging it.
    pub fn join_within(self, limit: Duration) -> Option<P> {
        let (done, joined) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(self.join());
        });
        joined.recv_timeout(limit).ok()
    }
}

/// Something the probe does through its transport.
#[derive(Clone, Debug)]
pub enum Act {
    /// `connect`.
    Connect(SocketAddr),
    /// `disconnect`.
    Disconnect,
    /// `send` to the connected peer.
    Send(Bytes),
    /// `send_to`.
    SendTo(Bytes, SocketAddr),
    /// `join_group`.
    Join(std::net::IpAddr, Interface),
    /// `join_ssm`: group, source, interface address.
    JoinSource(Ipv4Addr, Ipv4Addr, Ipv4Addr),
    /// `set_outgoing_interface`.
    OutgoingInterface(Interface),
    /// `leave_group` on any interface.
    Leave(std::net::IpAddr),
    /// `set_loopback`.
    Loopback(bool),
    /// `set_ttl`.
    Ttl(u32),
    /// `close` after a delay (a guard so a scenario can never hang).
    CloseAfter(Duration),
    /// `close`.
    Close,
}

/// What happened to the probe, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `start_protocol` with the local address.
    Started(SocketAddr),
    /// `datagram_received`.
    Datagram {
        /// Payload.
        data: Bytes,
        /// Sender.
        from: SocketAddr,
        /// Truncation flag.
        truncated: bool,
    },
    /// `connection_refused`.
    Refused,
    /// `send_failed`.
    SendFailed(Option<SocketAddr>, Reason),
    /// `command_failed`.
    CommandFailed(Command, Reason),
    /// A send the transport refused at once.
    SendRefused(SendError),
    /// A command the transport refused at once.
    CommandRefused(CommandError),
    /// `stop_protocol`.
    Stopped(Reason),
}

/// A protocol driven by [`Act`] messages that records every [`Event`].
#[derive(Debug, Default)]
pub struct Probe {
    /// Everything that happened.
    pub events: Vec<Event>,
    /// Send every datagram back to its sender.
    pub echo: bool,
    /// Acts run in `start_protocol`.
    pub on_start: Vec<Act>,
    /// Acts run on the first refusal.
    pub on_refused: Vec<Act>,
    /// Close after this many datagrams.
    pub close_after: Option<usize>,
}

impl Probe {
    /// The payloads received, in order.
    pub fn payloads(&self) -> Vec<Bytes> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Datagram { data, .. } => Some(data.clone()),
                _ => None,
            })
            .collect()
    }

    /// How many datagrams arrived.
    pub fn received(&self) -> usize {
        self.payloads().len()
    }

    fn act(&mut self, act: Act, tx: &mut DatagramTransport<'_>) {
        let sent = match act {
            Act::Send(data) => tx.send(data),
            Act::SendTo(data, to) => tx.send_to(data, to),
            other => {
                let done = match other {
                    Act::Connect(peer) => tx.connect(peer),
                    Act::Disconnect => tx.disconnect(),
                    Act::Join(group, interface) => tx.join_group(group, interface),
                    Act::JoinSource(group, source, interface) => {
                        tx.join_ssm(group, source, interface)
                    }
                    Act::OutgoingInterface(interface) => tx.set_outgoing_interface(interface),
                    Act::Leave(group) => tx.leave_group(group, Default::default()),
                    Act::Loopback(on) => tx.set_loopback(on),
                    Act::Ttl(ttl) => tx.set_ttl(ttl),
                    Act::CloseAfter(delay) => {
                        tx.call_later(delay);
                        Ok(())
                    }
                    Act::Close => {
                        tx.close();
                        Ok(())
                    }
                    Act::Send(_) | Act::SendTo(..) => Ok(()),
                };
                if let Err(err) = done {
                    self.events.push(Event::CommandRefused(err));
                }
                Ok(())
            }
        };
        if let Err(err) = sent {
            self.events.push(Event::SendRefused(err));
        }
    }
}

impl DatagramProtocol for Probe {
    type Message = Act;

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.events
            .push(Event::Started(tx.local().expect("started")));
        for act in std::mem::take(&mut self.on_start) {
            self.act(act, tx);
        }
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if self.echo {
            if let Err(err) = tx.send_to(data.clone(), from) {
                self.events.push(Event::SendRefused(err));
            }
        }
        self.events.push(Event::Datagram {
            data,
            from,
            truncated,
        });
        if self.close_after.is_some_and(|n| self.received() >= n) {
            tx.close();
        }
    }

    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        self.events.push(Event::Refused);
        for act in std::mem::take(&mut self.on_refused) {
            self.act(act, tx);
        }
    }

    fn send_failed(
        &mut self,
        to: Option<SocketAddr>,
        reason: &Reason,
        _: &mut DatagramTransport<'_>,
    ) {
        self.events.push(Event::SendFailed(to, reason.clone()));
    }

    fn command_failed(
        &mut self,
        command: &Command,
        reason: &Reason,
        _: &mut DatagramTransport<'_>,
    ) {
        self.events
            .push(Event::CommandFailed(command.clone(), reason.clone()));
    }

    fn timer_fired(&mut self, _: loomwork::TimerId, tx: &mut DatagramTransport<'_>) {
        tx.close();
    }

    fn message(&mut self, act: Act, tx: &mut DatagramTransport<'_>) {
        self.act(act, tx);
    }

    fn stop_protocol(&mut self, reason: &Reason) {
        self.events.push(Event::Stopped(reason.clone()));
    }
}
