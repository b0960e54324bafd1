//! The type-erased pieces a [`StreamNetwork`](super::StreamNetwork) keeps in its collections:
//! connections with their mailboxes, server factories and connectors of any protocol type.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;
use core::net::SocketAddr;

use crate::connector::{self, ClientFactory, Connector};
use crate::reason::Reason;
use crate::stream::{Action, Config, Connection, Handle, Protocol, ServerFactory};
use crate::testing::{MemoryMailbox, StreamEnd};
use crate::time::Instant;

/// A connection the network drives, with its mailbox, whatever its protocol.
pub(super) trait Endpoint: StreamEnd {
    /// Hands the connection up to `max` of its queued messages and controls, oldest first;
    /// how many.
    fn deliver(&mut self, now: Instant, max: usize) -> usize;
    /// The same connection as the core's wire sees it.
    fn stream(&mut self) -> &mut dyn StreamEnd;
    /// The `Connection<P>`, for downcasting.
    fn connection_any(&self) -> &dyn Any;
    /// The `Connection<P>`, mutably, for downcasting.
    fn connection_any_mut(&mut self) -> &mut dyn Any;
    /// The connection's `Handle<P::Message>`, for downcasting.
    fn handle_any(&self) -> &dyn Any;
}

/// A [`Connection`] plus the mailbox of the handle it was given.
///
/// The mailbox is closed as soon as the protocol has ended (`connection_lost` has run),
/// checked after every input, so that a post after the end gets its message back instead of
/// vanishing into a queue nobody will read. Dropping the connection closes it too.
pub(super) struct Driven<P: Protocol> {
    conn: Connection<P>,
    mailbox: Arc<MemoryMailbox<P::Message>>,
    handle: Handle<P::Message>,
    open: bool,
}

impl<P> Driven<P>
where
    P: Protocol + 'static,
    P::Message: Send + 'static,
{
    /// Gives `conn` its handle (id `id`), then runs `connection_made`, which may read it.
    pub(super) fn start(
        mut conn: Connection<P>,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
    ) -> Box<dyn Endpoint> {
        let mailbox = Arc::new(MemoryMailbox::new());
        let handle = Handle::new(id, peer, Arc::clone(&mailbox) as Arc<_>);
        conn.set_handle(handle.clone());
        let mut driven = Driven {
            conn,
            mailbox,
            handle,
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

impl<P> Endpoint for Driven<P>
where
    P: Protocol + 'static,
    P::Message: 'static,
{
    fn deliver(&mut self, now: Instant, max: usize) -> usize {
        if !self.open {
            return 0;
        }
        // Taken out of the mailbox first: a protocol may post to its own handle from
        // `message`; that post waits for the next step.
        let batch = self.mailbox.take(max);
        let count = batch.len();
        for delivery in batch {
            delivery.deliver_to(&mut self.conn, now);
            self.settle();
        }
        count
    }
    fn stream(&mut self) -> &mut dyn StreamEnd {
        self
    }
    fn connection_any(&self) -> &dyn Any {
        &self.conn
    }
    fn connection_any_mut(&mut self) -> &mut dyn Any {
        &mut self.conn
    }
    fn handle_any(&self) -> &dyn Any {
        &self.handle
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
    fn poll_action(&mut self) -> Option<Action> {
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

/// The missing end of a connection whose protocol was never built (a factory refused):
/// closed from the start, reads and writes nothing.
pub(super) struct Closed;

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
    fn poll_action(&mut self) -> Option<Action> {
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

/// A [`ServerFactory`] of any protocol type.
pub(super) trait AnyServerFactory {
    /// Builds and starts a connection for `peer`, or `None` if the factory refuses it.
    fn build(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
        config: &Config,
    ) -> Option<Box<dyn Endpoint>>;
    /// A connection it built has ended.
    fn closed(&mut self, peer: SocketAddr, reason: &Reason);
    /// The factory itself, for downcasting.
    fn factory_any(&self) -> &dyn Any;
    /// The factory itself, mutably, for downcasting.
    fn factory_any_mut(&mut self) -> &mut dyn Any;
}

/// Wraps a [`ServerFactory`] as an [`AnyServerFactory`].
pub(super) struct ServerFactoryBox<F>(pub(super) F);

impl<F> AnyServerFactory for ServerFactoryBox<F>
where
    F: ServerFactory + 'static,
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
    fn factory_any(&self) -> &dyn Any {
        &self.0
    }
    fn factory_any_mut(&mut self) -> &mut dyn Any {
        &mut self.0
    }
}

/// A [`Connector`] of any client factory type.
pub(super) trait AnyConnector {
    fn poll_action(&mut self) -> Option<connector::Action>;
    /// Reports the attempt connected; the started client connection, or `None` if the
    /// factory refused it (the connector has heard [`Reason::Rejected`] then).
    fn connected(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
        config: &Config,
    ) -> Option<Box<dyn Endpoint>>;
    fn failed(&mut self, now: Instant, reason: Reason);
    fn lost(&mut self, now: Instant, reason: Reason);
    fn next_timeout(&self) -> Option<Instant>;
    fn handle_timeout(&mut self, now: Instant);
    fn is_ended(&self) -> bool;
    /// The `Connector<F>`, for downcasting.
    fn connector_any(&self) -> &dyn Any;
    /// The `Connector<F>`, mutably, for downcasting.
    fn connector_any_mut(&mut self) -> &mut dyn Any;
    /// The `Connector<F>`, boxed, for downcasting by value.
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<C> AnyConnector for Connector<C>
where
    C: ClientFactory + 'static,
    C::Protocol: 'static,
    <C::Protocol as Protocol>::Message: Send + 'static,
{
    fn poll_action(&mut self) -> Option<connector::Action> {
        Connector::poll_action(self)
    }
    fn connected(
        &mut self,
        now: Instant,
        id: u64,
        local: SocketAddr,
        peer: SocketAddr,
        config: &Config,
    ) -> Option<Box<dyn Endpoint>> {
        self.handle_connected(now, peer);
        let protocol = self.poll_protocol()?;
        let conn = Connection::new(protocol, config.clone());
        Some(Driven::start(conn, now, id, local, peer))
    }
    fn failed(&mut self, now: Instant, reason: Reason) {
        self.handle_connect_failed(now, reason);
    }
    fn lost(&mut self, now: Instant, reason: Reason) {
        self.handle_connection_lost(now, reason);
    }
    fn next_timeout(&self) -> Option<Instant> {
        Connector::next_timeout(self)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Connector::handle_timeout(self, now);
    }
    fn is_ended(&self) -> bool {
        Connector::is_ended(self)
    }
    fn connector_any(&self) -> &dyn Any {
        self
    }
    fn connector_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}
