//! `read_pooled` and `release_buffer`: reads go straight into a connection's buffer with
//! storage lent by the thread's pool, and a waiting connection gives the storage back, so the
//! next reader on the thread reuses it instead of allocating, and idle connections hold none.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::bytes::BytesMut;
use loomwork::stream::{Config, Connection, Protocol, Transport};
use loomwork::MonotonicClock;
use loomwork_net::tcp::{self, ReadOutcome};

/// Echoes, noting where each input's bytes lie in memory.
struct Echo {
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.seen.lock().unwrap().push(data.as_ptr() as usize);
        let _ = tx.write(data.split().freeze());
    }
}

/// A server-side connection over a fresh loopback socket pair, and its peer.
fn connected(seen: &Arc<Mutex<Vec<usize>>>) -> (TcpStream, Connection<Echo>, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (socket, addr) = listener.accept().unwrap();
    tcp::prepare(&socket).unwrap();
    let mut conn = Connection::new(
        Echo {
            seen: Arc::clone(seen),
        },
        Config::default(),
    );
    conn.handle_connected(
        MonotonicClock::new().now(),
        socket.local_addr().unwrap(),
        addr,
    );
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    (socket, conn, peer)
}

/// Sends `bytes` from the peer, reads them with `read_pooled` once they have arrived, writes
/// the echo and checks it came back.
fn echo_once(socket: &TcpStream, conn: &mut Connection<Echo>, peer: &mut TcpStream, bytes: &[u8]) {
    let clock = MonotonicClock::new();
    peer.write_all(bytes).unwrap();
    let mut outcome = ReadOutcome::WouldBlock;
    for _ in 0..500 {
        outcome = tcp::read_pooled(socket, conn, clock.now());
        if outcome != ReadOutcome::WouldBlock {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(outcome, ReadOutcome::Data { drained: true });
    while conn.wants_write() {
        tcp::send_queued(socket, conn, clock.now());
    }
    let mut back = vec![0; bytes.len()];
    peer.read_exact(&mut back).unwrap();
    assert_eq!(back, bytes);
}

#[test]
fn a_released_buffer_is_lent_to_the_next_reader_on_the_thread() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (socket_a, mut a, mut peer_a) = connected(&seen);
    let (socket_b, mut b, mut peer_b) = connected(&seen);

    echo_once(&socket_a, &mut a, &mut peer_a, b"first");
    tcp::release_buffer(&mut a);
    assert!(
        a.poll_spare_buffer().is_none(),
        "a waiting connection holds no read storage"
    );
    echo_once(&socket_b, &mut b, &mut peer_b, b"second");

    let seen = seen.lock().unwrap();
    // The next read went into the same storage, right behind where the first one lay (no
    // allocation, no copy).
    assert_eq!(seen[1], seen[0] + b"first".len(), "{seen:?}");
}

#[test]
fn a_used_up_buffer_is_reclaimed_in_place_once_its_chunks_are_gone() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (socket_a, mut a, mut peer_a) = connected(&seen);
    let (socket_b, mut b, mut peer_b) = connected(&seen);

    // Leaves less room than a read is worth; the echo then drops the only other reference.
    echo_once(&socket_a, &mut a, &mut peer_a, &[b'x'; 60 * 1024]);
    tcp::release_buffer(&mut a);
    // Had the storage been freed instead of pooled, this would likely take its place.
    let decoy = vec![1u8; 64 * 1024];
    echo_once(&socket_b, &mut b, &mut peer_b, b"again");
    drop(decoy);

    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[1], seen[0],
        "the storage was reused from its start: {seen:?}"
    );
}

#[test]
fn storage_still_shared_with_queued_chunks_is_read_into_behind_them() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (socket, mut conn, mut peer) = connected(&seen);
    let clock = MonotonicClock::new();
    // Two reads without a wait between them share one buffer, each behind the last.
    echo_once(&socket, &mut conn, &mut peer, b"one");
    echo_once(&socket, &mut conn, &mut peer, b"two");
    tcp::release_buffer(&mut conn);
    // A connection that reads again after giving its storage up gets it back from the pool.
    peer.write_all(b"three").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        tcp::read_pooled(&socket, &mut conn, clock.now()),
        ReadOutcome::Data { drained: true }
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1], seen[0] + 3, "{seen:?}");
    assert_eq!(seen[2], seen[1] + 3, "{seen:?}");
}
