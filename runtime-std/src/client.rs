//! `connect_tcp`: a thread that drives a [`Connector`] and runs each connection it makes.

use std::fmt;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle, Thread};

use loomwork::connector::ClientMessage;
use loomwork::connector::{self, ClientFactory, Connector};
use loomwork::stream::{Config, Connection, Handle};
use loomwork::{MonotonicClock, Reason};

use loomwork_net::dial::{finish_connect, start_connect, Dial};
use loomwork_net::{next_connection_id, reason_from_io};

use crate::mailbox::ThreadMailbox;
use crate::wait::{self, Wakeup, Watch};

use crate::driver;

/// Connects to `addr` with the default [`connector::Config`] (30 s connect timeout, Twisted's
/// reconnect backoff) and connection [`Config`]; see [`connect_tcp_with`].
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::connector::{ClientFactory, Retry};
/// use loomwork::stream::{Protocol, Transport};
/// use loomwork::Reason;
/// use std::net::SocketAddr;
///
/// struct Probe;
/// impl Protocol for Probe {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) { data.clear(); }
/// }
///
/// /// Tries once and remembers why it failed.
/// #[derive(Default)]
/// struct Once { failure: Option<Reason> }
/// impl ClientFactory for Once {
///     type Protocol = Probe;
///     fn build_protocol(&mut self, _: SocketAddr) -> Option<Probe> { Some(Probe) }
///     fn connection_failed(&mut self, reason: &Reason) -> Retry {
///         self.failure = Some(reason.clone());
///         Retry::Stop
///     }
/// }
///
/// // A port nobody listens on: bind one, then close it.
/// let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
/// let factory = loomwork_std::connect_tcp(addr, Once::default()).join();
/// assert_eq!(factory.failure, Some(Reason::Refused));
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Panics
///
/// Like `std::thread::spawn`, if the operating system cannot create the client's thread.
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

/// Connects to `addr` from a named thread that drives a [`Connector`] around `factory`.
///
/// The thread dials when the connector says so, without blocking in `connect(2)`: an attempt
/// that outlives [`connector::Config::connect_timeout`] fails with `Reason::TimedOut(Connect)`.
/// It reports each outcome to the connector (and so to the factory, which answers with a retry
/// decision), runs each established connection on the same thread until it ends, sleeps until
/// the connector's next deadline, and repeats until the connector stops: the factory said
/// stop, retries ran out, or [`Client::stop_trying`] was called.
///
/// # Panics
///
/// Like `std::thread::spawn`, if the operating system cannot create the client's thread.
pub fn connect_tcp_with<F>(
    addr: SocketAddr,
    factory: F,
    connector: connector::Config,
    connection: Config,
) -> Client<F>
where
    F: ClientFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ClientMessage<F>: Send + 'static,
{
    // A missing wake-up descriptor is reported to the factory as the failure of every attempt,
    // rather than making this function fallible for a resource problem the factory can retry on.
    let wakeup = Wakeup::new()
        .map(Arc::new)
        .map_err(|err| reason_from_io(&err));
    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        waker: wakeup.as_ref().ok().cloned(),
        thread: Mutex::new(None),
        current: Mutex::new(None),
    });
    let run = Run {
        addr,
        connector: Connector::new(factory, connector),
        config: Arc::new(connection),
        wakeup,
        shared: Arc::clone(&shared),
        clock: MonotonicClock::new(),
        stop_applied: false,
    };
    let thread = thread::Builder::new()
        .name(format!("loomwork-client-{addr}"))
        .spawn(move || run.run())
        .expect("failed to spawn the loomwork client thread");
    *lock(&shared.thread) = Some(thread.thread().clone());
    Client {
        shared,
        thread: Some(thread),
    }
}

/// A running client: the thread started by [`connect_tcp`].
///
/// Dropping it without [`join`](Self::join) calls [`stop_trying`](Self::stop_trying) and
/// detaches the thread: an established connection runs on until it ends, and no new attempt
/// is made.
pub struct Client<F: ClientFactory> {
    shared: Arc<Shared<ClientMessage<F>>>,
    thread: Option<JoinHandle<F>>,
}

impl<F: ClientFactory> Client<F> {
    /// Stops for good (Twisted `stopTrying`, RC-7): a pending retry or an attempt in progress
    /// is cancelled at once; an established connection stays up, but is not re-established
    /// after it ends.
    pub fn stop_trying(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.wake();
    }

    /// The handle of the current connection, if one is established.
    pub fn handle(&self) -> Option<Handle<ClientMessage<F>>> {
        lock(&self.shared.current).clone()
    }

    /// Waits until the connector has stopped and its last connection has ended, and returns
    /// the factory so that callers can read results out of it.
    ///
    /// A factory that always retries never stops on its own: call
    /// [`stop_trying`](Self::stop_trying) (and end the connection, for example through
    /// [`handle`](Self::handle)) first.
    ///
    /// # Panics
    ///
    /// Re-raises a panic of the protocol or the factory on the client thread.
    pub fn join(mut self) -> F {
        let thread = self.thread.take().unwrap_or_else(|| unreachable!());
        match thread.join() {
            Ok(factory) => factory,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<F: ClientFactory> Drop for Client<F> {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_trying();
        }
    }
}

impl<F: ClientFactory> fmt::Debug for Client<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("stopping", &self.shared.stop.load(Ordering::Relaxed))
            .field("connection", &self.handle())
            .finish_non_exhaustive()
    }
}

/// What the [`Client`] and its thread share.
struct Shared<M> {
    stop: AtomicBool,
    /// Wakes the thread while it waits on a connection attempt or a connection.
    waker: Option<Arc<Wakeup>>,
    /// Wakes the thread while it sleeps between attempts.
    thread: Mutex<Option<Thread>>,
    current: Mutex<Option<Handle<M>>>,
}

impl<M> Shared<M> {
    fn wake(&self) {
        if let Some(wakeup) = &self.waker {
            wakeup.notify();
        }
        if let Some(thread) = lock(&self.thread).as_ref() {
            thread.unpark();
        }
    }
}

/// The client thread's state.
struct Run<F: ClientFactory> {
    addr: SocketAddr,
    connector: Connector<F>,
    /// Shared by the connections of successive attempts.
    config: Arc<Config>,
    wakeup: Result<Arc<Wakeup>, Reason>,
    shared: Arc<Shared<ClientMessage<F>>>,
    clock: MonotonicClock,
    stop_applied: bool,
}

impl<F> Run<F>
where
    F: ClientFactory,
    ClientMessage<F>: Send + 'static,
{
    fn run(mut self) -> F {
        // A connection attempt in progress: its socket is writable (or in error) once it is over.
        let mut attempt: Option<TcpStream> = None;
        self.connector.start(self.clock.now());
        loop {
            let now = self.clock.now();
            self.apply_stop();
            if self.connector.next_timeout().is_some_and(|at| at <= now) {
                self.connector.handle_timeout(now);
            }
            while let Some(action) = self.connector.poll_action() {
                // Any earlier attempt is abandoned (its socket closed) on either action.
                attempt = None;
                if action == connector::Action::Dial {
                    attempt = self.dial();
                }
            }
            if self.connector.is_ended() && attempt.is_none() {
                break;
            }
            let deadline = self.connector.next_timeout();
            if deadline.is_some_and(|at| at <= self.clock.now()) {
                continue;
            }
            match (attempt.take(), &self.wakeup) {
                (Some(pending), Ok(wakeup)) => {
                    let wakeup = Arc::clone(wakeup);
                    let timeout = deadline.map(|at| self.clock.until(at));
                    let watch = Watch::new(&pending, false, true);
                    let slept = wait::sleep(&wakeup, Some(watch), timeout);
                    match slept {
                        Err(err) => self.failed(&err),
                        Ok(ready) if ready.writable => match finish_connect(&pending) {
                            Ok(()) => self.connected(pending, &wakeup),
                            Err(err) => self.failed(&err),
                        },
                        Ok(_) => attempt = Some(pending),
                    }
                }
                // Between attempts: sleep until the retry is due or `stop_trying` unparks us.
                _ => match deadline {
                    Some(at) => thread::park_timeout(self.clock.until(at)),
                    None => thread::park(),
                },
            }
        }
        self.connector.into_factory()
    }

    /// Starts an attempt; a connection made at once is run to its end before returning.
    fn dial(&mut self) -> Option<TcpStream> {
        let wakeup = match &self.wakeup {
            Ok(wakeup) => Arc::clone(wakeup),
            Err(reason) => {
                let reason = reason.clone();
                self.connector
                    .handle_connect_failed(self.clock.now(), reason);
                return None;
            }
        };
        match start_connect(self.addr) {
            Ok(Dial::InProgress(pending)) => Some(pending),
            Ok(Dial::Connected(stream)) => {
                self.connected(stream, &wakeup);
                None
            }
            Err(err) => {
                self.failed(&err);
                None
            }
        }
    }

    fn failed(&mut self, err: &std::io::Error) {
        self.connector
            .handle_connect_failed(self.clock.now(), reason_from_io(err));
    }

    /// Runs an established connection until it ends, then reports it to the connector.
    fn connected(&mut self, stream: TcpStream, wakeup: &Arc<Wakeup>) {
        let peer = stream.peer_addr().unwrap_or(self.addr);
        self.connector.handle_connected(self.clock.now(), peer);
        let Some(protocol) = self.connector.poll_protocol() else {
            // Refused by the factory (Twisted PR-3): the connector already counted it as lost
            // with `Reason::Rejected`; dropping the stream closes it.
            return;
        };
        let mailbox = Arc::new(ThreadMailbox::new(Arc::clone(wakeup)));
        let handle = Handle::new(next_connection_id(), peer, Arc::clone(&mailbox) as _);
        let mut connection = Connection::new(protocol, Arc::clone(&self.config));
        connection.set_handle(handle.clone());
        *lock(&self.shared.current) = Some(handle);
        let (reason, mut companions) = driver::run(
            &mut connection,
            stream,
            (None, peer),
            wakeup,
            &mailbox,
            &self.clock,
        );
        *lock(&self.shared.current) = None;
        mailbox.close();
        drop(connection);
        // A stop requested while connected is applied before the loss is reported, so the
        // connector answers it with "stop" whatever the factory says (RC-7).
        self.apply_stop();
        self.connector
            .handle_connection_lost(self.clock.now(), reason);
        // Work attached to the connection (a relay's upstream leg) runs to its end first.
        companions.finish(wakeup, &self.clock);
    }

    fn apply_stop(&mut self) {
        if !self.stop_applied && self.shared.stop.load(Ordering::Acquire) {
            self.stop_applied = true;
            self.connector.stop_trying();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
