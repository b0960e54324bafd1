//! Datagram endpoints as tokio tasks: `listen_udp`, `listen_multicast`
//! (docs/twisted-behaviour.md §7–§9).
//!
//! Each endpoint is one task over a socket registered with tokio's reactor
//! (`tokio::io::unix::AsyncFd`), a `tokio::time::Sleep` for the core's next deadline and a
//! channel for messages. The task runs the core's [`Endpoint`] and nothing else. Sockets are
//! set up exactly as in the other runtimes (the same [`socket`] code, loomwork-net's), so all
//! runtimes behave alike.
//!
//! [`Endpoint`]: loomwork::datagram::Endpoint

mod driver;
mod handle;

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

pub use handle::{UdpEndpoint, UdpHandle};
use loomwork::datagram::{Config, DatagramProtocol};
use loomwork_net::tokio_fd::register;
/// The socket plumbing of datagram endpoints (binding, multicast setup, socket commands), for
/// callers that set a socket up themselves before [`endpoint`] or [`adopt_udp`]; shared by
/// every runtime.
pub use loomwork_net::udp as socket;
use tokio::io::Interest;

use crate::server::current;

/// Binds a UDP socket to `addr` and runs `protocol` on it as a task on the current tokio
/// runtime (Twisted `listenUDP`, UD-1). Port 0 picks a free port: see
/// [`UdpEndpoint::local_addr`]. Fails with an error outside a runtime.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::datagram::{DatagramProtocol, DatagramTransport};
///
/// struct Echo;
/// impl DatagramProtocol for Echo {
///     type Message = ();
///     fn datagram_received(&mut self, data: Bytes, from: std::net::SocketAddr, _: bool,
///                          tx: &mut DatagramTransport<'_>) {
///         let _ = tx.send_to(data, from);
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// rt.block_on(async {
///     let server = loomwork_tokio::listen_udp("127.0.0.1:0".parse().unwrap(), Echo).unwrap();
///     let client = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     client.send_to(b"ping", server.local_addr()).await.unwrap();
///     let mut buf = [0; 16];
///     let (n, _) = client.recv_from(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     server.stop();
///     let _echo: Echo = server.join().await;
/// });
/// ```
pub fn listen_udp<P>(addr: SocketAddr, protocol: P) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    listen_udp_with(addr, protocol, Config::default())
}

/// [`listen_udp`] with explicit limits.
pub fn listen_udp_with<P>(
    addr: SocketAddr,
    protocol: P,
    config: Config,
) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    spawn(socket::bind_udp(addr)?, protocol, config)
}

/// Binds a multicast receiver on `0.0.0.0:port`, shared with any other server on the port,
/// and runs `protocol` on it (Twisted `listenMulticast(port, proto, listenMultiple=True)`).
/// The protocol joins its groups itself, usually in `start_protocol`.
pub fn listen_multicast<P>(port: u16, protocol: P) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    listen_multicast_with(any, protocol, Config::default())
}

/// [`listen_multicast`] on an explicit bind address (`[::]:PORT` for IPv6 groups) with
/// explicit limits.
pub fn listen_multicast_with<P>(
    bind: SocketAddr,
    protocol: P,
    config: Config,
) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    spawn(socket::bind_multicast(bind)?, protocol, config)
}

/// Runs `protocol` on an already bound socket wherever you spawn it: returns the endpoint's
/// handle and the future that drives it (and yields the protocol at the end). Spawn it on a
/// `LocalSet` when the protocol is not `Send`. Call it inside a tokio runtime (the socket
/// registers with its reactor); outside one it fails with an error.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::datagram::{Config, DatagramProtocol, DatagramTransport};
///
/// /// Not `Send`: it counts through an `Rc`.
/// struct Counter(std::rc::Rc<std::cell::Cell<u32>>);
/// impl DatagramProtocol for Counter {
///     type Message = ();
///     fn datagram_received(&mut self, _: Bytes, _: std::net::SocketAddr, _: bool,
///                          tx: &mut DatagramTransport<'_>) {
///         self.0.set(self.0.get() + 1);
///         tx.close();
///     }
/// }
///
/// let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// let _entered = rt.enter();
/// let socket = loomwork_tokio::udp::socket::bind_udp("127.0.0.1:0".parse().unwrap()).unwrap();
/// let addr = socket.local_addr().unwrap();
/// let count = std::rc::Rc::new(std::cell::Cell::new(0));
/// let (_poster, run) = loomwork_tokio::udp::endpoint(socket, Counter(count.clone()), Config::default()).unwrap();
/// let local = tokio::task::LocalSet::new();
/// let task = local.spawn_local(run);
/// std::net::UdpSocket::bind("127.0.0.1:0").unwrap().send_to(b"x", addr).unwrap();
/// local.block_on(&rt, task).unwrap();
/// assert_eq!(count.get(), 1);
/// ```
pub fn endpoint<P>(
    socket: UdpSocket,
    protocol: P,
    config: Config,
) -> io::Result<(UdpHandle<P::Message>, impl Future<Output = P>)>
where
    P: DatagramProtocol,
{
    let local = socket.local_addr()?;
    socket.set_nonblocking(true)?;
    let _entered = current()?.enter();
    let socket = register(socket, Interest::READABLE | Interest::WRITABLE)?;
    let (handle, mailbox) = handle::mailbox();
    let run = driver::run(socket, local, protocol, config, mailbox);
    Ok((handle, run))
}

/// Runs `protocol` on a socket bound elsewhere (Twisted `adoptDatagramPort`) as a task on the
/// current tokio runtime. The socket is switched to non-blocking mode.
///
/// Datagrams already queued in the socket are delivered too; if the protocol connects in
/// `start_protocol`, the core drops the ones from other senders, which the kernel would not.
pub fn adopt_udp<P>(socket: UdpSocket, protocol: P, config: Config) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    spawn(socket, protocol, config)
}

fn spawn<P>(socket: UdpSocket, protocol: P, config: Config) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    let runtime = current()?;
    let local = socket.local_addr()?;
    let (handle, run) = endpoint(socket, protocol, config)?;
    let task = runtime.spawn(run);
    Ok(UdpEndpoint::new(local, handle, task))
}
