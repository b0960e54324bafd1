//! Listening sockets and their accept loops.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use loomwork::stream::{Config, ServerFactory};
use polling::{Events, Poller};
use socket2::{Domain, Protocol as IpProtocol, Socket, Type};

use crate::registration::Registered;
use crate::serve::{ServerMessage, Shared};
use crate::server::Server;

/// Accepts per wake-up before the loop checks for a stop request (Twisted DF-21 starts at 100).
const ACCEPT_BATCH: usize = 100;
/// First pause after an accept error such as EMFILE; doubles up to [`MAX_ACCEPT_PAUSE`].
const MIN_ACCEPT_PAUSE: Duration = Duration::from_millis(5);
/// Longest pause between accept attempts while the process is out of descriptors.
const MAX_ACCEPT_PAUSE: Duration = Duration::from_millis(500);

/// How [`listen_tcp_with`] listens (and loomwork-smol's `listen_tcp_with`, which uses this type).
///
/// ```
/// use loomwork_std::ListenConfig;
/// let config = ListenConfig { listeners: 4, ..ListenConfig::default() };
/// assert_eq!(config.backlog, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// Limits and thresholds for every accepted connection.
    pub connection: Config,
    /// How many listening sockets to open on the address, each with its own accept thread (a
    /// task in loomwork-smol).
    /// Above 1 they share the port through `SO_REUSEPORT`, and the kernel spreads incoming
    /// connections over them (multi-core accepting; Unix only). 0 is taken as 1.
    pub listeners: usize,
    /// The `listen(2)` backlog of each socket (Twisted's is 50, DF-8; busy servers want more).
    pub backlog: i32,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            connection: Config::default(),
            listeners: 1,
            backlog: 1024,
        }
    }
}

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
/// accepting, 5 ms at first and doubling up to 500 ms, instead of spinning.
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

/// Opens `config.listeners` non-blocking listening sockets on `addr`, all on the same port
/// (the one the first bind picked, when `addr` asks for port 0). An IPv6 address listens for
/// IPv6 only, on every OS alike. Shared with loomwork-smol, so both runtimes bind the same way.
#[doc(hidden)]
pub fn bind_listeners(addr: SocketAddr, config: &ListenConfig) -> io::Result<Vec<TcpListener>> {
    let count = config.listeners.max(1);
    let share_port = count > 1;
    let first = bind_one(addr, config.backlog, share_port)?;
    // With port 0 the first bind picks the port; the others must join that one.
    let bound = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..count {
        listeners.push(bind_one(bound, config.backlog, true)?);
    }
    Ok(listeners)
}

fn bind_one(addr: SocketAddr, backlog: i32, share_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(IpProtocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if share_port {
        reuse_port(&socket)?;
    }
    if addr.is_ipv6() {
        // Not left to the OS default (dual-stack on Linux, not elsewhere): `[::]` and
        // `0.0.0.0` can then listen on one port side by side, as the UDP sockets do.
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(unix)]
fn reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(unix))]
fn reuse_port(_: &Socket) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "several listeners on one port need SO_REUSEPORT (Unix only)",
    ))
}

/// One listening socket's accept thread, and how to stop it.
pub(crate) struct Acceptor {
    thread: Option<JoinHandle<()>>,
    poller: Arc<Poller>,
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
        let poller = Arc::new(Poller::new()?);
        let listener = Registered::new(Arc::clone(&poller), listener)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = thread::Builder::new()
            .name(format!("loomwork-accept-{}-{index}", addr.port()))
            .spawn(move || accept_loop(listener, &shared, &thread_stop))?;
        Ok(Acceptor {
            thread: Some(thread),
            poller,
            stop,
        })
    }

    /// Asks the accept thread to stop, without waiting for it.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.poller.notify();
    }

    /// Stops the accept thread and waits until it has closed its listening socket.
    pub(crate) fn stop_and_join(&mut self) {
        self.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts until stopped. Returning drops (closes) the listening socket.
fn accept_loop<F>(mut listener: Registered<TcpListener>, shared: &Arc<Shared<F>>, stop: &AtomicBool)
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    let mut events = Events::with_capacity(NonZeroUsize::MIN);
    let mut next_pause = MIN_ACCEPT_PAUSE;
    while !stop.load(Ordering::Acquire) {
        let pause = match accept_batch(listener.socket(), shared) {
            Ok(()) => {
                next_pause = MIN_ACCEPT_PAUSE;
                None
            }
            Err(_) => {
                let pause = next_pause;
                next_pause = (next_pause * 2).min(MAX_ACCEPT_PAUSE);
                Some(pause)
            }
        };
        if stop.load(Ordering::Acquire) {
            break;
        }
        // While pausing, readiness is not wanted: a full backlog would wake us at once.
        let armed = listener.arm(pause.is_none(), false);
        let timeout = match armed {
            Ok(()) => pause,
            Err(_) => Some(MAX_ACCEPT_PAUSE),
        };
        events.clear();
        match listener.poller().wait(&mut events, timeout) {
            Ok(_) => {
                if !events.is_empty() {
                    listener.fired();
                }
            }
            Err(_) => thread::sleep(MAX_ACCEPT_PAUSE),
        }
    }
}

/// Accepts what is waiting, up to [`ACCEPT_BATCH`]. An error asks the caller to pause.
fn accept_batch<F>(listener: &TcpListener, shared: &Arc<Shared<F>>) -> io::Result<()>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    for _ in 0..ACCEPT_BATCH {
        match listener.accept() {
            Ok((stream, peer)) => shared.start(stream, peer)?,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if is_transient(&err) => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Errors that concern only the connection being accepted, not the listener (accept(2):
/// "treat them like EAGAIN by retrying").
fn is_transient(err: &io::Error) -> bool {
    use io::ErrorKind as K;
    if matches!(
        err.kind(),
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted
    ) {
        return true;
    }
    matches!(
        err.raw_os_error(),
        Some(
            libc::EPROTO
                | libc::ENOPROTOOPT
                | libc::EHOSTDOWN
                | libc::EHOSTUNREACH
                | libc::ENETDOWN
                | libc::ENETUNREACH
                | libc::EOPNOTSUPP
                | libc::ETIMEDOUT
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_is_not_transient_but_an_aborted_peer_is() {
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(is_transient(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        assert!(is_transient(&io::Error::from_raw_os_error(libc::EPROTO)));
    }

    #[test]
    fn several_listeners_share_one_port() {
        let config = ListenConfig {
            listeners: 3,
            ..ListenConfig::default()
        };
        let listeners = bind_listeners("127.0.0.1:0".parse().unwrap(), &config).unwrap();
        let port = listeners[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(listeners.len(), 3);
        for listener in &listeners {
            assert_eq!(listener.local_addr().unwrap().port(), port);
        }
    }
}
