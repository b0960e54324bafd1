//! `StreamNetwork`: servers, clients and reconnecting connectors joined in memory, in virtual
//! time, with seeded faults; the stream twin of the datagram
//! [`Network`](crate::datagram::network::Network).

mod erased;
mod stepping;
#[cfg(test)]
mod tests;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use crate::connector::{self, ClientFactory, Connector};
use crate::rand::SplitMix64;
use crate::reason::Reason;
use crate::stream::{Config, Connection, Handle, Protocol, ServerFactory};
use crate::testing::Wire;
use crate::time::Instant;

use erased::{AnyConnector, AnyServerFactory, Driven, Endpoint, ServerFactoryBox};

/// How a [`StreamNetwork`] moves bytes, and which faults it injects.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Bytes in flight per direction of a connection, like a loopback socket pair's kernel
    /// buffers: a reader that stops reading fills this, then its writer's queue grows and
    /// backpressure follows. Default 256 KiB.
    pub wire_capacity: usize,
    /// Largest chunk handed to one `handle_data`. Default 64 KiB.
    pub max_read: usize,
    /// Messages and controls posted through a connection's [`Handle`] that it is handed per
    /// step (a runtime's per-turn batch): a flood of posts interleaves with the wire instead of
    /// landing in the write queue all at once. Default 64.
    pub deliveries_per_step: usize,
    /// Seed of every random choice the faults make: the same seed and the same calls give the
    /// same run.
    pub seed: u64,
    /// Faults injected at random; none by default.
    pub faults: Faults,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            wire_capacity: 256 * 1024,
            max_read: 64 * 1024,
            deliveries_per_step: 64,
            seed: 1,
            faults: Faults::default(),
        }
    }
}

/// Faults a [`StreamNetwork`] injects, drawn from its seeded generator
/// ([`NetworkConfig::seed`]). Every probability is in `[0, 1]` and 0 by default; a fault
/// whose probability is 0 draws nothing from the generator.
///
/// A *step* is one round of the network's loop in which a connection moved bytes; a
/// connection that is idle is never reset or stalled at random.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Probability that a connection attempt to a listening address is refused
    /// ([`Reason::Refused`]), as a full accept backlog would.
    pub refuse: f64,
    /// Probability, per connection and per step in which it moved bytes, that it is reset:
    /// both sides get `connection_lost` with [`Reason::Reset`] and bytes in flight are lost.
    pub reset_per_step: f64,
    /// Probability, per [`reset_block`](Self::reset_block) bytes a connection moves (both
    /// directions counted), that it is reset.
    pub reset_per_block: f64,
    /// The byte count [`reset_per_block`](Self::reset_per_block) is per. Default 4 KiB.
    pub reset_block: usize,
    /// Probability, per direction of a connection and per step in which bytes were written
    /// into it, that the direction stalls for [`stall_for`](Self::stall_for): its bytes, EOF
    /// and reset are held (the writer fills the wire up to its capacity), then delivered in
    /// order.
    pub stall: f64,
    /// How long an injected stall lasts. Default 100 ms.
    pub stall_for: Duration,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            refuse: 0.0,
            reset_per_step: 0.0,
            reset_per_block: 0.0,
            reset_block: 4096,
            stall: 0.0,
            stall_for: Duration::from_millis(100),
        }
    }
}

/// Counters of a [`StreamNetwork`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamNetworkStats {
    /// Connection attempts that reached a listener and were accepted (a server factory that
    /// then refuses the peer counts too: the socket was accepted and closed).
    pub connects: u64,
    /// Connection attempts refused, for whatever cause (nobody listening, a refusing
    /// listener, an injected refusal).
    pub refusals: u64,
    /// Of [`refusals`](Self::refusals), those [`Faults::refuse`] injected.
    pub refusals_injected: u64,
    /// Connections reset by [`StreamNetwork::reset`] or by the faults.
    pub resets_injected: u64,
    /// Directions stalled by [`StreamNetwork::stall`] or by the faults.
    pub stalls_injected: u64,
    /// Bytes writers handed to the network, both directions, every connection.
    pub bytes_moved: u64,
    /// Messages and controls handed to connections from their handles' mailboxes.
    pub deliveries: u64,
}

/// A listener of a [`StreamNetwork`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerId(usize);

/// A connector (a reconnecting client) of a [`StreamNetwork`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(usize);

/// One end of a connection in a [`StreamNetwork`]; also its [`Handle`]'s id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(u64);

impl ConnId {
    /// The other end of the same connection.
    pub fn peer(self) -> ConnId {
        ConnId(self.0 ^ 1)
    }

    /// True for the end that dialed, false for the end a listener accepted.
    pub fn is_client(self) -> bool {
        self.0 & 1 == CLIENT as u64
    }

    /// The number its [`Handle::id`] carries.
    pub fn get(self) -> u64 {
        self.0
    }

    fn new(link: usize, side: usize) -> Self {
        ConnId((link as u64) << 1 | side as u64)
    }

    fn link(self) -> usize {
        (self.0 >> 1) as usize
    }

    fn side(self) -> usize {
        (self.0 & 1) as usize
    }
}

/// Which way bytes go on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the end that dialed to the end that accepted.
    ToServer,
    /// From the end that accepted to the end that dialed.
    ToClient,
}

/// The end a link keeps at index 0 of its arrays: the dialer.
const CLIENT: usize = 0;
/// The accepting end, index 1.
const SERVER: usize = 1;

/// Rounds [`StreamNetwork::settle`] runs at most without time passing.
const MAX_SETTLE_STEPS: usize = 1_000_000;
/// Events the run methods handle at most before giving up: a protocol that keeps itself
/// busy forever (a periodic timer) would otherwise never let `run_until_idle` return.
const MAX_EVENTS: usize = 10_000_000;

/// Servers, clients and reconnecting [`Connector`]s joined in memory, in virtual time, with
/// seeded faults (refused connects, resets, stalls): stream protocols are testable together,
/// many connections at once, without sockets. The stream twin of the datagram
/// [`Network`](crate::datagram::network::Network).
///
/// - [`listen`](Self::listen) runs a [`ServerFactory`] on an address;
///   [`connect`](Self::connect) runs a [`ClientFactory`] through the real [`Connector`]
///   machine (timeouts, backoff, reconnects); [`dial`](Self::dial) connects a single protocol.
/// - Connections are made at once (no latency), server side first; bytes move over two
///   [`Wire`]s per connection, a bounded chunk per read. Closing with input unread resets, as
///   on a real socket.
/// - Every connection has a working [`Handle`]: posts and close/abort requests are handed to
///   it in order, [`deliveries_per_step`](NetworkConfig::deliveries_per_step) per step.
/// - Time moves only in [`run_until`](Self::run_until), [`run_for`](Self::run_for) and
///   [`run_until_idle`](Self::run_until_idle), which jump from one deadline to the next
///   after everything that can move has moved.
/// - Faults: [`reset`](Self::reset), [`stall`](Self::stall) and
///   [`set_refusing`](Self::set_refusing) on demand, [`Faults`] at random from the seed.
///
/// Everything is deterministic: the same seed and the same calls give the same run.
///
/// Ended connections are kept, with their protocols, so that a test can read them after the
/// run ([`protocol`](Self::protocol), [`reason`](Self::reason)); only their wires are freed.
/// A network is meant to live for one test.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::connector::{self, ClientFactory, Retry};
/// use loomwork::stream::{Config, Protocol, Transport};
/// use loomwork::testing::{NetworkConfig, StreamNetwork};
/// use loomwork::Reason;
/// use std::time::Duration;
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, d: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(d.split().freeze());
///     }
/// }
/// /// Sends "ping", closes once it has the echo.
/// #[derive(Default)]
/// struct Ping(Vec<u8>);
/// impl Protocol for Ping {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         let _ = tx.write_slice(b"ping");
///     }
///     fn data_received(&mut self, d: &mut BytesMut, tx: &mut Transport<'_>) {
///         self.0.extend_from_slice(&d.split());
///         if self.0.len() == 4 { tx.lose_connection(); }
///     }
/// }
/// /// Retries refused attempts with the backoff; stops once a connection has ended.
/// #[derive(Default)]
/// struct Patient { failures: Vec<Reason> }
/// impl ClientFactory for Patient {
///     type Protocol = Ping;
///     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Ping> {
///         Some(Ping::default())
///     }
///     fn connection_failed(&mut self, reason: &Reason) -> Retry {
///         self.failures.push(reason.clone());
///         Retry::Backoff
///     }
/// }
///
/// let mut net = StreamNetwork::new(NetworkConfig::default());
/// let server = net.listen("10.0.0.1:7".parse().unwrap(), |_| Echo, Config::default());
/// let addr = net.listener_addr(server).unwrap();
/// // Three single clients.
/// let clients: Vec<_> = (0..3)
///     .map(|_| net.dial(addr, Ping::default(), Config::default()).unwrap())
///     .collect();
/// // A connector whose first attempt is refused: it retries after its backoff.
/// net.set_refusing(server, true);
/// let patient = net.connect(addr, Patient::default(), connector::Config::default());
/// net.run_for(Duration::from_millis(10));
/// net.set_refusing(server, false);
/// net.run_until_idle();
///
/// for id in clients {
///     assert_eq!(net.protocol::<Ping>(id).unwrap().0, b"ping");
///     assert_eq!(net.reason(id), Some(Reason::Done));
/// }
/// let connector = net.connector::<Patient>(patient).unwrap();
/// assert_eq!(connector.factory().failures, [Reason::Refused]);
/// assert_eq!(connector.attempts(), 2);
/// assert!(connector.is_ended());
/// assert_eq!(net.client_protocol::<Ping>(patient).unwrap().0, b"ping");
/// assert_eq!(net.server_connections(server).len(), 4);
/// assert_eq!(net.stats().refusals, 1);
/// ```
pub struct StreamNetwork {
    now: Instant,
    config: NetworkConfig,
    rng: SplitMix64,
    listeners: Vec<Listener>,
    clients: Vec<Client>,
    links: Vec<Link>,
    next_port: u16,
    stats: StreamNetworkStats,
}

struct Listener {
    addr: SocketAddr,
    factory: Box<dyn AnyServerFactory>,
    config: Config,
    open: bool,
    refusing: bool,
    connections: Vec<ConnId>,
}

struct Client {
    addr: SocketAddr,
    /// `None` once taken with [`StreamNetwork::take_factory`].
    connector: Option<Box<dyn AnyConnector>>,
    config: Config,
    connections: Vec<ConnId>,
}

/// One connection: its two ends, a wire each way, and what the network has reported.
struct Link {
    /// The connector that dialed, if any.
    client: Option<usize>,
    listener: usize,
    client_addr: SocketAddr,
    /// `[client, server]`; `None` for an end whose factory refused the connection.
    ends: [Option<Box<dyn Endpoint>>; 2],
    /// `[to server, to client]`.
    wires: [Wire; 2],
    /// Per direction: held until then.
    stalled_until: [Option<Instant>; 2],
    bytes: u64,
    /// Per end: its closing has been reported to its connector or factory.
    reported: [bool; 2],
}

impl Link {
    fn is_done(&self) -> bool {
        self.reported == [true, true]
    }

    fn is_open(&self, side: usize) -> bool {
        self.ends[side].as_ref().is_some_and(|e| !e.is_closed())
    }
}

impl StreamNetwork {
    /// An empty network at time zero.
    pub fn new(config: NetworkConfig) -> Self {
        StreamNetwork {
            now: Instant::ZERO,
            rng: SplitMix64::new(config.seed),
            config,
            listeners: Vec::new(),
            clients: Vec::new(),
            links: Vec::new(),
            next_port: 0,
            stats: StreamNetworkStats::default(),
        }
    }

    // ----- servers ------------------------------------------------------------------------

    /// Listens on `addr` with `factory`, each accepted connection set up with `config`. Port
    /// 0 picks a free port: read it back with [`listener_addr`](Self::listener_addr).
    ///
    /// # Panics
    /// If another open listener has the same address (a test's own mistake).
    pub fn listen<F>(&mut self, addr: SocketAddr, factory: F, config: Config) -> ListenerId
    where
        F: ServerFactory + 'static,
        F::Protocol: 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let addr = if addr.port() == 0 {
            SocketAddr::new(addr.ip(), 10_000 + self.next_port())
        } else {
            addr
        };
        assert!(
            self.open_listener(addr).is_none(),
            "StreamNetwork::listen: {addr} is in use"
        );
        self.listeners.push(Listener {
            addr,
            factory: Box::new(ServerFactoryBox(factory)),
            config,
            open: true,
            refusing: false,
            connections: Vec::new(),
        });
        ListenerId(self.listeners.len() - 1)
    }

    /// Stops listening: new attempts are refused; connections already accepted go on (and
    /// their factory still hears when they close).
    pub fn unlisten(&mut self, listener: ListenerId) {
        if let Some(l) = self.listeners.get_mut(listener.0) {
            l.open = false;
        }
    }

    /// While `refusing`, attempts to `listener` are refused ([`Reason::Refused`]), as with a
    /// full accept backlog; connections already accepted are untouched.
    pub fn set_refusing(&mut self, listener: ListenerId, refusing: bool) {
        if let Some(l) = self.listeners.get_mut(listener.0) {
            l.refusing = refusing;
        }
    }

    /// The address `listener` listens (or listened) on.
    pub fn listener_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.listeners.get(listener.0).map(|l| l.addr)
    }

    /// Every connection `listener` accepted and built a protocol for, in order, ended ones
    /// included (see [`is_closed`](Self::is_closed)).
    pub fn server_connections(&self, listener: ListenerId) -> &[ConnId] {
        self.listeners
            .get(listener.0)
            .map_or(&[], |l| &l.connections[..])
    }

    /// The factory of `listener`, if it is an `F`.
    pub fn server_factory<F: ServerFactory + 'static>(&self, listener: ListenerId) -> Option<&F> {
        let l = self.listeners.get(listener.0)?;
        l.factory.factory_any().downcast_ref()
    }

    /// The factory of `listener`, mutably, if it is an `F`.
    pub fn server_factory_mut<F: ServerFactory + 'static>(
        &mut self,
        listener: ListenerId,
    ) -> Option<&mut F> {
        let l = self.listeners.get_mut(listener.0)?;
        l.factory.factory_any_mut().downcast_mut()
    }

    // ----- clients ------------------------------------------------------------------------

    /// Starts a [`Connector`] around `factory` towards `addr`: it dials on the next step,
    /// and retries, times out and reconnects as the connector machine and its factory
    /// decide. Its connections use the default [`Config`].
    pub fn connect<C>(
        &mut self,
        addr: SocketAddr,
        factory: C,
        config: connector::Config,
    ) -> ClientId
    where
        C: ClientFactory + 'static,
        C::Protocol: 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        self.connect_with(addr, factory, config, Config::default())
    }

    /// [`connect`](Self::connect), with `connection` for each connection it makes.
    pub fn connect_with<C>(
        &mut self,
        addr: SocketAddr,
        factory: C,
        config: connector::Config,
        connection: Config,
    ) -> ClientId
    where
        C: ClientFactory + 'static,
        C::Protocol: 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        let mut connector = Connector::new(factory, config);
        connector.start(self.now);
        self.clients.push(Client {
            addr,
            connector: Some(Box::new(connector)),
            config: connection,
            connections: Vec::new(),
        });
        ClientId(self.clients.len() - 1)
    }

    /// Connects `protocol` to `addr` at once, without a connector: the client end's id, or
    /// why the attempt failed ([`Reason::Refused`]; the protocol is dropped unused then).
    pub fn dial<P>(
        &mut self,
        addr: SocketAddr,
        protocol: P,
        config: Config,
    ) -> Result<ConnId, Reason>
    where
        P: Protocol + 'static,
        P::Message: Send + 'static,
    {
        let listener = self.admit(addr)?;
        let mut protocol = Some(protocol);
        let id = self.accept(listener, None, |now, id, local, peer| {
            let conn = Connection::new(protocol.take()?, config.clone());
            Some(Driven::start(conn, now, id, local, peer))
        });
        Ok(id)
    }

    /// Every connection `client`'s connector made, in order, ended ones included.
    pub fn client_connections(&self, client: ClientId) -> &[ConnId] {
        self.clients
            .get(client.0)
            .map_or(&[], |c| &c.connections[..])
    }

    /// The protocol of `client`'s latest connection, if it is a `P`.
    pub fn client_protocol<P: Protocol + 'static>(&self, client: ClientId) -> Option<&P> {
        let last = *self.client_connections(client).last()?;
        self.protocol(last)
    }

    /// `client`'s connector (its state, attempts and factory), if its factory is a `C`.
    pub fn connector<C: ClientFactory + 'static>(&self, client: ClientId) -> Option<&Connector<C>> {
        let c = self.clients.get(client.0)?.connector.as_ref()?;
        c.connector_any().downcast_ref()
    }

    /// `client`'s connector, mutably (to [`stop_trying`](Connector::stop_trying), say).
    pub fn connector_mut<C: ClientFactory + 'static>(
        &mut self,
        client: ClientId,
    ) -> Option<&mut Connector<C>> {
        let c = self.clients.get_mut(client.0)?.connector.as_mut()?;
        c.connector_any_mut().downcast_mut()
    }

    /// Removes `client`'s connector and gives back its factory, if it is a `C`. Its
    /// connections go on, unreported.
    pub fn take_factory<C: ClientFactory + 'static>(&mut self, client: ClientId) -> Option<C> {
        let slot = &mut self.clients.get_mut(client.0)?.connector;
        if !slot.as_ref()?.connector_any().is::<Connector<C>>() {
            return None;
        }
        let connector = slot.take()?.into_any().downcast::<Connector<C>>().ok()?;
        Some(connector.into_factory())
    }

    /// True once `client`'s connector will never dial again (or was taken) and every
    /// connection it made has closed at both ends.
    pub fn is_client_finished(&self, client: ClientId) -> bool {
        let Some(c) = self.clients.get(client.0) else {
            return true;
        };
        c.connector.as_ref().map_or(true, |c| c.is_ended())
            && c.connections
                .iter()
                .all(|&id| self.is_closed(id) && self.is_closed(id.peer()))
    }

    // ----- connections --------------------------------------------------------------------

    /// The protocol of connection end `id`, if it is a `P`.
    pub fn protocol<P: Protocol + 'static>(&self, id: ConnId) -> Option<&P> {
        self.connection::<P>(id).map(Connection::protocol)
    }

    /// The protocol of connection end `id`, mutably, if it is a `P`.
    pub fn protocol_mut<P: Protocol + 'static>(&mut self, id: ConnId) -> Option<&mut P> {
        self.connection_mut::<P>(id).map(Connection::protocol_mut)
    }

    /// The connection driving end `id` (its stats, say), if its protocol is a `P`.
    pub fn connection<P: Protocol + 'static>(&self, id: ConnId) -> Option<&Connection<P>> {
        self.end(id)?.connection_any().downcast_ref()
    }

    /// The connection driving end `id`, mutably, if its protocol is a `P`. What its inputs
    /// cause is carried out on the next step.
    pub fn connection_mut<P: Protocol + 'static>(
        &mut self,
        id: ConnId,
    ) -> Option<&mut Connection<P>> {
        let end = self.links.get_mut(id.link())?.ends[id.side()].as_mut()?;
        end.connection_any_mut().downcast_mut()
    }

    /// The [`Handle`] of end `id`, if its protocol's message type is `M`.
    pub fn handle<M: 'static>(&self, id: ConnId) -> Option<Handle<M>> {
        self.end(id)?.handle_any().downcast_ref().cloned()
    }

    /// Posts `message` to end `id` through its handle (delivered on the next step); gives it
    /// back if the connection has ended or its message type is not `M`.
    pub fn post<M: 'static>(&mut self, id: ConnId, message: M) -> Result<(), M> {
        match self.handle::<M>(id) {
            Some(handle) => handle.send(message),
            None => Err(message),
        }
    }

    /// True once end `id` is closed (or was never built: a factory refused it).
    pub fn is_closed(&self, id: ConnId) -> bool {
        self.end(id).map_or(true, |e| e.is_closed())
    }

    /// Why end `id` ended, once it has.
    pub fn reason(&self, id: ConnId) -> Option<Reason> {
        self.end(id)?.reason().cloned()
    }

    /// Closes end `id` gracefully, as its owner would (flush, then close); false if it is
    /// already closed.
    pub fn close(&mut self, id: ConnId) -> bool {
        let now = self.now;
        match self.end_mut(id) {
            Some(end) if !end.is_closed() => {
                end.close(now);
                true
            }
            _ => false,
        }
    }

    /// Aborts end `id` (queue discarded, the peer sees a reset); false if it is already
    /// closed.
    pub fn abort(&mut self, id: ConnId) -> bool {
        let now = self.now;
        match self.end_mut(id) {
            Some(end) if !end.is_closed() => {
                end.abort(now);
                true
            }
            _ => false,
        }
    }

    /// Resets the connection of end `id` now, as a middlebox would: both ends still open get
    /// `connection_lost` with [`Reason::Reset`], bytes in flight are lost. False if both
    /// ends were already closed.
    pub fn reset(&mut self, id: ConnId) -> bool {
        self.reset_link(id.link())
    }

    /// Holds the bytes (and EOF, and reset) going `direction` on the connection of end `id`
    /// until `until`, then delivers them in order; its writer fills the wire meanwhile and
    /// then queues, as behind a stalled path. A later `until` replaces an earlier one.
    pub fn stall(&mut self, id: ConnId, direction: Direction, until: Instant) {
        if let Some(link) = self.links.get_mut(id.link()) {
            link.stalled_until[direction as usize] = Some(until);
            self.stats.stalls_injected += 1;
        }
    }

    /// Connection ends not closed yet, over the whole network.
    pub fn open_connections(&self) -> usize {
        self.links
            .iter()
            .map(|l| usize::from(l.is_open(CLIENT)) + usize::from(l.is_open(SERVER)))
            .sum()
    }

    /// Connectors that may still dial (neither ended nor taken).
    pub fn active_connectors(&self) -> usize {
        self.clients
            .iter()
            .filter(|c| c.connector.as_ref().is_some_and(|c| !c.is_ended()))
            .count()
    }

    /// Replaces the random faults from now on (the generator carries on from where it is).
    pub fn set_faults(&mut self, faults: Faults) {
        self.config.faults = faults;
    }

    // ----- time ---------------------------------------------------------------------------

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The counters.
    pub fn stats(&self) -> &StreamNetworkStats {
        &self.stats
    }

    /// Runs until nothing is left to happen: no bytes can move, no timer, retry or stall
    /// end is pending (bounded, against a protocol that keeps itself busy forever). Returns
    /// the time reached.
    pub fn run_until_idle(&mut self) -> Instant {
        self.run_until(Instant::MAX)
    }

    /// Runs everything due up to `deadline`, jumping the clock from one deadline to the next,
    /// then sets the clock to `deadline` (unless it is [`Instant::MAX`]). Returns the time.
    pub fn run_until(&mut self, deadline: Instant) -> Instant {
        self.run_until_condition(deadline, |_| false);
        self.now
    }

    /// Runs for `duration` of virtual time, as [`run_until`](Self::run_until).
    pub fn run_for(&mut self, duration: Duration) -> Instant {
        self.run_until(self.now.saturating_add(duration))
    }

    /// Runs as [`run_until`](Self::run_until) but stops as soon as `done` holds, checked
    /// whenever the network has settled (before each jump of the clock). True if it held;
    /// the clock is then left where it was.
    pub fn run_until_condition(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&StreamNetwork) -> bool,
    ) -> bool {
        for _ in 0..MAX_EVENTS {
            self.settle();
            if done(self) {
                return true;
            }
            let Some(at) = self.next_event().filter(|at| *at <= deadline) else {
                if deadline != Instant::MAX {
                    self.now = self.now.max(deadline);
                }
                self.settle();
                return done(self);
            };
            self.now = self.now.max(at);
            self.fire_due();
        }
        false
    }

    /// One round at the current time: connectors dial, mailboxes deliver a batch, bytes move
    /// both ways on every connection, faults are drawn, ended connections are reported to
    /// their connector or factory. True if anything happened.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        for client in 0..self.clients.len() {
            while let Some(action) = self.clients[client]
                .connector
                .as_mut()
                .and_then(|c| c.poll_action())
            {
                progressed = true;
                // Connects complete at once: there is never an attempt to cancel.
                if action == connector::Action::Dial {
                    self.dial_for(client);
                }
            }
        }
        for index in 0..self.links.len() {
            if self.links[index].is_done() {
                continue;
            }
            progressed |= self.step_link(index, now);
        }
        progressed |= self.report_closed();
        progressed
    }
}

impl Default for StreamNetwork {
    /// An empty network with the default [`NetworkConfig`].
    fn default() -> Self {
        StreamNetwork::new(NetworkConfig::default())
    }
}

impl core::fmt::Debug for StreamNetwork {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StreamNetwork")
            .field("now", &self.now)
            .field("listeners", &self.listeners.len())
            .field("clients", &self.clients.len())
            .field("connections", &self.links.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}
