//! Shared pieces of the loopback tests: runtimes, a time bound, protocols that record what
//! happens.
#![allow(dead_code, unreachable_pub)] // each test binary uses a different part

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_lite::future::FutureExt;
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, ServerFactory, Transport};
use loomwork::Reason;
use tokio::runtime::Runtime;

/// Every test ends within this bound, pass or fail; it is a hang guard, not a measurement.
pub const BOUND: Duration = Duration::from_secs(60);

/// A multi-thread runtime with two workers, IO and time enabled.
pub fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A current-thread runtime, IO and time enabled.
pub fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `future` on a fresh multi-thread runtime, failing the test if it takes longer than
/// [`BOUND`].
pub fn bounded<T>(future: impl Future<Output = T>) -> T {
    bounded_on(&multi_thread(), future)
}

/// Runs `future` on `rt`, failing the test if it takes longer than [`BOUND`].
pub fn bounded_on<T>(rt: &Runtime, future: impl Future<Output = T>) -> T {
    rt.block_on(within_bound(future))
}

/// `future`, or a panic once [`BOUND`] has passed.
pub async fn within_bound<T>(future: impl Future<Output = T>) -> T {
    future
        .or(async {
            tokio::time::sleep(BOUND).await;
            panic!("test exceeded its {BOUND:?} bound");
        })
        .await
}

/// A loopback address with a port picked by the OS.
pub fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A loopback address nobody listens on (bound, then released).
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Raises the soft fd limit to the hard one, for tests that open thousands of sockets.
pub fn raise_fd_limit() {
    let _ = loomwork_net::testing::raise_descriptor_limit(u64::MAX);
}

/// Sleeps `ms` milliseconds on the runtime's timer.
pub async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// Twisted's Echo, honouring backpressure through the default `pause_producing`.
pub struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// Deterministic test payload: byte `i` is a function of `i` and `seed`.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Sends `payload` and reads the same number of bytes back, writing and reading at once so a
/// large payload cannot deadlock on full socket buffers.
pub async fn echo_through(stream: &mut tokio::net::TcpStream, payload: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut reader, mut writer) = stream.split();
    let write = async {
        writer.write_all(payload).await.unwrap();
    };
    let read = async {
        let mut back = vec![0; payload.len()];
        reader.read_exact(&mut back).await.unwrap();
        back
    };
    futures_lite::future::zip(write, read).await.1
}

/// What a recording protocol saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Made,
    Data(usize),
    ReadClosed,
    Lost(Reason),
    Closed(Reason),
}

/// A log shared by a factory and the protocols it builds.
pub type Log = Arc<Mutex<Vec<Event>>>;

/// Wraps a server factory, logging `connection_closed` and signalling it on a channel.
pub struct Observed<F> {
    pub inner: F,
    pub log: Log,
    pub closed: tokio::sync::mpsc::UnboundedSender<Reason>,
}

impl<F: ServerFactory> ServerFactory for Observed<F> {
    type Protocol = F::Protocol;
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<F::Protocol> {
        self.inner.build_protocol(peer)
    }
    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        self.log.lock().unwrap().push(Event::Closed(reason.clone()));
        let _ = self.closed.send(reason.clone());
        self.inner.connection_closed(peer, reason);
    }
}

/// Counts `connection_lost` calls in a log.
pub fn losses(log: &Log) -> usize {
    log.lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::Lost(_)))
        .count()
}
