//! Socket behaviours on which loomwork-std and loomwork-smol once drifted apart, each proved on
//! every runtime now that all call loomwork-net: a send to a peer that reset never kills the
//! process with `SIGPIPE`, and shutting down writing after the peer left ends only that
//! connection, with the same reason on each.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Protocol, Transport};
use loomwork::Reason;
use loomwork_conformance::child::{serve_until_stdin_closes, ChildServer};
use loomwork_conformance::protocols::{lock, LoggingFactory};
use loomwork_conformance::runtimes::{Smol, Std, Tokio};
use loomwork_conformance::Harness;
use socket2::SockRef;

/// An upper bound on any one wait, so that a broken runtime fails the test instead of hanging.
const PATIENCE: Duration = Duration::from_secs(30);
/// Set in the child process of the `SIGPIPE` scenario, to the name of the runtime to serve on.
const CHILD_ENV: &str = "LOOMWORK_SIGPIPE_CHILD";
/// The reply to `flood`: far more than loopback's socket buffers hold, so that most of it is
/// still queued in the server when the peer resets.
const FLOOD_CHUNKS: usize = 128;
const FLOOD_CHUNK: usize = 64 * 1024;

#[test]
fn std_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action() {
    survives_a_peer_reset_while_writing(
        &Std,
        "std_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action",
    );
}

#[test]
fn smol_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action() {
    survives_a_peer_reset_while_writing(
        &Smol,
        "smol_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action",
    );
}

#[test]
fn tokio_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action() {
    survives_a_peer_reset_while_writing(
        &Tokio::new(),
        "tokio_survives_a_peer_reset_while_writing_with_sigpipe_at_its_default_action",
    );
}

#[test]
fn shutting_down_writing_after_the_peer_reset_ends_only_that_connection_alike_on_every_runtime() {
    let on_std = shutdown_write_after_the_peer_reset(&Std);
    let on_smol = shutdown_write_after_the_peer_reset(&Smol);
    let on_tokio = shutdown_write_after_the_peer_reset(&Tokio::new());
    assert_eq!(on_std, on_smol, "std and smol report the same reason");
    assert_eq!(on_std, on_tokio, "std and tokio report the same reason");
    // ENOTCONN from the half-close is not the news: the reset is, and the read reports it.
    assert_eq!(on_std, Reason::Reset);
}

/// Echoes, except that `flood` is answered with [`FLOOD_CHUNKS`] × [`FLOOD_CHUNK`] bytes.
struct Flood;

impl Protocol for Flood {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let data = data.split().freeze();
        if data.starts_with(b"flood") {
            let chunk = Bytes::from(vec![b'z'; FLOOD_CHUNK]);
            for _ in 0..FLOOD_CHUNKS {
                let _ = tx.write(chunk.clone());
            }
        } else {
            let _ = tx.write(data);
        }
    }
}

/// The parent runs a child copy of this test binary that serves [`Flood`] on `h` with
/// `SIGPIPE` at its default action, as in a C program embedding loomwork. A peer asks for a
/// flood, half-closes, then resets while the reply is queued: the server's next send meets
/// `EPIPE`, which without `MSG_NOSIGNAL` (or `SO_NOSIGPIPE`) kills the child with `SIGPIPE`
/// (exit status 141 in a shell). The child must survive and keep serving other connections.
fn survives_a_peer_reset_while_writing<H: Harness>(h: &H, test_name: &str) {
    if let Ok(runtime) = std::env::var(CHILD_ENV) {
        if runtime == H::NAME {
            serve_with_default_sigpipe(h);
        }
        return;
    }
    // Its stdout stays open until it has exited: a closed pipe would kill the child with
    // SIGPIPE at its next line of test output, which is not the SIGPIPE under test.
    let child = ChildServer::spawn(test_name, CHILD_ENV, H::NAME, PATIENCE);
    let addr = child.listening_address();

    // The peer that resets while the server is writing to it.
    let mut peer = connect(addr);
    peer.write_all(b"flood").unwrap();
    let mut first = [0; 1024];
    peer.read_exact(&mut first).unwrap(); // the flood is under way
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    // Time for the server to read the end of stream (the socket goes to CLOSE_WAIT, where a
    // reset makes the next send fail with EPIPE rather than ECONNRESET).
    std::thread::sleep(Duration::from_millis(100));
    SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    // Time for the server to try its next send.
    std::thread::sleep(Duration::from_millis(200));

    // Another connection is still served (judged after the exit status, which says more).
    let served = echo_once(addr, b"still there?");

    let status = child.stop();
    use std::os::unix::process::ExitStatusExt;
    assert_ne!(
        status.signal(),
        Some(libc::SIGPIPE),
        "{}: the server process was killed by SIGPIPE (status 141 in a shell)",
        H::NAME
    );
    assert!(status.success(), "{}: the child failed: {status}", H::NAME);
    let echoed = served.unwrap_or_else(|err| panic!("{}: the second connection: {err}", H::NAME));
    assert_eq!(echoed, b"still there?", "{}", H::NAME);
}

/// The child's side: serve until the parent closes our stdin.
fn serve_with_default_sigpipe<H: Harness>(h: &H) {
    loomwork_net::testing::restore_default_sigpipe().unwrap();
    let server = h.listen(any_port(), |_| Flood, Config::default());
    serve_until_stdin_closes(server.local_addr());
    // Aborts what is left at once: the flood's connection is long gone anyway.
    server.shutdown(Duration::ZERO);
}

/// Does nothing until told otherwise; on its first input it shuts down writing, which, with
/// the peer already reset, the kernel answers with `ENOTCONN`.
struct HalfCloseOnInput;

impl Protocol for HalfCloseOnInput {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        data.clear();
        tx.shutdown_write();
    }
}

/// A peer connects, sends, and resets before the server has even built its protocol (the
/// factory waits for the peer); the protocol then receives the bytes and shuts down writing on
/// a socket whose peer is gone. Returns the reason the server's factory heard, after checking
/// that the server still serves another connection.
fn shutdown_write_after_the_peer_reset<H: Harness>(h: &H) -> Reason {
    let (go, gate) = mpsc::channel::<()>();
    let mut first = true;
    let (factory, log) = LoggingFactory::new(move || {
        if std::mem::take(&mut first) {
            // Hold the first connection until its peer has sent and reset.
            let _ = gate.recv_timeout(PATIENCE);
            Some(Box::new(HalfCloseOnInput) as Box<dyn DynProtocol>)
        } else {
            Some(Box::new(Flood) as Box<dyn DynProtocol>)
        }
    });
    let server = h.listen(any_port(), factory, Config::default());
    let addr = server.local_addr();

    let mut peer = connect(addr);
    peer.write_all(b"bye").unwrap();
    SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    std::thread::sleep(Duration::from_millis(50));
    go.send(()).unwrap();

    let mut closed = Vec::new();
    for _ in 0..(PATIENCE.as_millis() / 10) {
        closed = lock(&log).closed.clone();
        if !closed.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(closed.len(), 1, "{}: the connection ended once", H::NAME);

    let echoed = echo_once(addr, b"next").unwrap();
    assert_eq!(echoed, b"next", "{}: another connection is served", H::NAME);
    server.shutdown(Duration::from_secs(1));
    closed.remove(0)
}

/// Two protocol types behind one factory.
trait DynProtocol: Send {
    fn data(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>);
}

impl<P: Protocol<Message = ()> + Send> DynProtocol for P {
    fn data(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.data_received(data, tx);
    }
}

impl Protocol for Box<dyn DynProtocol> {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        (**self).data(data, tx);
    }
}

fn any_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn connect(addr: SocketAddr) -> TcpStream {
    try_connect(addr).unwrap()
}

fn try_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    stream.set_write_timeout(Some(PATIENCE))?;
    Ok(stream)
}

/// Sends `message` on a new connection and reads as many bytes back.
fn echo_once(addr: SocketAddr, message: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = try_connect(addr)?;
    stream.write_all(message)?;
    let mut echoed = vec![0; message.len()];
    stream.read_exact(&mut echoed)?;
    Ok(echoed)
}
