//! Listening sockets: binding them, and what to do when `accept(2)` fails.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use loomwork::stream::Config;
use socket2::Socket;

use crate::dial::tcp_socket;

/// Connections accepted per wake-up before an accept loop looks at anything else (a stop
/// request, other tasks). Twisted accepts up to 100 per readable event (DF-21); a storm of
/// connections then cannot starve established ones for longer than a hundred accepts.
pub const ACCEPT_BATCH: usize = 100;

/// How a runtime listens: `listen_tcp_with` in both runtimes takes this.
///
/// ```
/// use loomwork_net::ListenConfig;
/// let config = ListenConfig { listeners: 4, ..ListenConfig::default() };
/// assert_eq!(config.backlog, 1024);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenConfig {
    /// Limits and thresholds for every accepted connection.
    pub connection: Config,
    /// How many listening sockets to open on the address, each with its own accept thread
    /// (loomwork-std) or task (loomwork-smol).
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

/// Opens `config.listeners` non-blocking listening sockets on `addr`, all on the same port
/// (the one the first bind picked, when `addr` asks for port 0), with `SO_REUSEADDR` (DF-8).
/// An IPv6 address listens for IPv6 only, on every OS alike.
///
/// ```
/// let config = loomwork_net::ListenConfig { listeners: 2, ..Default::default() };
/// let listeners = loomwork_net::listen::bind_listeners("127.0.0.1:0".parse()?, &config)?;
/// assert_eq!(listeners[0].local_addr()?.port(), listeners[1].local_addr()?.port());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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
    let socket = tcp_socket(addr)?;
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

/// A connection [`accept`] took from a listener, ready for a runtime to register.
#[derive(Debug)]
pub struct Accepted {
    /// The socket: non-blocking, prepared as [`tcp::prepare`](crate::tcp::prepare) does.
    pub stream: TcpStream,
    /// The peer's address, from `accept(2)` itself (`getpeername(2)` fails once the peer has
    /// reset, and such a connection must still start and deliver what the peer sent).
    pub peer: SocketAddr,
    /// Our address on this connection.
    pub local: SocketAddr,
}

/// Accepts one connection from `listener`, whose address is `bound` (its `local_addr()`,
/// asked once by the accept loop), with as few system calls as the platform allows: on Linux
/// and Android `accept4(2)` makes the socket non-blocking and close-on-exec in the same call
/// (no `ioctl(FIONBIO)`), and the local address is `bound` itself unless the listener is bound
/// to a wildcard address (no `getsockname(2)`). `TCP_NODELAY` is set, best effort, as for
/// every connection. The error is `accept(2)`'s, for [`classify_accept_error`].
///
/// ```
/// use std::net::{TcpListener, TcpStream};
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// listener.set_nonblocking(true)?;
/// let bound = listener.local_addr()?;
/// let client = TcpStream::connect(bound)?;
/// let accepted = loop {
///     match loomwork_net::listen::accept(&listener, bound) {
///         Ok(accepted) => break accepted,
///         Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
///         Err(e) => return Err(e.into()),
///     }
/// };
/// assert_eq!(accepted.peer, client.local_addr()?);
/// assert_eq!(accepted.local, bound);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn accept(listener: &TcpListener, bound: SocketAddr) -> io::Result<Accepted> {
    let (stream, peer) = accept_nonblocking(listener)?;
    crate::tcp::prepare_accepted(&stream)?;
    let local = if bound.ip().is_unspecified() {
        stream.local_addr()?
    } else {
        bound
    };
    Ok(Accepted {
        stream,
        peer,
        local,
    })
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    use rustix::net::{acceptfrom_with, SocketFlags};
    let (fd, peer) = acceptfrom_with(listener, SocketFlags::NONBLOCK | SocketFlags::CLOEXEC)?;
    let stream = TcpStream::from(fd);
    let peer = match peer.map(SocketAddr::try_from) {
        Some(Ok(peer)) => peer,
        // A TCP listener's peers have IP addresses; should the kernel give none, ask.
        _ => stream.peer_addr()?,
    };
    Ok((stream, peer))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn accept_nonblocking(listener: &TcpListener) -> io::Result<(TcpStream, SocketAddr)> {
    let (stream, peer) = listener.accept()?;
    stream.set_nonblocking(true)?;
    Ok((stream, peer))
}

/// What an accept loop should do about a failed `accept(2)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Nothing is waiting (`EAGAIN`): sleep until the listener is readable.
    Drained,
    /// The failure concerns only the connection being accepted (it was reset or aborted in
    /// the backlog, or a network error hit its handshake): accept the next one at once.
    Transient,
    /// The process or system is out of something (descriptors: `EMFILE`, `ENFILE`; memory:
    /// `ENOBUFS`, `ENOMEM`) or the error is unknown: the same call would fail again right
    /// away, so pause for [`AcceptBackoff::failed`] before retrying.
    Exhausted,
}

/// Classifies an `accept(2)` error.
///
/// accept(2) asks that network errors already pending on the new socket be treated "like
/// EAGAIN by retrying"; anything else is assumed to last until some descriptor or memory is
/// released, so retrying at once would only spin.
///
/// ```
/// use loomwork_net::listen::{classify_accept_error, AcceptFailure};
/// let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
/// assert_eq!(classify_accept_error(&emfile), AcceptFailure::Exhausted);
/// let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
/// assert_eq!(classify_accept_error(&aborted), AcceptFailure::Transient);
/// ```
pub fn classify_accept_error(err: &io::Error) -> AcceptFailure {
    use io::ErrorKind as K;
    match err.kind() {
        K::WouldBlock => AcceptFailure::Drained,
        K::ConnectionAborted | K::ConnectionReset | K::Interrupted => AcceptFailure::Transient,
        _ if is_transient_code(err.raw_os_error()) => AcceptFailure::Transient,
        _ => AcceptFailure::Exhausted,
    }
}

#[cfg(unix)]
fn is_transient_code(code: Option<i32>) -> bool {
    matches!(
        code,
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

#[cfg(not(unix))]
fn is_transient_code(_: Option<i32>) -> bool {
    false
}

/// The one accept back-off of both runtimes: pause [`MIN_PAUSE`](Self::MIN_PAUSE) after the
/// first [`AcceptFailure::Exhausted`], doubling up to [`MAX_PAUSE`](Self::MAX_PAUSE), back to
/// the minimum after any successful accept.
///
/// ```
/// use loomwork_net::AcceptBackoff;
/// let mut backoff = AcceptBackoff::new();
/// assert_eq!(backoff.failed(), AcceptBackoff::MIN_PAUSE);
/// assert_eq!(backoff.failed(), AcceptBackoff::MIN_PAUSE * 2);
/// backoff.succeeded();
/// assert_eq!(backoff.failed(), AcceptBackoff::MIN_PAUSE);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AcceptBackoff {
    next: Duration,
}

impl AcceptBackoff {
    /// The first pause: short, because a descriptor is often freed within milliseconds (a
    /// busy server closes connections all the time), and waiting peers should not notice.
    pub const MIN_PAUSE: Duration = Duration::from_millis(5);
    /// The longest pause: while exhaustion lasts the loop wakes at most twice a second, which
    /// costs nothing measurable, and a peer waits at most half a second once a descriptor is
    /// free again (a full second, as smol once had, doubled that for no saving).
    pub const MAX_PAUSE: Duration = Duration::from_millis(500);

    /// A back-off that has seen no failure.
    pub const fn new() -> Self {
        AcceptBackoff {
            next: Self::MIN_PAUSE,
        }
    }

    /// An accept succeeded: the next failure pauses for the minimum again.
    pub fn succeeded(&mut self) {
        self.next = Self::MIN_PAUSE;
    }

    /// An accept failed with [`AcceptFailure::Exhausted`]: how long to pause now.
    pub fn failed(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX_PAUSE);
        pause
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_pauses_but_an_aborted_peer_is_skipped() {
        let of = |errno| classify_accept_error(&io::Error::from_raw_os_error(errno));
        assert_eq!(of(libc::EMFILE), AcceptFailure::Exhausted);
        assert_eq!(of(libc::ENFILE), AcceptFailure::Exhausted);
        assert_eq!(of(libc::ENOBUFS), AcceptFailure::Exhausted);
        assert_eq!(of(libc::ECONNABORTED), AcceptFailure::Transient);
        assert_eq!(of(libc::EPROTO), AcceptFailure::Transient);
        assert_eq!(of(libc::EAGAIN), AcceptFailure::Drained);
    }

    #[test]
    fn the_back_off_doubles_up_to_its_maximum() {
        let mut backoff = AcceptBackoff::new();
        let pauses: Vec<Duration> = (0..10).map(|_| backoff.failed()).collect();
        assert_eq!(pauses[0], AcceptBackoff::MIN_PAUSE);
        assert!(pauses.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(pauses[9], AcceptBackoff::MAX_PAUSE);
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
