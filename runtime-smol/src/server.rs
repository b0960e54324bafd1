//! `listen_tcp` and the [`Server`] handle: accept connections, run one task each, shut down.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_channel::Receiver;
use async_executor::Task;
use async_io::Timer;
use futures_lite::future::FutureExt;
use loomwork::stream::{Handle, ServerFactory};

use crate::listener::{accept_loop, bind, serve, Accepted};
use crate::registry::{new_registry, Registry};
use crate::spawn::{GlobalExecutor, LocalSpawner, Spawner};
use crate::ListenConfig;
use loomwork::stream::ServerMessage;

/// A listening TCP server: its address, its live connections, and a graceful shutdown.
///
/// Dropping it without [`shutdown`](Self::shutdown) stops accepting (the listening sockets are
/// closed once the executor next runs the cancelled accept tasks) but leaves established
/// connections running until they end on their own; [`handles`](Self::handles) taken before
/// can still close them.
pub struct Server<M> {
    local_addr: SocketAddr,
    accept_tasks: Vec<Task<()>>,
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
            task.cancel().await;
        }
    }

    /// Serves until SIGINT or SIGTERM arrives, then [`shutdown`](Self::shutdown)s within
    /// `drain`: the main loop of a server program. The signal handler is
    /// [`loomwork_net::install_stop_signal`]'s; call that before binding if a signal that
    /// arrives in between must not be missed.
    pub async fn serve_until_signal(self, drain: Duration) -> io::Result<ShutdownReport> {
        smol::unblock(loomwork_net::wait_for_stop_signal).await?;
        Ok(self.shutdown(drain).await)
    }

    /// Stops accepting at once, closes every connection gracefully (each flushes what it has
    /// queued), waits up to `drain` for them, aborts the rest, and returns once every
    /// connection task has finished and every socket is closed.
    ///
    /// A gracefully closed connection lingers until the peer's EOF (at most
    /// `Config::close_linger`, 2 s by default), so that input the peer sent while we closed
    /// cannot turn the close into a reset that would destroy our last bytes; shutdown waits for
    /// those connections too, and counts them as drained. The executor the
    /// server runs on must keep running meanwhile.
    pub async fn shutdown(mut self, drain: Duration) -> ShutdownReport {
        self.stop_listening().await;
        self.registry.retire();
        let closing = self.registry.handles();
        for handle in &closing {
            handle.close();
        }
        let total = closing.len();
        drop(closing);
        let all_done = &self.all_done;
        let drained_in_time = async {
            let _ = all_done.recv().await;
            true
        }
        .or(async {
            Timer::after(drain).await;
            false
        })
        .await;
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

impl<M> std::fmt::Debug for Server<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("connections", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// Listens on `addr` with the default [`ListenConfig`], on smol's global executor.
///
/// The socket is bound before this returns, so connecting right after cannot race the server.
/// `SO_REUSEADDR` is set; an IPv6 address listens on IPv6 only (`IPV6_V6ONLY`), so `[::]` and
/// `0.0.0.0` can be bound side by side. Each accepted connection gets `TCP_NODELAY`.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// smol::block_on(async {
///     let server = loomwork_smol::listen_tcp("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
///     let mut client = smol::net::TcpStream::connect(server.local_addr()).await?;
///     use smol::io::{AsyncReadExt, AsyncWriteExt};
///     client.write_all(b"hello").await?;
///     let mut echoed = [0; 5];
///     client.read_exact(&mut echoed).await?;
///     assert_eq!(&echoed, b"hello");
///     server.shutdown(std::time::Duration::from_secs(1)).await;
///     std::io::Result::Ok(())
/// }).unwrap();
/// ```
pub fn listen_tcp<F>(addr: SocketAddr, factory: F) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    listen_tcp_with(addr, factory, ListenConfig::default())
}

/// Listens on `addr` with `config`, on smol's global executor.
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
    listen_tcp_on(&GlobalExecutor, addr, factory, config)
}

/// Listens on `addr` with `config`, running the accept and connection tasks on `spawner`
/// (an `Arc<async_executor::Executor>`, or [`GlobalExecutor`]).
///
/// ```
/// use std::sync::Arc;
/// use async_executor::Executor;
/// use loomwork_smol::{listen_tcp_on, ListenConfig};
/// # use loomwork::{bytes::BytesMut, stream::{Protocol, Transport}};
/// # struct Discard;
/// # impl Protocol for Discard {
/// #     type Message = ();
/// #     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) { data.clear(); }
/// # }
///
/// let ex = Arc::new(Executor::new());
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let server = listen_tcp_on(&ex, addr, |_peer| Discard, ListenConfig::default()).unwrap();
/// let report = smol::block_on(ex.run(server.shutdown(std::time::Duration::ZERO)));
/// assert_eq!(report.drained + report.aborted, 0);
/// ```
pub fn listen_tcp_on<S, F>(
    spawner: &S,
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
) -> io::Result<Server<ServerMessage<F>>>
where
    S: Spawner,
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    start(
        addr,
        factory,
        config,
        |listener, factory, registry, conn_config| {
            let connections = spawner.clone();
            let spawn_connection =
                move |accepted: Box<Accepted<F>>| Spawner::spawn(&connections, serve(accepted));
            spawner.spawn(accept_loop(
                listener,
                factory,
                registry,
                conn_config,
                spawn_connection,
            ))
        },
    )
}

/// Listens on `addr` with `config` on a thread-local executor, for factories and protocols
/// that are not `Send` (they may hold `Rc`s). Messages posted through handles still cross
/// threads, so the protocol's `Message` must be `Send`.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// use async_executor::LocalExecutor;
/// use loomwork_smol::{listen_tcp_local, ListenConfig};
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
/// let ex = Rc::new(LocalExecutor::new());
/// let total = Rc::new(Cell::new(0));
/// let counted = Rc::clone(&total);
/// let addr = "127.0.0.1:0".parse().unwrap();
/// let server = listen_tcp_local(&ex, addr, move |_| Counter(Rc::clone(&counted)),
///     ListenConfig::default()).unwrap();
/// smol::block_on(ex.run(server.shutdown(std::time::Duration::ZERO)));
/// assert_eq!(total.get(), 0);
/// ```
pub fn listen_tcp_local<S, F>(
    spawner: &S,
    addr: SocketAddr,
    factory: F,
    config: ListenConfig,
) -> io::Result<Server<ServerMessage<F>>>
where
    S: LocalSpawner,
    F: ServerFactory + 'static,
    ServerMessage<F>: Send + 'static,
{
    start(
        addr,
        factory,
        config,
        |listener, factory, registry, conn_config| {
            let connections = spawner.clone();
            let spawn_connection =
                move |accepted: Box<Accepted<F>>| connections.spawn_local(serve(accepted));
            spawner.spawn_local(accept_loop(
                listener,
                factory,
                registry,
                conn_config,
                spawn_connection,
            ))
        },
    )
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
        async_io::Async<std::net::TcpListener>,
        Arc<Mutex<F>>,
        Arc<Registry<ServerMessage<F>>>,
        Arc<loomwork::stream::Config>,
    ) -> Task<()>,
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
