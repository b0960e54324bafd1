//! An in-memory datagram network with a virtual clock: endpoints exchange datagrams over a
//! seeded lossy, reordering link, with the kernel's connected-mode filtering, ICMP refusals
//! and multicast groups emulated, so datagram protocols are testable without sockets
//! (Twisted TH-5, the `iosim` spirit). Enabled by the `testing` feature.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::any::Any;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::{Action, Command, Config, DatagramProtocol, Endpoint};
use crate::rand::SplitMix64;
use crate::time::Instant;

/// How the simulated link treats each datagram.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way delay of every datagram.
    pub latency: Duration,
    /// Extra delay drawn uniformly from `[0, jitter)` per datagram: a jitter larger than the
    /// gap between two sends reorders them.
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a datagram is lost.
    pub loss: f64,
    /// Seed of the link's random choices, so every run replays exactly.
    pub seed: u64,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency: Duration::from_micros(100),
            jitter: Duration::ZERO,
            loss: 0.0,
            seed: 1,
        }
    }
}

/// Counters of a [`Network`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Datagrams endpoints sent (each multicast copy counts once).
    pub sent: u64,
    /// Datagrams delivered to an endpoint.
    pub delivered: u64,
    /// Datagrams the link lost.
    pub lost: u64,
    /// Datagrams nobody was listening for (refused or silently dropped).
    pub unroutable: u64,
    /// Datagrams a connected endpoint's "kernel" dropped because of their sender.
    pub filtered: u64,
}

/// Which endpoint of a [`Network`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(usize);

/// An in-memory network of datagram [`Endpoint`]s driven in virtual time.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::datagram::network::{LinkConfig, Network};
/// use loomwork::datagram::{Config, DatagramProtocol, DatagramTransport};
///
/// struct Echo;
/// impl DatagramProtocol for Echo {
///     type Message = ();
///     fn datagram_received(&mut self, data: Bytes, from: std::net::SocketAddr, _: bool,
///                          tx: &mut DatagramTransport<'_>) {
///         let _ = tx.send_to(data, from);
///     }
/// }
/// #[derive(Default)]
/// struct Ping { answers: usize }
/// impl DatagramProtocol for Ping {
///     type Message = std::net::SocketAddr;
///     fn datagram_received(&mut self, _: Bytes, _: std::net::SocketAddr, _: bool,
///                          _: &mut DatagramTransport<'_>) {
///         self.answers += 1;
///     }
///     fn message(&mut self, to: std::net::SocketAddr, tx: &mut DatagramTransport<'_>) {
///         let _ = tx.send_to(&b"ping"[..], to);
///     }
/// }
///
/// let mut net = Network::new(LinkConfig::default());
/// let server = "10.0.0.1:7".parse().unwrap();
/// net.add(server, Echo, Config::default());
/// let client = net.add("10.0.0.2:5000".parse().unwrap(), Ping::default(), Config::default());
/// net.post::<Ping>(client, server);
/// net.run_until_idle();
/// assert_eq!(net.protocol::<Ping>(client).unwrap().answers, 1);
/// ```
pub struct Network {
    now: Instant,
    link: LinkConfig,
    rng: SplitMix64,
    nodes: Vec<Node>,
    in_flight: BTreeMap<(Instant, u64), Delivery>,
    next_seq: u64,
    stats: NetworkStats,
}

/// What the emulated kernel knows about one socket.
struct Node {
    endpoint: Box<dyn Driven>,
    local: SocketAddr,
    peer: Option<SocketAddr>,
    groups: Vec<IpAddr>,
    loopback: bool,
    receive_size: usize,
}

enum Delivery {
    Datagram {
        to: usize,
        data: Bytes,
        from: SocketAddr,
    },
    Refused {
        to: usize,
    },
}

/// The steps after which [`Network::run_until_idle`] gives up: a protocol that keeps
/// itself busy forever (a periodic timer) would otherwise never let it return.
const MAX_STEPS: usize = 10_000_000;

impl Network {
    /// An empty network at time zero.
    pub fn new(link: LinkConfig) -> Self {
        let rng = SplitMix64::new(link.seed);
        Network {
            now: Instant::ZERO,
            link,
            rng,
            nodes: Vec::new(),
            in_flight: BTreeMap::new(),
            next_seq: 0,
            stats: NetworkStats::default(),
        }
    }

    /// Binds an endpoint running `protocol` to `addr` and starts it.
    pub fn add<P>(&mut self, addr: SocketAddr, protocol: P, config: Config) -> NodeId
    where
        P: DatagramProtocol + 'static,
        P::Message: 'static,
    {
        let receive_size = config.receive_size;
        let mut endpoint = Endpoint::new(protocol, config);
        endpoint.handle_started(self.now, addr);
        self.nodes.push(Node {
            endpoint: Box::new(endpoint),
            local: addr,
            peer: None,
            groups: Vec::new(),
            loopback: true,
            receive_size,
        });
        let id = self.nodes.len() - 1;
        self.flush(id);
        NodeId(id)
    }

    /// Posts a message to an endpoint's protocol. Returns it when `id` does not run a `P`.
    pub fn post<P>(&mut self, id: NodeId, message: P::Message) -> Result<(), P::Message>
    where
        P: DatagramProtocol + 'static,
        P::Message: 'static,
    {
        let now = self.now;
        let Some(endpoint) = self.endpoint_mut::<P>(id) else {
            return Err(message);
        };
        endpoint.handle_message(now, message);
        self.flush(id.0);
        Ok(())
    }

    /// Closes an endpoint gracefully, as a runtime's `stop` would.
    pub fn close(&mut self, id: NodeId) {
        let now = self.now;
        if let Some(node) = self.nodes.get_mut(id.0) {
            node.endpoint.close(now);
            self.flush(id.0);
        }
    }

    /// The protocol of endpoint `id`, if it runs a `P`.
    pub fn protocol<P>(&self, id: NodeId) -> Option<&P>
    where
        P: DatagramProtocol + 'static,
        P::Message: 'static,
    {
        let node = self.nodes.get(id.0)?;
        let endpoint = node.endpoint.as_any().downcast_ref::<Endpoint<P>>()?;
        Some(endpoint.protocol())
    }

    /// The endpoint `id`, if it runs a `P`.
    pub fn endpoint_mut<P>(&mut self, id: NodeId) -> Option<&mut Endpoint<P>>
    where
        P: DatagramProtocol + 'static,
        P::Message: 'static,
    {
        let node = self.nodes.get_mut(id.0)?;
        node.endpoint.as_any_mut().downcast_mut::<Endpoint<P>>()
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Traffic counters.
    pub fn stats(&self) -> &NetworkStats {
        &self.stats
    }

    /// Runs until nothing is in flight and no endpoint has a timer set (or a step limit
    /// guards against a protocol that keeps itself busy forever); returns the time reached.
    pub fn run_until_idle(&mut self) -> Instant {
        self.run_until(Instant::MAX)
    }

    /// Runs every event due up to `deadline`, jumping the clock from one to the next, then
    /// sets the clock to `deadline` (unless it is `Instant::MAX`).
    pub fn run_until(&mut self, deadline: Instant) -> Instant {
        for _ in 0..MAX_STEPS {
            let Some(at) = self.next_event().filter(|at| *at <= deadline) else {
                if deadline != Instant::MAX {
                    self.now = self.now.max(deadline);
                }
                return self.now;
            };
            self.now = self.now.max(at);
            self.step();
        }
        self.now
    }

    fn next_event(&self) -> Option<Instant> {
        let flight = self.in_flight.keys().next().map(|(at, _)| *at);
        let timers = self
            .nodes
            .iter()
            .filter_map(|n| n.endpoint.next_timeout())
            .min();
        match (flight, timers) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Delivers what is due now and fires due timers.
    fn step(&mut self) {
        let now = self.now;
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > now {
                break;
            }
            match entry.remove() {
                Delivery::Datagram { to, data, from } => self.deliver(to, data, from),
                Delivery::Refused { to } => {
                    if let Some(node) = self.nodes.get_mut(to) {
                        node.endpoint
                            .handle_send_error(now, None, crate::Reason::Refused);
                    }
                    self.flush(to);
                }
            }
        }
        for id in 0..self.nodes.len() {
            let due = self.nodes[id]
                .endpoint
                .next_timeout()
                .is_some_and(|t| t <= now);
            if due {
                self.nodes[id].endpoint.handle_timeout(now);
                self.flush(id);
            }
        }
    }

    fn deliver(&mut self, to: usize, data: Bytes, from: SocketAddr) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(to) else {
            return;
        };
        // The kernel's own filter on a connected socket (CU-1).
        if node.peer.is_some_and(|peer| peer != from) {
            self.stats.filtered += 1;
            return;
        }
        let truncated = data.len() > node.receive_size;
        let data = if truncated {
            data.slice(..node.receive_size)
        } else {
            data
        };
        self.stats.delivered += 1;
        node.endpoint.handle_datagram(now, data, from, truncated);
        self.flush(to);
    }

    /// Carries out endpoint `id`'s outputs, as a runtime would.
    fn flush(&mut self, id: usize) {
        while let Some(output) = self
            .nodes
            .get_mut(id)
            .and_then(|n| n.endpoint.poll_action())
        {
            match output {
                Action::Send(transmit) => self.route(id, transmit.data, transmit.to),
                Action::Command(command) => self.apply(id, command),
                Action::Close => {
                    if let Some(node) = self.nodes.get_mut(id) {
                        node.groups.clear();
                        node.peer = None;
                        // A closed socket's port is free: nothing reaches it any more.
                        node.local = SocketAddr::new(node.local.ip(), 0);
                    }
                }
            }
        }
    }

    fn apply(&mut self, id: usize, command: Command) {
        let now = self.now;
        let node = &mut self.nodes[id];
        match &command {
            Command::Connect(peer) => node.peer = Some(*peer),
            Command::Disconnect => node.peer = None,
            Command::JoinGroup { group, .. } if !node.groups.contains(group) => {
                node.groups.push(*group);
            }
            Command::LeaveGroup { group, .. } => node.groups.retain(|g| g != group),
            Command::SetLoopback(on) => node.loopback = *on,
            _ => {}
        }
        node.endpoint.handle_command_result(now, command, Ok(()));
    }

    fn route(&mut self, from_id: usize, data: Bytes, to: Option<SocketAddr>) {
        let sender = &self.nodes[from_id];
        let from = sender.local;
        let Some(to) = to.or(sender.peer) else { return };
        if to.ip().is_multicast() {
            let members: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| {
                    let n = &self.nodes[i];
                    n.groups.contains(&to.ip())
                        && n.local.port() == to.port()
                        && (i != from_id || n.loopback)
                })
                .collect();
            for member in members {
                self.launch(member, data.clone(), from);
            }
            return;
        }
        match self.nodes.iter().position(|n| n.local == to) {
            Some(dest) => self.launch(dest, data, from),
            None => {
                self.stats.unroutable += 1;
                // An ICMP port-unreachable comes back; only a connected socket hears it (UD-5).
                if self.nodes[from_id].peer == Some(to) {
                    let at = self.now + self.link.latency + self.link.latency;
                    self.schedule(at, Delivery::Refused { to: from_id });
                }
            }
        }
    }

    fn launch(&mut self, to: usize, data: Bytes, from: SocketAddr) {
        self.stats.sent += 1;
        if self.link.loss > 0.0 && self.rng.next_f64() < self.link.loss {
            self.stats.lost += 1;
            return;
        }
        let jitter = self.link.jitter.mul_f64(self.rng.next_f64());
        let at = self.now + self.link.latency + jitter;
        self.schedule(at, Delivery::Datagram { to, data, from });
    }

    fn schedule(&mut self, at: Instant, delivery: Delivery) {
        self.in_flight.insert((at, self.next_seq), delivery);
        self.next_seq += 1;
    }
}

/// The endpoint methods the network drives, without its protocol type.
trait Driven: Any {
    fn handle_datagram(&mut self, now: Instant, data: Bytes, from: SocketAddr, truncated: bool);
    fn handle_send_error(&mut self, now: Instant, to: Option<SocketAddr>, reason: crate::Reason);
    fn handle_timeout(&mut self, now: Instant);
    fn handle_command_result(
        &mut self,
        now: Instant,
        command: Command,
        result: Result<(), crate::Reason>,
    );
    fn close(&mut self, now: Instant);
    fn poll_action(&mut self) -> Option<Action>;
    fn next_timeout(&self) -> Option<Instant>;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

impl<P> Driven for Endpoint<P>
where
    P: DatagramProtocol + 'static,
    P::Message: 'static,
{
    fn handle_datagram(&mut self, now: Instant, data: Bytes, from: SocketAddr, truncated: bool) {
        Endpoint::handle_datagram(self, now, data, from, truncated);
    }
    fn handle_send_error(&mut self, now: Instant, to: Option<SocketAddr>, reason: crate::Reason) {
        Endpoint::handle_send_error(self, now, to, reason);
    }
    fn handle_timeout(&mut self, now: Instant) {
        Endpoint::handle_timeout(self, now);
    }
    fn handle_command_result(
        &mut self,
        now: Instant,
        command: Command,
        result: Result<(), crate::Reason>,
    ) {
        Endpoint::handle_command_result(self, now, command, result);
    }
    fn close(&mut self, now: Instant) {
        Endpoint::close(self, now);
    }
    fn poll_action(&mut self) -> Option<Action> {
        Endpoint::poll_action(self)
    }
    fn next_timeout(&self) -> Option<Instant> {
        Endpoint::next_timeout(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}
