//! A non-blocking TCP connection attempt that a thread can sleep on beside its wake-up, so that
//! the attempt can be timed out or stopped without a thread blocked in `connect(2)`.

use std::io;
use std::net::{SocketAddr, TcpStream};

use socket2::{Domain, Protocol as IpProtocol, Socket, Type};

use crate::wait::Watch;

/// How a dial started.
pub(crate) enum Dial {
    /// Connected at once (possible on loopback).
    Connected(TcpStream),
    /// In progress: wait for the socket to become writable, then call [`Pending::finish`].
    Pending(Pending),
}

/// A connection attempt in progress: writable (or in error) once it is over.
pub(crate) struct Pending {
    socket: Socket,
}

impl Dial {
    /// Starts connecting to `addr`.
    pub(crate) fn start(addr: SocketAddr) -> io::Result<Dial> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM,
            Some(IpProtocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => Ok(Dial::Connected(socket.into())),
            Err(err) if in_progress(&err) => Ok(Dial::Pending(Pending { socket })),
            Err(err) => Err(err),
        }
    }
}

impl Pending {
    /// What to sleep on: the socket becomes writable (or fails) when the attempt is over.
    pub(crate) fn watch(&self) -> Watch<'_> {
        Watch::new(&self.socket, false, true)
    }

    /// The attempt's outcome, once the socket has been reported writable or in error.
    pub(crate) fn finish(self) -> io::Result<TcpStream> {
        let socket = self.socket;
        if let Some(err) = socket.take_error()? {
            return Err(err);
        }
        // Writable without a pending error, yet not connected, would be a spurious wake-up;
        // `peer_addr` tells the two apart and reports ENOTCONN in that unlikely case.
        socket.peer_addr()?;
        Ok(socket.into())
    }
}

fn in_progress(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock || err.raw_os_error() == Some(libc::EINPROGRESS)
}
