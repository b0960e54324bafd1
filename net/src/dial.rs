//! Dialing: a non-blocking TCP connect, so that a runtime can wait for it beside its other
//! wake-ups (a stop request, the attempt's deadline) instead of blocking in `connect(2)`.

use std::io;
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Protocol as IpProtocol, Socket, Type};

/// How a connection attempt started.
#[derive(Debug)]
pub enum Dial {
    /// Connected at once (possible on loopback).
    Connected(TcpStream),
    /// In progress: wait until the socket is writable (or in error), then call
    /// [`finish_connect`].
    InProgress(TcpStream),
}

/// Starts connecting to `addr` from a new non-blocking socket.
///
/// ```
/// use loomwork_net::dial::{finish_connect, start_connect, Dial};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let stream = match start_connect(listener.local_addr()?)? {
///     Dial::Connected(stream) | Dial::InProgress(stream) => stream,
/// };
/// // A runtime sleeps until the socket is writable; a bounded retry stands in for that here.
/// let mut outcome = finish_connect(&stream);
/// for _ in 0..100 {
///     if outcome.is_ok() {
///         break;
///     }
///     std::thread::sleep(std::time::Duration::from_millis(10));
///     outcome = finish_connect(&stream);
/// }
/// outcome?;
/// assert_eq!(stream.peer_addr()?, listener.local_addr()?);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn start_connect(addr: SocketAddr) -> io::Result<Dial> {
    let socket = tcp_socket(addr)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => Ok(Dial::Connected(socket.into())),
        Err(err) if in_progress(&err) => Ok(Dial::InProgress(socket.into())),
        Err(err) => Err(err),
    }
}

/// The outcome of an attempt in progress, once its socket has been reported writable or in
/// error: `Ok` when connected, else why it failed (`ECONNREFUSED`, ...).
pub fn finish_connect(stream: &TcpStream) -> io::Result<()> {
    if let Some(err) = stream.take_error()? {
        return Err(err);
    }
    // Writable without a pending error, yet not connected, would be a spurious wake-up;
    // `peer_addr` tells the two apart and reports ENOTCONN in that unlikely case.
    stream.peer_addr().map(drop)
}

/// A new TCP socket of `addr`'s family (listeners and dials alike).
pub(crate) fn tcp_socket(addr: SocketAddr) -> io::Result<Socket> {
    Socket::new(
        Domain::for_address(addr),
        Type::STREAM,
        Some(IpProtocol::TCP),
    )
}

fn in_progress(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock || err.raw_os_error() == Some(libc::EINPROGRESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_attempt_reports_refused_once_over() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        match start_connect(port) {
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused),
            Ok(Dial::Connected(_)) => panic!("nobody listens there"),
            Ok(Dial::InProgress(stream)) => {
                // Bounded: the refusal arrives within the loopback round trip.
                for _ in 0..1000 {
                    match finish_connect(&stream) {
                        Err(err) if err.kind() == io::ErrorKind::ConnectionRefused => return,
                        Err(err) if err.kind() == io::ErrorKind::NotConnected => {}
                        other => panic!("unexpected outcome {other:?}"),
                    }
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                panic!("the refusal never arrived");
            }
        }
    }
}
