//! `Server`: the handle a [`listen_tcp`](crate::listen_tcp) caller keeps.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loomwork::stream::Handle;

use crate::listener::Acceptor;
use crate::registry::Registry;

/// A listening TCP server: its address, its live connections, and how to stop it.
///
/// Dropping a `Server` without [`shutdown`](Self::shutdown) stops accepting at once (the
/// listening sockets are closed before `drop` returns), but leaves established connections
/// running on their threads, detached, until they end on their own; their handles (from
/// [`handles`](Self::handles), taken before the drop) still reach them.
pub struct Server<M> {
    local_addr: SocketAddr,
    acceptors: Vec<Acceptor>,
    registry: Arc<Registry<M>>,
}

/// What [`Server::shutdown`] did with the connections that were live when it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that closed within the drain time (flushed, then closed).
    pub drained: usize,
    /// Connections still open at the drain deadline, which were aborted.
    pub aborted: usize,
}

impl<M> Server<M> {
    pub(crate) fn new(
        local_addr: SocketAddr,
        acceptors: Vec<Acceptor>,
        registry: Arc<Registry<M>>,
    ) -> Self {
        Server {
            local_addr,
            acceptors,
            registry,
        }
    }

    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How many connections are live: accepted, and not yet reported to the factory as closed.
    pub fn connection_count(&self) -> usize {
        self.registry.count()
    }

    /// Handles of the live connections, for posting messages or closing them.
    pub fn handles(&self) -> Vec<Handle<M>> {
        self.registry.handles()
    }

    /// Stops accepting new connections: the listening sockets are closed when this returns.
    /// Established connections go on (Twisted `stopListening`, PR-10).
    pub fn stop_listening(&mut self) {
        self.acceptors.iter().for_each(Acceptor::stop);
        self.acceptors.iter_mut().for_each(Acceptor::stop_and_join);
        self.acceptors.clear();
    }

    /// Serves until SIGINT or SIGTERM arrives, then [`shutdown`](Self::shutdown)s within
    /// `drain`: the main loop of a server program. The signal handler is
    /// [`loomwork_net::install_stop_signal`]'s; call that before binding if a signal that
    /// arrives in between must not be missed.
    pub fn serve_until_signal(self, drain: Duration) -> std::io::Result<ShutdownReport> {
        loomwork_net::wait_for_stop_signal()?;
        Ok(self.shutdown(drain))
    }

    /// Stops the server: stops accepting at once, asks every connection to close gracefully
    /// (flush, then close, as `lose_connection` does), waits up to `drain` for them to finish,
    /// aborts the ones still open, and returns once every thread of the server has exited.
    /// A flushed connection whose peer stays silent lingers up to `Config::close_linger` (2 s
    /// by default) for the peer's EOF before its socket closes, so give `drain` room for that.
    ///
    /// ```
    /// use loomwork::bytes::BytesMut;
    /// use loomwork::stream::{Protocol, Transport};
    /// use std::time::Duration;
    ///
    /// struct Quiet;
    /// impl Protocol for Quiet {
    ///     type Message = ();
    ///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) { data.clear(); }
    /// }
    ///
    /// let server = loomwork_std::listen_tcp("127.0.0.1:0".parse()?, |_| Quiet)?;
    /// let report = server.shutdown(Duration::from_secs(1));
    /// assert_eq!((report.drained, report.aborted), (0, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown(mut self, drain: Duration) -> ShutdownReport {
        let deadline = Instant::now() + drain;
        self.stop_listening();
        // No acceptor is left, so the set of connections can only shrink from here on.
        let live = self.registry.handles();
        for handle in &live {
            handle.close();
        }
        let stragglers = self.registry.wait_until_empty(deadline);
        for handle in &stragglers {
            handle.abort();
        }
        // Threads waiting for a next connection exit now, the others once theirs has ended.
        self.registry.pool.stop();
        for thread in self.registry.take_threads() {
            let _ = thread.join();
        }
        ShutdownReport {
            drained: live.len().saturating_sub(stragglers.len()),
            aborted: stragglers.len(),
        }
    }
}

impl<M> Drop for Server<M> {
    fn drop(&mut self) {
        self.stop_listening();
        // No connection comes any more: no thread waits for one.
        self.registry.pool.stop();
    }
}

impl<M> fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.connection_count())
            .finish_non_exhaustive()
    }
}
