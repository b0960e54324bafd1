//! Server shutdown: graceful drain, abort at the deadline, and nothing leaked (tasks, fds).
//!
//! One test per binary would be ideal for fd counting; the two tests here serialize on a lock
//! because the fd count is process-wide.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use common::{any_port, bounded};
use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork_tokio::{listen_tcp, ShutdownReport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Protocol instances alive right now: a connection task owns its protocol, so this counts
/// connection tasks that have not finished.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static SERIAL: Mutex<()> = Mutex::new(());

/// Echoes, or on connect writes `greeting` bytes (to keep a graceful close from finishing
/// while the peer does not read).
struct Tracked {
    greeting: usize,
}

impl Tracked {
    fn new(greeting: usize) -> Self {
        LIVE.fetch_add(1, Ordering::SeqCst);
        Tracked { greeting }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Protocol for Tracked {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        if self.greeting > 0 {
            tx.write(vec![0u8; self.greeting]).unwrap();
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn shutdown_closes_everything_and_leaks_no_task_or_fd() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    bounded(async {
        // Warm up the runtime so their own descriptors exist before counting.
        let warm = listen_tcp(any_port(), |_| Tracked::new(0)).unwrap();
        warm.shutdown(Duration::ZERO).await;
        let before = open_fds();

        let server = listen_tcp(any_port(), |_| Tracked::new(0)).unwrap();
        let mut clients = Vec::new();
        for i in 0..50u8 {
            let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
            stream.write_all(&[i; 10]).await.unwrap();
            let mut echoed = [0; 10];
            stream.read_exact(&mut echoed).await.unwrap();
            clients.push(stream);
        }
        assert_eq!(server.connection_count(), 50);
        assert_eq!(LIVE.load(Ordering::SeqCst), 50);

        let report = server.shutdown(Duration::from_secs(10)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: 50,
                aborted: 0
            }
        );
        assert_eq!(
            LIVE.load(Ordering::SeqCst),
            0,
            "connection tasks still alive"
        );
        // Every client sees a clean EOF.
        for mut stream in clients.drain(..) {
            let mut rest = Vec::new();
            stream.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        }
        assert_eq!(open_fds(), before, "descriptors leaked");
    });
}

#[test]
fn shutdown_aborts_connections_that_cannot_drain_in_time() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const CLIENTS: usize = 5;
    bounded(async {
        // 12 MiB per connection cannot fit in loopback socket buffers of a peer that never
        // reads, so the graceful close cannot finish.
        let server = listen_tcp(any_port(), |_| Tracked::new(12 * 1024 * 1024)).unwrap();
        let mut clients = Vec::new();
        for _ in 0..CLIENTS {
            let socket =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
            socket.set_recv_buffer_size(16 * 1024).unwrap();
            socket.connect(&server.local_addr().into()).unwrap();
            clients.push(std::net::TcpStream::from(socket));
        }
        while server.connection_count() < CLIENTS {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let report = server.shutdown(Duration::from_millis(200)).await;
        assert_eq!(
            report,
            ShutdownReport {
                drained: 0,
                aborted: CLIENTS
            }
        );
        assert_eq!(LIVE.load(Ordering::SeqCst), 0);
    });
}
