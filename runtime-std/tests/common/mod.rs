//! Helpers shared by the runtime's own tests. Everything talks to loopback only.

use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::Receiver;
use std::time::Duration;

use loomwork::bytes::BytesMut;
use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::{Protocol, Transport};
use loomwork::Reason;

/// How long any single wait in a test may take before the test fails instead of hanging.
/// An upper bound on a hang, never an assertion about speed.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// `127.0.0.1:0`.
pub(crate) fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A loopback address nobody listens on (bound, then released).
pub(crate) fn closed_port() -> SocketAddr {
    TcpListener::bind(any_port()).unwrap().local_addr().unwrap()
}

/// Receives from `rx`, failing the test after [`PATIENCE`].
pub(crate) fn recv<T>(rx: &Receiver<T>) -> T {
    rx.recv_timeout(PATIENCE)
        .expect("no event within the test's patience")
}

/// A plain std client with read and write timeouts, so a broken runtime fails the test.
pub(crate) fn raw_client(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads until EOF or an error; returns what arrived and the error, if any.
pub(crate) fn read_until_end(stream: &mut TcpStream) -> (Vec<u8>, Option<io::Error>) {
    let mut received = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (received, None),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return (received, Some(err)),
        }
    }
}

/// `len` bytes of a pattern that differs per `seed`, so misordered or foreign data shows.
pub(crate) fn pattern(seed: usize, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// Twisted's Echo.
pub(crate) struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// A client factory that connects once and records what happened; never retries.
pub(crate) struct Once<P> {
    build: Box<dyn FnMut() -> P + Send>,
    /// Reasons given to `connection_failed`.
    pub(crate) failures: Vec<Reason>,
    /// Reasons given to `connection_lost`.
    pub(crate) losses: Vec<Reason>,
}

impl<P> Once<P> {
    pub(crate) fn new(build: impl FnMut() -> P + Send + 'static) -> Self {
        Once {
            build: Box::new(build),
            failures: Vec::new(),
            losses: Vec::new(),
        }
    }
}

impl<P: Protocol> ClientFactory for Once<P> {
    type Protocol = P;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<P> {
        Some((self.build)())
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.failures.push(reason.clone());
        Retry::Stop
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.losses.push(reason.clone());
        Retry::Stop
    }
}

/// Entries of a /proc/self directory (threads in `task`, descriptors in `fd`).
pub(crate) fn proc_entries(dir: &str) -> usize {
    std::fs::read_dir(format!("/proc/self/{dir}"))
        .unwrap()
        .count()
}

/// The process's thread count once exited threads have left `/proc/self/task`, waiting at
/// most 2 s for it to fall to `expected`.
///
/// `JoinHandle::join` returns when the kernel clears the thread's id, which it does before it
/// unlists the thread: for a moment after `join` a joined thread is still counted (seen on a
/// loaded CI machine). A thread that really outlives its owner stays listed, and the count
/// stays above `expected`.
pub(crate) fn settled_threads(expected: usize) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let threads = proc_entries("task");
        if threads <= expected || std::time::Instant::now() >= deadline {
            return threads;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}
