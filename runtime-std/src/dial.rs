//! A non-blocking TCP connection attempt that a poller can wait on, so that the attempt can be
//! timed out or stopped without a thread blocked in `connect(2)`.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use polling::Poller;
use socket2::{Domain, Protocol as IpProtocol, Socket, Type};

use crate::registration::Registered;

/// How a dial started.
pub(crate) enum Dial {
    /// Connected at once (possible on loopback).
    Connected(TcpStream),
    /// In progress: wait for the socket to become writable, then call [`Pending::finish`].
    Pending(Pending),
}

/// A connection attempt in progress, registered for writability.
pub(crate) struct Pending {
    socket: Registered<Socket>,
}

impl Dial {
    /// Starts connecting to `addr`.
    pub(crate) fn start(addr: SocketAddr, poller: &Arc<Poller>) -> io::Result<Dial> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM,
            Some(IpProtocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        match socket.connect(&addr.into()) {
            Ok(()) => Ok(Dial::Connected(socket.into())),
            Err(err) if in_progress(&err) => {
                let mut socket = Registered::new(Arc::clone(poller), socket)?;
                socket.arm(false, true)?;
                Ok(Dial::Pending(Pending { socket }))
            }
            Err(err) => Err(err),
        }
    }
}

impl Pending {
    /// After a wake-up of the poller: records that the socket fired (the attempt is over), or
    /// makes sure it is still armed when the wake-up was about something else.
    pub(crate) fn after_wake(&mut self, fired: bool) -> io::Result<()> {
        if fired {
            self.socket.fired();
            Ok(())
        } else {
            self.socket.arm(false, true)
        }
    }

    /// The attempt's outcome, once the socket has been reported writable.
    pub(crate) fn finish(self) -> io::Result<TcpStream> {
        let socket = self.socket.into_inner();
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
