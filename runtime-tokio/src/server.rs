//! `listen_tcp` and the [`Server`] handle: accept connections, run one task each, shut down.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::stream::{Handle, ServerFactory, ServerMessage};
use tokio::io::unix::AsyncFd;
use tokio::runtime;
use tokio::sync::mpsc::Receiver;
use tokio::task::{JoinHandle, LocalSet};

use crate::listener::{accept_loop, bind, serve, Accepted};
use crate::registry::{new_registry, Registry};
use crate::ListenConfig;

/// A listening TCP server: its address, its live connections, and a graceful shutdown.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops accepting (the accept tasks are
/// aborted, which closes the listening sockets) but leaves established connections running
/// until they end on their own; [`handles`](Self::handles) taken before can still close them.
pub struct Server<M> {
    local_addr: SocketAddr,
    accept_tasks: Vec<JoinHandle<()>>,
    registry: Arc<Registry<M>>,
    all_done: Receiver<()>,
}

/// How a [`Server::shutdown`] went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Connections that closed gracefully within the drain time.
    pub drained: usize,
    /// Connections still open at the drain deadline, which were aborted.
    pub aborted: usize,
}

impl<M: Send + 'static> Server<M> {
    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Connections currently open.
    pub fn connection_count(&self) -> usize {
        self.registry.len()
    }

    /// Handles of the open connections, to post messages to them or close them.
    pub fn handles(&self) -> Vec<Handle<M>> {
        self.registry.handles()
    }

    /// Stops accepting new connections; the listening sockets are closed when this returns.
    /// Established connections go on (Twisted `stopListening`, PR-10). Calling it again does
    /// nothing.
    pub async fn stop_listening(&mut self) {
        for task in self.accept_tasks.drain(..) {
            task.abort();
            // An aborted task's future, and so its listener, is dropped before this resolves.
            let _ = task.await;
        }
    }

    /// Serves until SIGINT or SIGTERM arrives, then [`shutdown`](Self::shutdown)s within
    /// `drain`: the main loop of a server program. The signal handler is
    /// [`loomwork_net::install_stop_signal`]'s (waited for on tokio's blocking pool); call
    /// that before binding if a signal that arrives in between must not be missed.
    pub async fn serve_until_signal(self, drain: Duration) -> io::Result<ShutdownReport> {
        tokio::task::spawn_blocking(loomwork_net::wait_for_stop_signal)
            .await
            .map_err(io::Error::other)??;
        Ok(self.shutdown(drain).await)
    }

    /// Stops accepting at once, closes every connection gracefully (each flushes what it has
    /// queued), waits up to `drain` for them, aborts the rest, and returns once every
    /// connection task has finished and every socket is closed.
    ///
    /// A gracefully closed connection lingers until the peer's EOF (at most
    /// `Config::close_linger`, 2 s by default), so that input the peer sent while we closed
    /// cannot turn the close into a reset that would destroy our last bytes; shutdown waits for
    /// those connections too, and counts them as drained. The runtime (and, for
    /// [`listen_tcp_local`], the `LocalSet`) the server runs on must keep running meanwhile,
    /// with its timer enabled.
    pub async fn shutdown(mut self, drain: Duration) -> ShutdownReport {
        self.stop_listening().await;
        self.registry.retire();
        let closing = self.registry.handles();
        for handle in &closing {
            handle.close();
        }
        let total = closing.len();
        drop(closing);
        let drained_in_time = tokio::time::timeout(drain, self.all_done.recv())
            .await
            .is_ok();
        let mut aborted = 0;
        if !drained_in_time {
            aborted = self
                .registry
                .handles()
                .iter()
                .filter(|handle| handle.abort())
                .count();
            let _ = self.all_done.recv().await;
        }
        ShutdownReport {
            drained: total.saturating_sub(aborted),
            aborted,
        }
    }
}

impl<M> Drop for Server<M> {
    fn drop(&mut self) {
        for task in &self.accept_tasks {
            task.abort();
        }
    }
}

impl<M> std::fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// Listens on `addr` with the default [`ListenConfig`], on the current tokio runtime
/// (`Handle::current()`; multi-thread or current-thread, with IO and time enabled). Fails
/// with an error, rather than panicking, when called outside a runtime.
///
/// The socket is bound before this returns, so connecting right after cannot race the server.
/// `SO_REUSEADDR` is set; an IPv6 address listens on IPv6 only (`IPV6_V6ONLY`), so `[::]` and
/// `0.0.0.0` can be bound side by side. Each accepted connection gets `TCP_NODELAY`.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// rt.block_on(async {
///     let server = loomwork_tokio::listen_tcp("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
///     let mut client = tokio::net::TcpStream::connect(server.local_addr()).await?;
///     client.write_all(b"hello").await?;
///     let mut echoed = [0; 5];
///     client.read_exact(&mut echoed).await?;
///     assert_eq!(&echoed, b"hello");
///     server.shutdown(std::time::Duration::from_secs(1)).await;
///     std::io::Result::Ok(())
/// })?;
/// # std::io::Result::Ok(())
/// ```
pub fn listen_tcp<F>(addr: SocketAddr, factory: F) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    listen_tcp_with(addr, factory, ListenConfig::default())
}

/// Listens on `addr` with `config`, on the current tokio runtime (see [`listen_tcp`]).
pub fn listen_tcp_with<F>(
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    listen_tcp_on(&current()?, addr, factory, config)
}

/// Listens on `addr` with `config`, running the accept and connection tasks on the runtime
/// behind `handle`; callable from any thread, inside a runtime or not.
///
/// ```
/// use loomwork_tokio::{listen_tcp_on, ListenConfig};
/// # use loomwork::{bytes::BytesMut, stream::{Protocol, Transport}};
/// # struct Discard;
/// # impl Protocol for Discard {
/// #     type Message = ();
/// #     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) { data.clear(); }
/// # }
///
/// let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let server = listen_tcp_on(rt.handle(), addr, |_peer| Discard, ListenConfig::default())?;
/// let report = rt.block_on(server.shutdown(std::time::Duration::ZERO));
/// assert_eq!(report.drained + report.aborted, 0);
/// # std::io::Result::Ok(())
/// ```
pub fn listen_tcp_on<F>(
    handle: &runtime::Handle,
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    // Registering the listeners needs the runtime's reactor.
    let _entered = handle.enter();
    start(
        addr,
        factory,
        config,
        |listener, factory, registry, conn_config| {
            let connections = handle.clone();
            let spawn_connection = move |accepted: Box<Accepted<F>>| {
                drop(connections.spawn(serve(accepted)));
            };
            handle.spawn(accept_loop(
                listener,
                factory,
                registry,
                conn_config,
                spawn_connection,
            ))
        },
    )
}

/// Listens on `addr` with `config` on a [`LocalSet`], for factories and protocols that are
/// not `Send` (they may hold `Rc`s): the accept tasks are spawned on `local`, and each
/// connection task with `tokio::task::spawn_local` onto the same set. Messages posted through
/// handles still cross threads, so the protocol's `Message` must be `Send`.
///
/// Call it inside the runtime that drives `local` (in `local.block_on(&rt, ...)`, in
/// `local.run_until(...)`, or after `rt.enter()`): the listeners register with that
/// runtime's reactor, and without one this fails with an error. The tasks run while the
/// `LocalSet` is being driven.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use loomwork_tokio::{listen_tcp_local, ListenConfig};
/// # use loomwork::{bytes::BytesMut, stream::{Protocol, Transport}};
/// struct Counter(Rc<Cell<usize>>);
/// impl Protocol for Counter {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
///         self.0.set(self.0.get() + data.len());
///         data.clear();
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let local = tokio::task::LocalSet::new();
/// let total = Rc::new(Cell::new(0));
/// let counted = Rc::clone(&total);
/// let _entered = rt.enter();
/// let server = listen_tcp_local(&local, "127.0.0.1:0".parse().unwrap(),
///     move |_| Counter(Rc::clone(&counted)), ListenConfig::default())?;
/// local.block_on(&rt, server.shutdown(std::time::Duration::ZERO));
/// assert_eq!(total.get(), 0);
/// # std::io::Result::Ok(())
/// ```
pub fn listen_tcp_local<F>(
    local: &LocalSet,
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + 'static,
    ServerMessage<F>: Send + 'static,
{
    let _entered = current()?.enter();
    start(
        addr,
        factory,
        config,
        |listener, factory, registry, conn_config| {
            let spawn_connection = |accepted: Box<Accepted<F>>| {
                // The accept loop runs on `local`, so this is the same set.
                drop(tokio::task::spawn_local(serve(accepted)));
            };
            local.spawn_local(accept_loop(
                listener,
                factory,
                registry,
                conn_config,
                spawn_connection,
            ))
        },
    )
}

/// The current runtime, or an error saying that there is none.
pub(crate) fn current() -> io::Result<runtime::Handle> {
    runtime::Handle::try_current().map_err(|err| io::Error::other(err.to_string()))
}

/// Binds, then starts one accept task per listening socket with `spawn_accept`.
fn start<F, A>(
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
    spawn_accept: A,
) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory,
    ServerMessage<F>: Send + 'static,
    A: Fn(
        AsyncFd<TcpListener>,
        Arc<Mutex<F>>,
        Arc<Registry<ServerMessage<F>>>,
        Arc<loomwork::stream::Config>,
    ) -> JoinHandle<()>,
{
    let listeners = bind(addr, &config)?;
    let local_addr = listeners
        .first()
        .map(|l| l.get_ref().local_addr())
        .transpose()?
        .unwrap_or(addr);
    let factory = Arc::new(Mutex::new(factory));
    // One copy of the connection settings for every connection of every listening socket.
    let connection_config = Arc::new(config.connection.clone());
    let (registry, all_done) = new_registry();
    let accept_tasks = listeners
        .into_iter()
        .map(|listener| {
            spawn_accept(
                listener,
                Arc::clone(&factory),
                Arc::clone(&registry),
                Arc::clone(&connection_config),
            )
        })
        .collect();
    Ok(Server {
        local_addr,
        accept_tasks,
        registry,
        all_done,
    })
}
