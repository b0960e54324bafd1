//! The in-memory runtime: a deterministic simulated network with virtual time, built from the
//! core's [`Wire`] and [`StreamEnd`]. It is the third runtime of the conformance suite and the
//! reference the real runtimes are held to.
//!
//! Every connection it drives has a working [`Handle`]: posts and close/abort requests queue
//! in the connection's mailbox and are handed to the connection as part of the network's
//! stepping, a capped batch per step, so delivery is as deterministic as the bytes are.
//!
//! A peer that never reads is modelled by the receive side, not by the writer: a connection
//! that pauses reading (`wants_read()` false) is handed nothing, so the bytes in flight towards
//! it stay on the [`Wire`] until its capacity (256 KiB, like a loopback pair's kernel buffers)
//! is reached, after which the writer's queue grows exactly as a real sender's does once a
//! stalled peer's receive window and the kernel's buffers are full.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::connector::{self, ClientFactory, Connector};
use loomwork::stream::{Config, Connection, Handle, Protocol, ServerFactory};
use loomwork::testing::{MemoryMailbox, StreamEnd, Wire};
use loomwork::{Instant, Reason};

use crate::{ClientUnderTest, Harness, ServerUnderTest};

/// Bytes in flight per direction, like a loopback socket pair's kernel buffers.
const WIRE_CAPACITY: usize = 256 * 1024;
/// Largest read handed to a connection.
const MAX_READ: usize = 64 * 1024;
/// Virtual time a `join` may take before the scenario is declared hung.
const JOIN_LIMIT: Duration = Duration::from_secs(600);
/// Mailbox deliveries handed to one connection per step: loomwork-std's per-turn batch. A
/// flood of posts then interleaves with the wire, as on the real runtimes, instead of landing
/// in the connection's write queue all at once (a chat reader would be evicted for a burst
/// that a real runtime spreads over its socket writes).
const DELIVERIES_PER_STEP: usize = 64;

/// The memory harness: cheap to create, one private network each.
#[derive(Clone, Default)]
pub struct Memory {
    world: Rc<RefCell<World>>,
}

impl Memory {
    /// A fresh network at time zero.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Default)]
struct World {
    now: Instant,
    listeners: HashMap<SocketAddr, Listener>,
    links: Vec<Link>,
    connectors: Vec<Option<Box<dyn AnyConnector>>>,
    next_port: u16,
    next_listener: u64,
    /// Ids of the connection handles given out so far.
    next_connection: u64,
}

struct Listener {
    id: u64,
    factory: Arc<Mutex<dyn AnyServerFactory>>,
    config: Config,
}

struct Link {
    connector: usize,
    listener: Option<(u64, Arc<Mutex<dyn AnyServerFactory>>)>,
    client_addr: SocketAddr,
    client: Box<dyn Endpoint>,
    /// `None` when the factory refused: the socket was accepted and closed at once.
    server: Option<Box<dyn Endpoint>>,
    up: Wire,
    down: Wire,
    client_reported: bool,
    server_reported: bool,
}

/// Type-erased server factory.
trait AnyServerFactory {
    fn build(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
        config: &Config,
    ) -> Option<Box<dyn Endpoint>>;
    fn closed(&mut self, peer: SocketAddr, reason: &Reason);
}

struct ServerFactoryBox<F>(F);

impl<F: ServerFactory> AnyServerFactory for ServerFactoryBox<F>
where
    F::Protocol: 'static,
    <F::Protocol as Protocol>::Message: Send + 'static,
{
    fn build(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
        config: &Config,
    ) -> Option<Box<dyn Endpoint>> {
        let protocol = self.0.build_protocol(peer)?;
        let conn = Connection::new(protocol, config.clone());
        Some(Driven::start(conn, now, id, local, peer))
    }
    fn closed(&mut self, peer: SocketAddr, reason: &Reason) {
        self.0.connection_closed(peer, reason);
    }
}

/// Type-erased connector.
trait AnyConnector {
    fn addr(&self) -> SocketAddr;
    fn poll_action(&mut self) -> Option<connector::Action>;
    fn connected(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<Box<dyn Endpoint>>;
    fn failed(&mut self, now: Instant, reason: Reason);
    fn lost(&mut self, now: Instant, reason: Reason);
    fn next_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn is_ended(&self) -> bool;
    fn into_factory(self: Box<Self>) -> Box<dyn Any>;
}

struct ConnectorBox<C: ClientFactory> {
    addr: SocketAddr,
    connector: Connector<C>,
}

impl<C: ClientFactory + 'static> AnyConnector for ConnectorBox<C>
where
    C::Protocol: 'static,
    <C::Protocol as Protocol>::Message: Send + 'static,
{
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn poll_action(&mut self) -> Option<connector::Action> {
        self.connector.poll_action()
    }
    fn connected(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Option<Box<dyn Endpoint>> {
        self.connector.handle_connected(now, peer);
        let protocol = self.connector.poll_protocol()?;
        let conn = Connection::new(protocol, Config::default());
        Some(Driven::start(conn, now, id, local, peer))
    }
    fn failed(&mut self, now: Instant, reason: Reason) {
        self.connector.handle_connect_failed(now, reason);
    }
    fn lost(&mut self, now: Instant, reason: Reason) {
        self.connector.handle_connection_lost(now, reason);
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.connector.next_timeout()
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.connector.handle_timeout(now);
    }
    fn is_ended(&self) -> bool {
        self.connector.is_ended()
    }
    fn into_factory(self: Box<Self>) -> Box<dyn Any> {
        Box::new(self.connector.into_factory())
    }
}

impl World {
    /// Moves everything that can move at the current time; false when nothing did.
    fn step(&mut self) -> bool {
        let mut progressed = false;
        for id in 0..self.connectors.len() {
            while let Some(action) = self.connectors[id].as_mut().and_then(|c| c.poll_action()) {
                progressed = true;
                if action == connector::Action::Dial {
                    self.dial(id);
                }
            }
        }
        let now = self.now;
        for link in &mut self.links {
            // Mail first, so what a delivery queues leaves in the same step's pump.
            progressed |= link.client.deliver(now);
            if let Some(server) = link.server.as_mut() {
                progressed |= server.deliver(now);
            }
            progressed |= link.pump(now);
        }
        progressed |= self.reap();
        progressed
    }

    fn dial(&mut self, id: usize) {
        let now = self.now;
        let Some(connector) = self.connectors[id].as_mut() else {
            return;
        };
        let server_addr = connector.addr();
        let Some(listener) = self.listeners.get(&server_addr) else {
            connector.failed(now, Reason::Refused);
            return;
        };
        self.next_port = self.next_port.wrapping_add(1).max(1);
        let client_addr = SocketAddr::from(([127, 0, 0, 2], self.next_port));
        let (server_id, client_id) = (self.next_connection + 1, self.next_connection + 2);
        self.next_connection += 2;
        let server = lock(&listener.factory).build(
            now,
            server_id,
            server_addr,
            client_addr,
            &listener.config,
        );
        let Some(client) = connector.connected(now, client_id, client_addr, server_addr) else {
            return;
        };
        let mut down = Wire::default();
        if server.is_none() {
            // Accepted and closed at once: the client reads EOF.
            down.shut();
        }
        self.links.push(Link {
            connector: id,
            listener: Some((listener.id, listener.factory.clone())),
            client_addr,
            client,
            server,
            up: Wire::default(),
            down,
            client_reported: false,
            server_reported: false,
        });
    }

    /// Reports ended connections to their connector and factory; drops finished links.
    fn reap(&mut self) -> bool {
        let now = self.now;
        let mut progressed = false;
        for link in &mut self.links {
            if link.client.is_closed() && !link.client_reported {
                link.client_reported = true;
                progressed = true;
                let reason = link.client.reason().cloned().unwrap_or(Reason::Lost);
                if let Some(c) = self.connectors[link.connector].as_mut() {
                    c.lost(now, reason);
                }
            }
            let server_closed = link.server.as_ref().is_none_or(|s| s.is_closed());
            if server_closed && !link.server_reported {
                link.server_reported = true;
                progressed = true;
                if let (Some(server), Some((_, factory))) = (&link.server, &link.listener) {
                    let reason = server.reason().cloned().unwrap_or(Reason::Lost);
                    lock(factory).closed(link.client_addr, &reason);
                }
            }
        }
        self.links
            .retain(|l| !(l.client_reported && l.server_reported));
        progressed
    }

    fn next_deadline(&self) -> Option<Instant> {
        let links = self.links.iter().flat_map(|l| {
            [
                l.client.next_timeout(),
                l.server.as_ref().and_then(|s| s.next_timeout()),
            ]
        });
        let connectors = self.connectors.iter().flatten().map(|c| c.next_timeout());
        links.chain(connectors).flatten().min()
    }

    /// Runs until `done` holds, nothing is left to happen, or `limit` of virtual time passes.
    fn run_until(&mut self, limit: Duration, done: &dyn Fn(&World) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            for _ in 0..1_000_000 {
                if !self.step() {
                    break;
                }
            }
            if done(self) {
                return true;
            }
            match self.next_deadline() {
                Some(at) if at <= end => {
                    self.now = self.now.max(at);
                    let now = self.now;
                    for link in &mut self.links {
                        link.client.handle_timeout(now);
                        if let Some(server) = link.server.as_mut() {
                            server.handle_timeout(now);
                        }
                    }
                    for c in self.connectors.iter_mut().flatten() {
                        c.handle_timeout(now);
                    }
                }
                _ => {
                    self.now = self.now.max(end.min(self.now + limit));
                    return false;
                }
            }
        }
    }
}

impl Link {
    fn pump(&mut self, now: Instant) -> bool {
        let mut refused = Closed;
        let server: &mut dyn StreamEnd = match self.server.as_mut() {
            Some(server) => server.stream(),
            None => &mut refused,
        };
        Wire::pump_both(
            self.client.stream(),
            server,
            &mut self.up,
            &mut self.down,
            now,
            WIRE_CAPACITY,
            MAX_READ,
        )
    }
}

/// A connection the memory network drives, with its mailbox.
trait Endpoint: StreamEnd {
    /// Hands the connection up to [`DELIVERIES_PER_STEP`] of its queued messages and
    /// controls, oldest first; true if any.
    fn deliver(&mut self, now: Instant) -> bool;
    /// The same connection as the core's wire sees it.
    fn stream(&mut self) -> &mut dyn StreamEnd;
}

/// A [`Connection`] plus the mailbox of the handle it was given.
///
/// The mailbox is closed as soon as the protocol has ended (`is_ended`: `connection_lost` has
/// run), checked after every input, so that a post after the end gets its message back
/// instead of vanishing into a queue nobody will read. Dropping the connection closes it too.
struct Driven<P: Protocol> {
    conn: Connection<P>,
    mailbox: Arc<MemoryMailbox<P::Message>>,
    open: bool,
}

impl<P: Protocol + 'static> Driven<P>
where
    P::Message: Send + 'static,
{
    /// Gives `conn` its handle (id `id`), then runs `connection_made`, which may read it.
    fn start(
        mut conn: Connection<P>,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Box<dyn Endpoint> {
        let mailbox = Arc::new(MemoryMailbox::new());
        conn.set_handle(Handle::new(id, peer, mailbox.clone() as Arc<_>));
        let mut driven = Driven {
            conn,
            mailbox,
            open: true,
        };
        driven.conn.handle_connected(now, local, peer);
        driven.settle();
        Box::new(driven)
    }
}

impl<P: Protocol> Driven<P> {
    /// Closes the mailbox once the connection has ended.
    fn settle(&mut self) {
        if self.open && self.conn.is_ended() {
            self.open = false;
            self.mailbox.close();
        }
    }
}

impl<P: Protocol> Drop for Driven<P> {
    fn drop(&mut self) {
        self.mailbox.close();
    }
}

impl<P: Protocol> Endpoint for Driven<P> {
    fn deliver(&mut self, now: Instant) -> bool {
        if !self.open {
            return false;
        }
        let batch = self.mailbox.take(DELIVERIES_PER_STEP);
        let delivered = !batch.is_empty();
        // Taken out of the mailbox: a protocol may post to its own handle from `message`.
        for delivery in batch {
            delivery.deliver_to(&mut self.conn, now);
            self.settle();
        }
        delivered
    }
    fn stream(&mut self) -> &mut dyn StreamEnd {
        self
    }
}

/// Delegates to the connection, closing the mailbox once the connection has ended.
impl<P: Protocol> StreamEnd for Driven<P> {
    fn wants_read(&self) -> bool {
        self.conn.wants_read()
    }
    fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }
    fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.conn.handle_data(now, data);
        self.settle();
    }
    fn handle_read_closed(&mut self, now: Instant) {
        self.conn.handle_read_closed(now);
        self.settle();
    }
    fn handle_error(&mut self, now: Instant, reason: Reason) {
        self.conn.handle_error(now, reason);
        self.settle();
    }
    fn handle_timeout(&mut self, now: Instant) {
        self.conn.handle_timeout(now);
        self.settle();
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.conn.next_timeout()
    }
    fn poll_action(&mut self) -> Option<loomwork::stream::Action> {
        let action = self.conn.poll_action();
        self.settle();
        action
    }
    fn reason(&self) -> Option<&Reason> {
        self.conn.reason()
    }
    fn close(&mut self, now: Instant) {
        self.conn.close(now);
        self.settle();
    }
    fn abort(&mut self, now: Instant) {
        self.conn.abort(now);
        self.settle();
    }
    fn write_into(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) -> usize {
        let n = StreamEnd::write_into(&mut self.conn, now, out, max);
        self.settle();
        n
    }
}

/// The far end of a refused connection: closed from the start, reads and writes nothing.
struct Closed;

impl StreamEnd for Closed {
    fn wants_read(&self) -> bool {
        false
    }
    fn is_closed(&self) -> bool {
        true
    }
    fn handle_data(&mut self, _: Instant, _: &[u8]) {}
    fn handle_read_closed(&mut self, _: Instant) {}
    fn handle_error(&mut self, _: Instant, _: Reason) {}
    fn handle_timeout(&mut self, _: Instant) {}
    fn next_timeout(&self) -> Option<Instant> {
        None
    }
    fn poll_action(&mut self) -> Option<loomwork::stream::Action> {
        None
    }
    fn reason(&self) -> Option<&Reason> {
        None
    }
    fn close(&mut self, _: Instant) {}
    fn abort(&mut self, _: Instant) {}
    fn write_into(&mut self, _: Instant, _: &mut Vec<u8>, _: usize) -> usize {
        0
    }
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A server on the memory network.
pub struct MemoryServer {
    world: Rc<RefCell<World>>,
    addr: SocketAddr,
    id: u64,
}

impl ServerUnderTest for MemoryServer {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn connection_count(&self) -> usize {
        let world = self.world.borrow();
        world
            .links
            .iter()
            .filter(|l| l.belongs_to(self.id) && !l.server_reported)
            .count()
    }

    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize) {
        let mut world = self.world.borrow_mut();
        world.listeners.remove(&self.addr);
        let now = world.now;
        let id = self.id;
        for link in world.links.iter_mut().filter(|l| l.belongs_to(id)) {
            if let Some(server) = link.server.as_mut() {
                server.close(now);
            }
        }
        let open = |w: &World| {
            w.links
                .iter()
                .filter(|l| l.belongs_to(id) && !l.server_reported)
                .count()
        };
        let before = open(&world);
        world.run_until(drain, &|w| open(w) == 0);
        let now = world.now;
        for link in world
            .links
            .iter_mut()
            .filter(|l| l.belongs_to(id) && !l.server_reported)
        {
            if let Some(server) = link.server.as_mut() {
                server.abort(now);
            }
        }
        let aborted = open(&world);
        world.run_until(Duration::ZERO, &|_| true);
        world.step();
        (before - aborted, aborted)
    }
}

impl Link {
    fn belongs_to(&self, listener: u64) -> bool {
        self.listener
            .as_ref()
            .is_some_and(|(id, _)| *id == listener)
    }
}

/// A client on the memory network.
pub struct MemoryClient<C> {
    world: Rc<RefCell<World>>,
    id: usize,
    _factory: std::marker::PhantomData<C>,
}

impl<C: 'static> ClientUnderTest<C> for MemoryClient<C> {
    fn join(self: Box<Self>) -> C {
        let mut world = self.world.borrow_mut();
        let id = self.id;
        let finished = move |w: &World| {
            w.connectors[id].as_ref().is_none_or(|c| c.is_ended())
                && !w.links.iter().any(|l| l.connector == id)
        };
        let done = world.run_until(JOIN_LIMIT, &finished);
        assert!(
            done,
            "memory: client {id} did not finish within {JOIN_LIMIT:?} of virtual time"
        );
        let connector = world.connectors[id].take().expect("joined twice");
        *connector
            .into_factory()
            .downcast::<C>()
            .expect("factory type")
    }
}

impl Harness for Memory {
    const NAME: &'static str = "memory";
    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let mut world = self.world.borrow_mut();
        let addr = if addr.port() == 0 {
            world.next_port = world.next_port.wrapping_add(1).max(1);
            SocketAddr::new(addr.ip(), 10_000 + world.next_port)
        } else {
            addr
        };
        world.next_listener += 1;
        let id = world.next_listener;
        let factory: Arc<Mutex<dyn AnyServerFactory>> =
            Arc::new(Mutex::new(ServerFactoryBox(factory)));
        assert!(
            world
                .listeners
                .insert(
                    addr,
                    Listener {
                        id,
                        factory,
                        config
                    }
                )
                .is_none(),
            "address in use"
        );
        Box::new(MemoryServer {
            world: self.world.clone(),
            addr,
            id,
        })
    }

    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        config: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        let mut world = self.world.borrow_mut();
        let now = world.now;
        let mut connector = Connector::new(factory, config);
        connector.start(now);
        world
            .connectors
            .push(Some(Box::new(ConnectorBox { addr, connector })));
        Box::new(MemoryClient {
            world: self.world.clone(),
            id: world.connectors.len() - 1,
            _factory: std::marker::PhantomData,
        })
    }

    fn sleep(&self, duration: Duration) {
        let mut world = self.world.borrow_mut();
        let end = world.now + duration;
        world.run_until(duration, &|_| false);
        world.now = world.now.max(end);
    }

    fn unused_addr(&self) -> SocketAddr {
        let mut world = self.world.borrow_mut();
        world.next_port = world.next_port.wrapping_add(1).max(1);
        SocketAddr::from(([127, 0, 0, 1], 20_000 + world.next_port))
    }

    fn live_workers(&self) -> Option<usize> {
        let world = self.world.borrow();
        Some(world.links.len() + world.connectors.iter().flatten().count())
    }
}

#[cfg(test)]
mod tests {
    use loomwork::bytes::{Bytes, BytesMut};
    use loomwork::stream::Transport;

    use super::*;
    use crate::protocols::{lock, ClientScript, ClientSpec, Shared};

    /// Keeps the handle `connection_made` saw and records every message, never writing.
    struct Recorder {
        handle: Shared<Option<Handle<u32>>>,
        got: Shared<Vec<u32>>,
    }

    impl Protocol for Recorder {
        type Message = u32;
        fn connection_made(&mut self, tx: &mut Transport<'_, u32>) {
            *lock(&self.handle) = tx.handle().cloned();
        }
        fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, u32>) {
            data.clear();
        }
        fn message(&mut self, message: u32, _: &mut Transport<'_, u32>) {
            lock(&self.got).push(message);
        }
    }

    /// More posts than one step delivers all arrive, in order, before a close posted after
    /// them; once the connection has ended its handle refuses, giving the message back.
    #[test]
    fn handles_deliver_in_order_before_a_close_and_refuse_after_the_end() {
        let h = Memory::new();
        let handle = Shared::<Option<Handle<u32>>>::default();
        let got = Shared::<Vec<u32>>::default();
        let (slot, log) = (handle.clone(), got.clone());
        let factory = move |_| Recorder {
            handle: slot.clone(),
            got: log.clone(),
        };
        let server = h.listen(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            factory,
            Config::default(),
        );
        let (spec, _) = ClientSpec::new(ClientScript::SendThenReadAll(Bytes::from_static(b"hi")));
        let client = h.connect(server.local_addr(), spec, connector::Config::default());
        h.sleep(Duration::from_millis(1));
        let handle = lock(&handle).take().expect("connection_made saw a handle");
        let count = 3 * DELIVERIES_PER_STEP as u32 + 1;
        for i in 0..count {
            handle.send(i).expect("the connection is live");
        }
        assert!(handle.close(), "the connection is live");
        // The client reads until the server's close: joining proves the close was handled.
        client.join();
        assert_eq!(*lock(&got), (0..count).collect::<Vec<_>>());
        assert_eq!(server.connection_count(), 0);
        assert_eq!(handle.send(7), Err(7), "posted after the end");
        assert!(!handle.abort(), "the connection has ended");
        server.shutdown(Duration::ZERO);
    }
}
