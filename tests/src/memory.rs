//! The in-memory runtime: the core's [`StreamNetwork`] (a deterministic simulated network
//! with virtual time) seen through [`Harness`]. It is the third runtime of the conformance
//! suite and the reference the real runtimes are held to.
//!
//! Every connection it drives has a working [`Handle`](loomwork::stream::Handle): posts and
//! close/abort requests queue in the connection's mailbox and are handed to the connection as
//! part of the network's stepping, a capped batch per step, so delivery is as deterministic as
//! the bytes are.
//!
//! A peer that never reads is modelled by the receive side, not by the writer: a connection
//! that pauses reading is handed nothing, so the bytes in flight towards it stay on the wire
//! until its capacity (256 KiB, like a loopback pair's kernel buffers) is reached, after which
//! the writer's queue grows exactly as a real sender's does once a stalled peer's receive
//! window and the kernel's buffers are full.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use loomwork::connector::{self, ClientFactory};
use loomwork::stream::{Config, Protocol, ServerFactory};
use loomwork::testing::{ClientId, ListenerId, StreamNetwork};

use crate::{ClientUnderTest, Harness, ServerUnderTest};

/// Virtual time a `join` may take before the scenario is declared hung.
const JOIN_LIMIT: Duration = Duration::from_secs(600);

/// The memory harness: cheap to create, one private network each.
#[derive(Clone, Default)]
pub struct Memory {
    net: Rc<RefCell<StreamNetwork>>,
    /// Ports handed out by [`Harness::unused_addr`].
    unused_ports: Rc<Cell<u16>>,
}

impl Memory {
    /// A fresh network at time zero, with the core's default settings (no faults).
    pub fn new() -> Self {
        Self::default()
    }
}

/// A server on the memory network.
pub struct MemoryServer {
    net: Rc<RefCell<StreamNetwork>>,
    id: ListenerId,
}

/// The server ends of `listener` still open.
fn open_server_connections(net: &StreamNetwork, listener: ListenerId) -> usize {
    net.server_connections(listener)
        .iter()
        .filter(|&&c| !net.is_closed(c))
        .count()
}

impl ServerUnderTest for MemoryServer {
    fn local_addr(&self) -> SocketAddr {
        self.net
            .borrow()
            .listener_addr(self.id)
            .expect("the listener exists")
    }

    fn connection_count(&self) -> usize {
        open_server_connections(&self.net.borrow(), self.id)
    }

    fn shutdown(self: Box<Self>, drain: Duration) -> (usize, usize) {
        let mut net = self.net.borrow_mut();
        let id = self.id;
        net.unlisten(id);
        let before = open_server_connections(&net, id);
        let connections = net.server_connections(id).to_vec();
        for &c in &connections {
            net.close(c);
        }
        let deadline = net.now() + drain;
        net.run_until_condition(deadline, |n| open_server_connections(n, id) == 0);
        let aborted = open_server_connections(&net, id);
        for &c in &connections {
            net.abort(c);
        }
        let now = net.now();
        net.run_until(now);
        (before - aborted, aborted)
    }
}

/// A client on the memory network.
pub struct MemoryClient<C> {
    net: Rc<RefCell<StreamNetwork>>,
    id: ClientId,
    _factory: std::marker::PhantomData<C>,
}

impl<C: ClientFactory + 'static> ClientUnderTest<C> for MemoryClient<C> {
    fn join(self: Box<Self>) -> C {
        let mut net = self.net.borrow_mut();
        let id = self.id;
        let deadline = net.now() + JOIN_LIMIT;
        let done = net.run_until_condition(deadline, |n| n.is_client_finished(id));
        assert!(
            done,
            "memory: client {id:?} did not finish within {JOIN_LIMIT:?} of virtual time"
        );
        net.take_factory::<C>(id)
            .expect("joined once, with its own factory type")
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
        let id = self.net.borrow_mut().listen(addr, factory, config);
        Box::new(MemoryServer {
            net: self.net.clone(),
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
        let id = self.net.borrow_mut().connect(addr, factory, config);
        Box::new(MemoryClient {
            net: self.net.clone(),
            id,
            _factory: std::marker::PhantomData,
        })
    }

    fn sleep(&self, duration: Duration) {
        self.net.borrow_mut().run_for(duration);
    }

    fn unused_addr(&self) -> SocketAddr {
        // Listeners given port 0 get 10_000 and up; nothing ever listens from 20_000.
        let port = self.unused_ports.get() % 10_000 + 1;
        self.unused_ports.set(port);
        SocketAddr::from(([127, 0, 0, 1], 20_000 + port))
    }

    fn live_workers(&self) -> Option<usize> {
        let net = self.net.borrow();
        Some(net.open_connections() + net.active_connectors())
    }
}

#[cfg(test)]
mod tests {
    use loomwork::bytes::{Bytes, BytesMut};
    use loomwork::stream::{Handle, Transport};

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
        let per_step = loomwork::testing::NetworkConfig::default().deliveries_per_step;
        let count = 3 * per_step as u32 + 1;
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
