//! `connect_tcp` and the [`Client`] handle: dial, run the connection, retry as the factory says.

use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use async_channel::{Receiver, Sender};
use async_executor::Task;
use async_io::{Async, Timer};
use futures_lite::future::{self, FutureExt};
use loomwork::connector::ClientMessage;
use loomwork::connector::{self, ClientFactory, Connector};
use loomwork::stream::{Config, Connection, Handle};
use loomwork::{Instant, MonotonicClock};
use loomwork_net::dial::{finish_connect, start_connect, Dial};
use loomwork_net::{reason_from_io, tcp};

use crate::companion::Companions;
use crate::driver::{drive, Ended};
use crate::mailbox::new_handle;
use crate::spawn::{GlobalExecutor, LocalSpawner, Spawner};

/// The connection slot shared between a [`Client`] and its task.
pub(crate) type Slot<M> = Arc<Mutex<Option<Handle<M>>>>;

/// A running client: one task that dials, runs each connection and retries until the factory
/// (or [`stop_trying`](Self::stop_trying)) says stop.
///
/// Dropping a `Client` stops trying: a connection that is up runs until it ends (its protocol
/// still gets `connection_lost`), then the task finishes; a pending attempt or retry is dropped.
pub struct Client<F: ClientFactory> {
    task: Option<Task<F>>,
    stop: Sender<()>,
    slot: Slot<ClientMessage<F>>,
}

impl<F: ClientFactory> Client<F> {
    /// Stops for good (Twisted RC-7): a pending attempt or retry is cancelled; a connection
    /// that is up stays up but is not re-established once it ends.
    pub fn stop_trying(&self) {
        self.stop.close();
    }

    /// The handle of the current connection, while one is up.
    pub fn handle(&self) -> Option<Handle<ClientMessage<F>>> {
        lock(&self.slot).clone()
    }

    /// Waits until the client has stopped (the factory said stop, retries ran out, or
    /// [`stop_trying`](Self::stop_trying) was called and the connection ended), and returns the
    /// factory with whatever it recorded.
    pub async fn join(mut self) -> F {
        match self.task.take() {
            Some(task) => task.await,
            // Only `join` and `drop` take the task, and both consume the client.
            None => future::pending().await,
        }
    }
}

impl<F: ClientFactory> Drop for Client<F> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.stop.close();
            task.detach();
        }
    }
}

impl<F: ClientFactory> std::fmt::Debug for Client<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stopping", &self.stop.is_closed())
            .field("connected", &lock(&self.slot).is_some())
            .finish_non_exhaustive()
    }
}

/// Connects to `addr` with the default [`connector::Config`] (30 s attempt timeout) and
/// connection [`Config`], on smol's global executor.
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
/// let client = loomwork_smol::connect_tcp(addr, Once(None));
/// let factory = smol::block_on(client.join());
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

/// Connects to `addr` with the given settings, on smol's global executor.
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
    connect_tcp_on(&GlobalExecutor, addr, factory, connector, config)
}

/// Connects to `addr`, running the client task on `spawner`.
pub fn connect_tcp_on<S, F>(
    spawner: &S,
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    config: Config,
) -> Client<F>
where
    S: Spawner,
    F: ClientFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ClientMessage<F>: Send + 'static,
{
    let (stop, stopped) = async_channel::bounded(1);
    let slot = Slot::default();
    let run = run(
        addr,
        Connector::new(factory, connector),
        Arc::new(config),
        stopped,
        Arc::clone(&slot),
    );
    Client {
        task: Some(spawner.spawn(run)),
        stop,
        slot,
    }
}

/// Connects to `addr` on a thread-local executor, for factories and protocols that are not
/// `Send`. The protocol's `Message` must still be `Send`: handles cross threads.
pub fn connect_tcp_local<S, F>(
    spawner: &S,
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    config: Config,
) -> Client<F>
where
    S: LocalSpawner,
    F: ClientFactory + 'static,
    ClientMessage<F>: Send + 'static,
{
    let (stop, stopped) = async_channel::bounded(1);
    let slot = Slot::default();
    let run = run(
        addr,
        Connector::new(factory, connector),
        Arc::new(config),
        stopped,
        Arc::clone(&slot),
    );
    Client {
        task: Some(spawner.spawn_local(run)),
        stop,
        slot,
    }
}

/// How one dial ended.
enum Dialed {
    Connected(Async<TcpStream>),
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
    stopped: Receiver<()>,
    slot: Slot<ClientMessage<F>>,
) -> F
where
    F: ClientFactory,
    ClientMessage<F>: Send + 'static,
{
    let clock = MonotonicClock::new();
    connector.start(clock.now());
    loop {
        if stopped.is_closed() {
            connector.stop_trying();
        }
        if connector.poll_action() == Some(connector::Action::Dial) {
            // A CancelDial needs nothing: an abandoned attempt's future is already dropped.
            match dial(addr, connector.next_timeout(), &stopped, clock).await {
                Dialed::Connected(stream) => {
                    let ran = run_connection(stream, &mut connector, &config, &slot, clock);
                    if let Some((ended, stream, mut companions)) = ran.await {
                        if stopped.is_closed() {
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
                sleep_until(at, clock).or(wait_stop(&stopped)).await;
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
    stopped: &Receiver<()>,
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
async fn connect(addr: SocketAddr) -> std::io::Result<Async<TcpStream>> {
    match start_connect(addr)? {
        Dial::Connected(stream) => Async::new(stream),
        Dial::InProgress(stream) => {
            let stream = Async::new(stream)?;
            stream.writable().await?;
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
    stream: Async<TcpStream>,
    connector: &mut Connector<F>,
    config: &Arc<Config>,
    slot: &Slot<ClientMessage<F>>,
    clock: MonotonicClock,
) -> Option<(Ended, Async<TcpStream>, Companions)>
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
    // Compare first: an expired deadline needs no trip through the reactor.
    if at > clock.now() {
        Timer::at(clock.to_std(at)).await;
    }
}

/// Resolves once `stop_trying` has been called (the stop channel is closed).
async fn wait_stop(stopped: &Receiver<()>) {
    while stopped.recv().await.is_ok() {}
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
