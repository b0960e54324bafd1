//! `connect_tcp` and the [`Client`] handle: dial, run the connection, retry as the factory says.

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_lite::future::{self, FutureExt};
use loomwork::connector::ClientMessage;
use loomwork::connector::{self, ClientFactory, Connector};
use loomwork::stream::{Config, Connection, Handle};
use loomwork::{Instant, MonotonicClock};
use loomwork_net::dial::{finish_connect, start_connect, Dial};
use loomwork_net::tokio_fd::register;
use loomwork_net::{reason_from_io, tcp};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::runtime;
use tokio::sync::watch;
use tokio::task::{JoinHandle, LocalSet};

use crate::companion::Companions;
use crate::driver::{drive, Ended};
use crate::mailbox::new_handle;

/// The connection slot shared between a [`Client`] and its task.
pub(crate) type Slot<M> = Arc<Mutex<Option<Handle<M>>>>;

/// A running client: one task that dials, runs each connection and retries until the factory
/// (or [`stop_trying`](Self::stop_trying)) says stop.
///
/// Dropping a `Client` stops trying: a connection that is up runs until it ends (its protocol
/// still gets `connection_lost`), then the task finishes; a pending attempt or retry is dropped.
pub struct Client<F: ClientFactory> {
    task: Option<JoinHandle<F>>,
    stop: watch::Sender<bool>,
    slot: Slot<ClientMessage<F>>,
}

impl<F: ClientFactory> Client<F> {
    /// Stops for good (Twisted RC-7): a pending attempt or retry is cancelled; a connection
    /// that is up stays up but is not re-established once it ends.
    pub fn stop_trying(&self) {
        self.stop.send_replace(true);
    }

    /// The handle of the current connection, while one is up.
    pub fn handle(&self) -> Option<Handle<ClientMessage<F>>> {
        lock(&self.slot).clone()
    }

    /// Waits until the client has stopped (the factory said stop, retries ran out, or
    /// [`stop_trying`](Self::stop_trying) was called and the connection ended), and returns the
    /// factory with whatever it recorded.
    ///
    /// # Panics
    /// When the client's task panicked (the panic is passed on), or when its runtime shut
    /// down before it finished.
    pub async fn join(mut self) -> F {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(factory) => factory,
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => panic!("loomwork-tokio client task: {err}"),
            },
            // Only `join` and `drop` take the task, and both consume the client.
            None => future::pending().await,
        }
    }
}

impl<F: ClientFactory> Drop for Client<F> {
    fn drop(&mut self) {
        if self.task.take().is_some() {
            // The task detaches when its handle is dropped; it ends once told to stop.
            self.stop.send_replace(true);
        }
    }
}

impl<F: ClientFactory> std::fmt::Debug for Client<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stopping", &*self.stop.borrow())
            .field("connected", &lock(&self.slot).is_some())
            .finish_non_exhaustive()
    }
}

/// Connects to `addr` with the default [`connector::Config`] (30 s attempt timeout) and
/// connection [`Config`], on the current tokio runtime.
///
/// # Panics
/// Outside a tokio runtime (as `tokio::spawn` does); use [`connect_tcp_on`] from other
/// threads.
///
/// ```
/// use loomwork::{Reason, bytes::BytesMut};
/// use loomwork::connector::{ClientFactory, Retry};
/// use loomwork::stream::{Protocol, Transport};
///
/// struct Quiet;
/// impl Protocol for Quiet {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) { data.clear(); }
/// }
/// /// Records why the attempt failed; the default answer is to stop.
/// struct Once(Option<Reason>);
/// impl ClientFactory for Once {
///     type Protocol = Quiet;
///     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Quiet> { Some(Quiet) }
///     fn connection_failed(&mut self, reason: &Reason) -> Retry {
///         self.0 = Some(reason.clone());
///         Retry::Stop
///     }
/// }
///
/// // A port nobody listens on: bind one, then close it.
/// let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// // Inside the runtime: `connect_tcp` starts on the current one.
/// let factory = rt.block_on(async { loomwork_tokio::connect_tcp(addr, Once(None)).join().await });
/// assert_eq!(factory.0, Some(Reason::Refused));
/// ```
pub fn connect_tcp<F>(addr: SocketAddr, factory: F) -> Client<F>
where
    F: ClientFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ClientMessage<F>: Send + 'static,
{
    connect_tcp_with(
        addr,
        factory,
        connector::Config::default(),
        Config::default(),
    )
}

/// Connects to `addr` with the given settings, on the current tokio runtime.
///
/// # Panics
/// Outside a tokio runtime; see [`connect_tcp`].
pub fn connect_tcp_with<F>(
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    config: Config,
) -> Client<F>
where
    F: ClientFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ClientMessage<F>: Send + 'static,
{
    connect_tcp_on(
        &runtime::Handle::current(),
        addr,
        factory,
        connector,
        config,
    )
}

/// Connects to `addr`, running the client task on the runtime behind `handle`; callable from
/// any thread.
pub fn connect_tcp_on<F>(
    handle: &runtime::Handle,
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    config: Config,
) -> Client<F>
where
    F: ClientFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ClientMessage<F>: Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let slot = Slot::default();
    let run = run(
        addr,
        Connector::new(factory, connector),
        Arc::new(config),
        stopped,
        Arc::clone(&slot),
    );
    Client {
        task: Some(handle.spawn(run)),
        stop,
        slot,
    }
}

/// Connects to `addr` on a [`LocalSet`], for factories and protocols that are not `Send`. The
/// protocol's `Message` must still be `Send`: handles cross threads. The task runs while
/// `local` is being driven, inside its runtime.
pub fn connect_tcp_local<F>(
    local: &LocalSet,
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    config: Config,
) -> Client<F>
where
    F: ClientFactory + 'static,
    ClientMessage<F>: Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let slot = Slot::default();
    let run = run(
        addr,
        Connector::new(factory, connector),
        Arc::new(config),
        stopped,
        Arc::clone(&slot),
    );
    Client {
        task: Some(local.spawn_local(run)),
        stop,
        slot,
    }
}

/// How one dial ended.
enum Dialed {
    Connected(AsyncFd<TcpStream>),
    Failed(std::io::Error),
    /// The attempt deadline passed first.
    TimedOut,
    /// `stop_trying` was called while dialling.
    Stopped,
}

/// The client task: the [`Connector`]'s run loop.
pub(crate) async fn run<F>(
    addr: SocketAddr,
    mut connector: Connector<F>,
    config: Arc<Config>,
    mut stopped: watch::Receiver<bool>,
    slot: Slot<ClientMessage<F>>,
) -> F
where
    F: ClientFactory,
    ClientMessage<F>: Send + 'static,
{
    let clock = MonotonicClock::new();
    connector.start(clock.now());
    loop {
        if is_stopped(&stopped) {
            connector.stop_trying();
        }
        if connector.poll_action() == Some(connector::Action::Dial) {
            // A CancelDial needs nothing: an abandoned attempt's future is already dropped.
            match dial(addr, connector.next_timeout(), &mut stopped, clock).await {
                Dialed::Connected(stream) => {
                    let ran = run_connection(stream, &mut connector, &config, &slot, clock);
                    if let Some((ended, stream, mut companions)) = ran.await {
                        if is_stopped(&stopped) {
                            connector.stop_trying();
                        }
                        connector.handle_connection_lost(clock.now(), ended.reason);
                        drop(stream);
                        companions.finish().await;
                    }
                }
                Dialed::Failed(err) => {
                    connector.handle_connect_failed(clock.now(), reason_from_io(&err));
                }
                Dialed::TimedOut => connector.handle_timeout(clock.now()),
                Dialed::Stopped => connector.stop_trying(),
            }
            continue;
        }
        if connector.is_ended() {
            return connector.into_factory();
        }
        match connector.next_timeout() {
            Some(at) if at <= clock.now() => connector.handle_timeout(clock.now()),
            Some(at) => {
                sleep_until(at, clock).or(wait_stop(&mut stopped)).await;
                connector.handle_timeout(clock.now());
            }
            // Neither waiting nor dialling nor stopped cannot happen; stop rather than hang.
            None => connector.stop_trying(),
        }
    }
}

/// Dials `addr`, giving up at `deadline` or when stopped.
async fn dial(
    addr: SocketAddr,
    deadline: Option<Instant>,
    stopped: &mut watch::Receiver<bool>,
    clock: MonotonicClock,
) -> Dialed {
    let connect = async {
        match connect(addr).await {
            Ok(stream) => Dialed::Connected(stream),
            Err(err) => Dialed::Failed(err),
        }
    };
    let timeout = async {
        match deadline {
            Some(at) => sleep_until(at, clock).await,
            None => future::pending().await,
        }
        Dialed::TimedOut
    };
    let stop = async {
        wait_stop(stopped).await;
        Dialed::Stopped
    };
    connect.or(timeout).or(stop).await
}

/// loomwork-net's non-blocking connect, awaited through the reactor: the socket is writable
/// (or in error) once the attempt is over.
async fn connect(addr: SocketAddr) -> std::io::Result<AsyncFd<TcpStream>> {
    match start_connect(addr)? {
        Dial::Connected(stream) => register(stream, Interest::READABLE | Interest::WRITABLE),
        Dial::InProgress(stream) => {
            let stream = register(stream, Interest::READABLE | Interest::WRITABLE)?;
            let mut ready = stream.writable().await?;
            // Writable once over: the connection's own first send consumes the readiness.
            ready.retain_ready();
            drop(ready);
            finish_connect(stream.get_ref())?;
            Ok(stream)
        }
    }
}

/// Runs one established connection; returns how it ended, its socket (still to be closed)
/// and its companions (still to be run to their end).
/// `None` when the factory refused it (the connector has already been told, and the socket is
/// closed on return).
async fn run_connection<F>(
    stream: AsyncFd<TcpStream>,
    connector: &mut Connector<F>,
    config: &Arc<Config>,
    slot: &Slot<ClientMessage<F>>,
    clock: MonotonicClock,
) -> Option<(Ended, AsyncFd<TcpStream>, Companions)>
where
    F: ClientFactory,
    ClientMessage<F>: Send + 'static,
{
    let (local, peer) = match (stream.get_ref().local_addr(), stream.get_ref().peer_addr()) {
        (Ok(local), Ok(peer)) => (local, peer),
        // Reset between connect and now: an attempt that failed after all.
        (Err(err), _) | (_, Err(err)) => {
            connector.handle_connect_failed(clock.now(), reason_from_io(&err));
            return None;
        }
    };
    if let Err(err) = tcp::prepare(stream.get_ref()) {
        connector.handle_connect_failed(clock.now(), reason_from_io(&err));
        return None;
    }
    connector.handle_connected(clock.now(), peer);
    let protocol = connector.poll_protocol()?;
    let (handle, inbox) = new_handle(peer);
    *lock(slot) = Some(handle.clone());
    let mut conn = Connection::new(protocol, Arc::clone(config));
    conn.set_handle(handle);
    conn.handle_connected(clock.now(), local, peer);
    let mut companions = Companions::default();
    let ended = drive(&stream, &mut conn, &inbox, &mut companions, clock).await;
    *lock(slot) = None;
    Some((ended, stream, companions))
}

async fn sleep_until(at: Instant, clock: MonotonicClock) {
    // Compare first: an expired deadline needs no trip through the timer wheel.
    if at > clock.now() {
        tokio::time::sleep_until(tokio::time::Instant::from_std(clock.to_std(at))).await;
    }
}

fn is_stopped(stopped: &watch::Receiver<bool>) -> bool {
    *stopped.borrow()
}

/// Resolves once `stop_trying` has been called (or the client is gone).
async fn wait_stop(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
