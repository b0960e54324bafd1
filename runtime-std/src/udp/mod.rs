//! Datagram endpoints on a thread each: `listen_udp`, `listen_multicast`
//! (docs/twisted-behaviour.md §7–§9).
//!
//! Each endpoint gets one OS thread that sleeps in `poll(2)` (see `wait.rs`) on its socket,
//! woken at once by a datagram, room in a full send buffer, a posted message, a stop request
//! or the endpoint's next deadline; no polling ticks. A send never waits on its own, so a stop
//! is never stuck behind a send path that does not drain. The thread runs the core's [`Endpoint`] and nothing else: all
//! protocol logic, filtering and limits live in the core.
//!
//! [`Endpoint`]: loomwork::datagram::Endpoint

mod driver;
mod handle;

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};

use loomwork::datagram::{Config, DatagramProtocol};

pub use handle::{UdpEndpoint, UdpHandle};
/// The socket plumbing of datagram endpoints (binding, multicast setup, socket commands), for
/// callers that set a socket up themselves before [`adopt_udp`]; shared by both runtimes.
pub use loomwork_net::udp as socket;

/// Binds a UDP socket to `addr` and runs `protocol` on it (Twisted `listenUDP`, UD-1).
///
/// Port 0 picks a free port: read it back with [`UdpEndpoint::local_addr`]. The address
/// family of `addr` is the socket's.
///
/// ```
/// use loomwork::bytes::Bytes;
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
/// let server = loomwork_std::listen_udp("127.0.0.1:0".parse().unwrap(), Echo).unwrap();
/// let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// client.send_to(b"ping", server.local_addr()).unwrap();
/// let mut buf = [0; 16];
/// let (n, _) = client.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"ping");
/// server.stop();
/// let _echo: Echo = server.join();
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
///
/// The protocol joins its groups itself, usually in `start_protocol`
/// ([`join_group`](loomwork::datagram::DatagramTransport::join_group)). See
/// [`socket::bind_multicast`] for the socket options applied.
pub fn listen_multicast<P>(port: u16, protocol: P) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    let any = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port));
    listen_multicast_with(any, protocol, Config::default())
}

/// [`listen_multicast`] on an explicit bind address (`[::]:PORT` for IPv6 groups, or the
/// group address itself, MC-5) with explicit limits.
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

/// Runs `protocol` on a socket bound elsewhere (Twisted `adoptDatagramPort`), for options
/// this crate does not set. The socket is switched to non-blocking mode.
///
/// Datagrams already queued in the socket are delivered too; if the protocol connects in
/// `start_protocol`, the core drops the ones from other senders, which the kernel would not.
pub fn adopt_udp<P>(socket: UdpSocket, protocol: P, config: Config) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    socket.set_nonblocking(true)?;
    spawn(socket, protocol, config)
}

fn spawn<P>(socket: UdpSocket, protocol: P, config: Config) -> io::Result<UdpEndpoint<P>>
where
    P: DatagramProtocol + Send + 'static,
    P::Message: Send + 'static,
{
    let local = socket.local_addr()?;
    let (driver, handle) = driver::Driver::new(socket, local, config)?;
    let thread = std::thread::Builder::new()
        .name(format!("loomwork-udp {local}"))
        .spawn(move || driver.run(protocol))?;
    Ok(UdpEndpoint::new(local, handle, thread))
}
