//! Registering a std socket with tokio's reactor (feature `tokio`, Unix), for `loomwork-tokio`.
//!
//! `tokio::io::unix::AsyncFd::register` is `unsafe` (tokio 1.54 deprecated the safe
//! constructors: they accepted any `AsRawFd`, including values that do not own their
//! descriptor). The std sockets loomwork uses do own theirs, so registering them is sound, and
//! the one `unsafe` block stays in this crate, like the rest of the project's. The runtime
//! then runs this crate's socket operations on `AsyncFd::get_ref()`, unchanged.

use std::io;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The sockets that may be registered: std types that own their descriptor.
pub trait OwnedSocket: AsRawFd + sealed::Sealed {}

impl OwnedSocket for TcpStream {}
impl OwnedSocket for TcpListener {}
impl OwnedSocket for UdpSocket {}

mod sealed {
    pub trait Sealed {}
    impl Sealed for std::net::TcpStream {}
    impl Sealed for std::net::TcpListener {}
    impl Sealed for std::net::UdpSocket {}
}

/// Registers `socket` (non-blocking already) with the current tokio runtime's reactor for
/// `interest`, edge-triggered.
///
/// # Panics
/// Outside a tokio runtime with IO enabled (tokio's own rule); callers check first.
#[allow(unsafe_code)]
pub fn register<S: OwnedSocket>(socket: S, interest: Interest) -> io::Result<AsyncFd<S>> {
    // SAFETY: `S` is a std socket (the trait is sealed): it owns its descriptor, which stays
    // open and the same until the value is dropped, and `as_raw_fd` always returns it. The
    // `AsyncFd` takes the value by ownership, so the descriptor lives exactly as long as the
    // registration.
    unsafe { AsyncFd::register_with_interest(socket, interest) }.map_err(io::Error::from)
}
