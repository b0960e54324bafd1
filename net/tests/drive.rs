//! `drive`: one turn of a connection over a real non-blocking loopback socket, as a user's own
//! event loop would call it.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant as StdInstant};

use loomwork::bytes::BytesMut;
use loomwork::stream::{Config, Connection, Protocol, Transport};
use loomwork::{MonotonicClock, Reason};
use loomwork_net::{drive, tcp, Next};

/// Echoes, and aborts on the byte `!`.
struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        if data.contains(&b'!') {
            tx.abort_connection();
        } else {
            let _ = tx.write(data.split().freeze());
        }
    }
}

/// A server-side connection over a fresh loopback socket pair, and its peer.
fn connected() -> (TcpStream, Connection<Echo>, TcpStream, MonotonicClock) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (socket, addr) = listener.accept().unwrap();
    socket.set_nonblocking(true).unwrap();
    tcp::prepare(&socket).unwrap();
    let clock = MonotonicClock::new();
    let mut conn = Connection::new(Echo, Config::default());
    conn.handle_connected(clock.now(), socket.local_addr().unwrap(), addr);
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (socket, conn, peer, clock)
}

/// Drives until `done` or five seconds pass (a poll loop in miniature: the socket is polled by
/// calling `drive` again after a short sleep).
fn drive_until(
    socket: &TcpStream,
    conn: &mut Connection<Echo>,
    clock: &MonotonicClock,
    done: impl Fn(&Next) -> bool,
) -> Next {
    let give_up = StdInstant::now() + Duration::from_secs(5);
    loop {
        let next = drive(socket, conn, clock.now());
        if done(&next) || StdInstant::now() > give_up {
            return next;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn an_idle_connection_waits_for_input_with_nothing_to_write() {
    let (socket, mut conn, _peer, clock) = connected();
    let next = drive(&socket, &mut conn, clock.now());
    assert_eq!(
        next,
        Next::Wait {
            read: true,
            write: false,
            deadline: None
        }
    );
}

#[test]
fn bytes_are_read_echoed_and_written_back_in_one_call() {
    let (socket, mut conn, mut peer, clock) = connected();
    peer.write_all(b"hello").unwrap();
    drive_until(&socket, &mut conn, &clock, |_| conn_echoed(&peer));
    let mut back = [0; 5];
    peer.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"hello");
}

/// True once the peer has something to read.
fn conn_echoed(peer: &TcpStream) -> bool {
    peer.set_nonblocking(true).unwrap();
    let ready = matches!(peer.peek(&mut [0; 1]), Ok(n) if n > 0);
    peer.set_nonblocking(false).unwrap();
    ready
}

#[test]
fn the_peers_eof_ends_the_connection_and_closes_the_socket() {
    let (socket, mut conn, peer, clock) = connected();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let next = drive_until(&socket, &mut conn, &clock, |next| *next == Next::Closed);
    assert_eq!(next, Next::Closed);
    assert_eq!(conn.reason(), Some(&Reason::Done));
}

#[test]
fn an_abort_resets_the_socket() {
    let (socket, mut conn, mut peer, clock) = connected();
    peer.write_all(b"!").unwrap();
    let next = drive_until(&socket, &mut conn, &clock, |next| *next == Next::Closed);
    assert_eq!(next, Next::Closed);
    assert_eq!(conn.reason(), Some(&Reason::Aborted));
    drop(socket); // the caller drops the socket on `Closed`; `drive` armed the reset
    let err = peer.read(&mut [0; 1]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
}
