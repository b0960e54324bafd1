//! Listening sockets and their accept loops.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use loomwork::stream::ServerFactory;
use loomwork_net::listen::{self, bind_listeners, classify_accept_error, AcceptFailure};
use loomwork_net::{AcceptBackoff, ListenConfig, ACCEPT_BATCH};

use crate::serve::{Arrival, Shared, Started};
use crate::server::Server;
use crate::wait::{self, Wakeup, Watch};
use loomwork::stream::ServerMessage;

/// Listens on `addr` with [`ListenConfig::default`]; see [`listen_tcp_with`].
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
/// use std::io::{Read, Write};
/// use std::time::Duration;
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// let server = loomwork_std::listen_tcp("127.0.0.1:0".parse()?, |_peer| Echo)?;
/// let mut client = std::net::TcpStream::connect(server.local_addr())?;
/// client.write_all(b"ping")?;
/// let mut reply = [0; 4];
/// client.read_exact(&mut reply)?;
/// assert_eq!(&reply, b"ping");
/// drop(client);
/// server.shutdown(Duration::from_secs(1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn listen_tcp<F>(addr: SocketAddr, factory: F) -> io::Result<Server<ServerMessage<F>>>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    listen_tcp_with(addr, factory, ListenConfig::default())
}

/// Listens on `addr` and serves every accepted connection with a protocol from `factory`.
///
/// The listening sockets are bound (with `SO_REUSEADDR`, DF-8) before this returns, so
/// [`Server::local_addr`] is the real port when `addr` asked for port 0. Each listener gets a
/// named accept thread; each accepted connection gets a named thread of its own. The factory is
/// shared by all accept loops: `build_protocol(peer)` runs once per accepted socket (`None`
/// closes it at once, with no callbacks: Twisted PR-2), and `connection_closed(peer, reason)`
/// runs after each connection's `connection_lost`.
///
/// Accept errors never stop the server: transient ones (a peer that reset before we accepted)
/// are skipped; running out of descriptors or threads (EMFILE, ENFILE, ENOMEM) pauses
/// accepting, as [`AcceptBackoff`] says (5 ms at first, doubling up to 500 ms), instead of
/// spinning. Accept threads sleep in the same `poll(2)` as connection threads, woken by a
/// stop request.
///
/// Running short never resets a peer: a connection's second descriptor (its wake-up) is made
/// before `accept(2)` is called, so that when the process is out of descriptors the peer waits
/// in the backlog until some are freed; and a connection whose thread cannot be started yet
/// is kept, socket and protocol, and started after the pause. Each accept thread therefore
/// holds one spare wake-up descriptor, ready for the next connection.
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
    let listeners = bind_listeners(addr, &config)?;
    let local_addr = match listeners.first() {
        Some(listener) => listener.local_addr()?,
        None => return Err(io::Error::other("no listening socket was opened")),
    };
    let shared = Arc::new(Shared::new(factory, config.connection));
    let mut acceptors = Vec::with_capacity(listeners.len());
    for (index, listener) in listeners.into_iter().enumerate() {
        match Acceptor::spawn(listener, Arc::clone(&shared), index, local_addr) {
            Ok(acceptor) => acceptors.push(acceptor),
            Err(err) => {
                acceptors.iter_mut().for_each(Acceptor::stop_and_join);
                return Err(err);
            }
        }
    }
    Ok(Server::new(
        local_addr,
        acceptors,
        Arc::clone(&shared.registry),
    ))
}

/// One listening socket's accept thread, and how to stop it.
pub(crate) struct Acceptor {
    thread: Option<JoinHandle<()>>,
    wakeup: Arc<Wakeup>,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    fn spawn<F>(
        listener: TcpListener,
        shared: Arc<Shared<F>>,
        index: usize,
        addr: SocketAddr,
    ) -> io::Result<Self>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        ServerMessage<F>: Send + 'static,
    {
        let wakeup = Arc::new(Wakeup::new()?);
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_wakeup, thread_stop) = (Arc::clone(&wakeup), Arc::clone(&stop));
        let thread = thread::Builder::new()
            .name(format!("loomwork-accept-{}-{index}", addr.port()))
            .spawn(move || accept_loop(&listener, &shared, &thread_wakeup, &thread_stop))?;
        Ok(Acceptor {
            thread: Some(thread),
            wakeup,
            stop,
        })
    }

    /// Asks the accept thread to stop, without waiting for it.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wakeup.notify();
    }

    /// Stops the accept thread and waits until it has closed its listening socket.
    pub(crate) fn stop_and_join(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until stopped. The caller drops (closes) the listening socket once this returns.
fn accept_loop<F>(
    listener: &TcpListener,
    shared: &Arc<Shared<F>>,
    wakeup: &Wakeup,
    stop: &AtomicBool,
) where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    let mut backoff = AcceptBackoff::new();
    let mut reserve = Reserve {
        wakeup: None,
        waiting: None,
    };
    // Asked once: `listen::accept` gives it to connections on a listener bound to one address.
    let Ok(bound) = listener.local_addr() else {
        return;
    };
    while !stop.load(Ordering::Acquire) {
        let pause = match accept_batch((listener, bound), shared, &mut reserve, &mut backoff) {
            Ok(()) => None,
            Err(()) => Some(backoff.failed()),
        };
        if stop.load(Ordering::Acquire) {
            break;
        }
        // While pausing, readiness is not wanted: a full backlog would wake us at once. The
        // wake-up still ends the pause early for a stop request.
        let socket = pause.is_none().then(|| Watch::new(listener, true, false));
        if wait::sleep(wakeup, socket, pause).is_err() {
            // poll(2) itself failed (ENOMEM): it may work again once memory is freed.
            thread::sleep(AcceptBackoff::MAX_PAUSE);
        }
    }
    // A connection accepted but still without a thread gets one last try, so that a
    // shutdown (which joins this thread before closing the live connections) closes it
    // gracefully with the others; failing that, it is closed and its factory told.
    if let Some(arrival) = reserve.waiting.take() {
        if let Err((arrival, err)) = shared.launch(arrival) {
            shared.abandon(arrival, &err);
        }
    }
}

/// What an accept loop holds between batches so that accepting never outruns what a
/// connection needs.
struct Reserve<F: ServerFactory> {
    /// The wake-up descriptor for the next connection, made before its `accept(2)`.
    wakeup: Option<Arc<Wakeup>>,
    /// A connection accepted whose thread could not be started yet.
    waiting: Option<Arrival<F>>,
}

/// Accepts what is waiting, up to [`ACCEPT_BATCH`]. An error asks the caller to pause: the
/// process is short of descriptors or threads.
///
/// Every connection started resets `backoff` to its minimum, as in loomwork-smol: while
/// descriptors come back a few at a time, each batch that gets some accepted before running
/// short again pauses briefly, instead of waiting out the maximum pause every time.
fn accept_batch<F>(
    (listener, bound): (&TcpListener, SocketAddr),
    shared: &Arc<Shared<F>>,
    reserve: &mut Reserve<F>,
    backoff: &mut AcceptBackoff,
) -> Result<(), ()>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    // The connection that waits for a thread goes first: its peer has waited longest.
    if let Some(arrival) = reserve.waiting.take() {
        if let Err((arrival, _)) = shared.launch(arrival) {
            reserve.waiting = Some(arrival);
            return Err(());
        }
        backoff.succeeded();
    }
    for _ in 0..ACCEPT_BATCH {
        // Everything the connection needs besides its socket, before the socket: a peer left
        // in the backlog only waits, one accepted and then closed would see a reset.
        let wakeup = match reserve.wakeup.take() {
            Some(wakeup) => wakeup,
            None => Arc::new(Wakeup::new().map_err(drop)?),
        };
        match listen::accept(listener, bound) {
            Ok(accepted) => match shared.start(accepted, wakeup) {
                Started::Running => backoff.succeeded(),
                Started::Refused(wakeup) => {
                    backoff.succeeded();
                    reserve.wakeup = Some(wakeup);
                }
                Started::NoThread(arrival) => {
                    reserve.waiting = Some(arrival);
                    return Err(());
                }
            },
            Err(err) => {
                reserve.wakeup = Some(wakeup);
                match classify_accept_error(&err) {
                    AcceptFailure::Drained => return Ok(()),
                    AcceptFailure::Transient => continue,
                    AcceptFailure::Exhausted => return Err(()),
                }
            }
        }
    }
    Ok(())
}
