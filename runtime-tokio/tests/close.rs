//! Ending connections over loopback: graceful close, abort, half-close, peer reset, and
//! backpressure from a slow reader (Twisted TR-3, TR-4, TR-5, PR-5, PP-2).

mod common;

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{any_port, bounded, losses, pattern, Event, Log, Observed};
use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Protocol, Transport};
use loomwork::Reason;
use loomwork_tokio::listen_tcp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Runs `on_made` when connected, answers `data` with `on_data`, logs every callback.
struct Scripted<A, B> {
    log: Log,
    on_made: A,
    on_data: B,
}

impl<A, B> Protocol for Scripted<A, B>
where
    A: FnMut(&mut Transport<'_>),
    B: FnMut(&mut BytesMut, &mut Transport<'_>),
{
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.log.lock().unwrap().push(Event::Made);
        (self.on_made)(tx);
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.log.lock().unwrap().push(Event::Data(data.len()));
        (self.on_data)(data, tx);
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        self.log.lock().unwrap().push(Event::ReadClosed);
        // Half-closeable (TR-5): answer with how much arrived, then close.
        let total: usize = self
            .log
            .lock()
            .unwrap()
            .iter()
            .map(|e| if let Event::Data(n) = e { *n } else { 0 })
            .sum();
        let _ = tx.write(format!("got {total}").into_bytes());
        tx.lose_connection();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.log.lock().unwrap().push(Event::Lost(reason.clone()));
    }
}

/// A server whose protocols run `on_made`/`on_data`; returns it, the log and the close signal.
fn scripted_server<A, B>(
    on_made: A,
    on_data: B,
) -> (
    loomwork_tokio::Server<()>,
    Log,
    tokio::sync::mpsc::UnboundedReceiver<Reason>,
)
where
    A: FnMut(&mut Transport<'_>) + Clone + Send + 'static,
    B: FnMut(&mut BytesMut, &mut Transport<'_>) + Clone + Send + 'static,
{
    let log = Log::default();
    let (closed, closed_rx) = tokio::sync::mpsc::unbounded_channel();
    let protocol_log = Arc::clone(&log);
    let factory = Observed {
        inner: move |_| Scripted {
            log: Arc::clone(&protocol_log),
            on_made: on_made.clone(),
            on_data: on_data.clone(),
        },
        log: Arc::clone(&log),
        closed,
    };
    (listen_tcp(any_port(), factory).unwrap(), log, closed_rx)
}

fn ignore(data: &mut BytesMut, _: &mut Transport<'_>) {
    data.clear();
}

#[test]
fn graceful_close_after_4_mib_write_delivers_every_byte() {
    const LEN: usize = 4 * 1024 * 1024;
    bounded(async {
        let payload = Bytes::from(pattern(LEN, 7));
        let sent = payload.clone();
        let (server, log, mut closed) = scripted_server(
            move |tx| {
                tx.write(sent.clone()).unwrap();
                tx.lose_connection();
            },
            ignore,
        );
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), LEN);
        assert!(got == payload, "content differs");
        assert_eq!(closed.recv().await.unwrap(), Reason::Done);
        assert_eq!(losses(&log), 1);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn abort_discards_the_queue_and_the_peer_sees_a_reset() {
    bounded(async {
        let (server, log, mut closed) = scripted_server(
            |tx| {
                tx.write(vec![1u8; 4 * 1024 * 1024]).unwrap();
                tx.abort_connection();
            },
            ignore,
        );
        // A blocking connect returns once the handshake is done, before the server can reset
        // (an async connect might look at the socket only after the reset arrived).
        let stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
        stream.set_nonblocking(true).unwrap();
        let mut stream = TcpStream::from_std(stream).unwrap();
        let mut got = Vec::new();
        let err = stream.read_to_end(&mut got).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        assert!(
            got.is_empty(),
            "TR-4: nothing queued is sent after an abort"
        );
        assert_eq!(closed.recv().await.unwrap(), Reason::Aborted);
        assert_eq!(losses(&log), 1);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn half_closed_peer_still_gets_an_answer() {
    bounded(async {
        let (server, log, mut closed) = scripted_server(|_| {}, ignore);
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream.write_all(&[9; 1000]).await.unwrap();
        stream.shutdown().await.unwrap(); // tokio: shuts down writing only
        let mut got = String::new();
        stream.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "got 1000");
        assert_eq!(closed.recv().await.unwrap(), Reason::Done);
        assert!(log.lock().unwrap().contains(&Event::ReadClosed));
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn peer_reset_mid_stream_gives_exactly_one_connection_lost() {
    bounded(async {
        let (server, log, mut closed) = scripted_server(
            |_| {},
            |data, tx| {
                let _ = tx.write(data.split().freeze());
            },
        );
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream.write_all(b"before the reset").await.unwrap();
        let mut echoed = [0; 16];
        stream.read_exact(&mut echoed).await.unwrap();
        // Reset: linger 0, then close.
        socket2::SockRef::from(&stream)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(stream);
        assert_eq!(closed.recv().await.unwrap(), Reason::Reset);
        // Once shut down every task has finished: no second callback can still come.
        server.shutdown(Duration::from_secs(5)).await;
        assert_eq!(losses(&log), 1);
        let closes = log
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, Event::Closed(_)))
            .count();
        assert_eq!(closes, 1);
    });
}

/// A push producer (PP-2): writes `chunk`-sized pieces while not paused, until `total` bytes.
struct Producer {
    chunk: Bytes,
    total: usize,
    written: usize,
    stats: Arc<ProducerStats>,
}

#[derive(Default)]
struct ProducerStats {
    max_queued: AtomicUsize,
    pauses: AtomicUsize,
    resumes: AtomicUsize,
    paused: Mutex<Option<tokio::sync::mpsc::Sender<()>>>,
}

impl Producer {
    fn produce(&mut self, tx: &mut Transport<'_>) {
        // Pausing is delivered after the callback: stop once above the high-water mark.
        while self.written < self.total && tx.queued_bytes() <= tx.config().high_water {
            tx.write(self.chunk.clone()).unwrap();
            self.written += self.chunk.len();
            self.stats
                .max_queued
                .fetch_max(tx.queued_bytes(), Ordering::SeqCst);
        }
        if self.written >= self.total {
            tx.lose_connection();
        }
    }
}

impl Protocol for Producer {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.produce(tx);
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn pause_producing(&mut self, _: &mut Transport<'_>) {
        self.stats.pauses.fetch_add(1, Ordering::SeqCst);
        if let Some(signal) = self.stats.paused.lock().unwrap().as_ref() {
            let _ = signal.try_send(());
        }
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_>) {
        self.stats.resumes.fetch_add(1, Ordering::SeqCst);
        self.produce(tx);
    }
}

#[test]
fn slow_reader_keeps_the_server_queue_bounded_and_the_producer_paused() {
    const CHUNK: usize = 16 * 1024;
    const TOTAL: usize = 16 * 1024 * 1024;
    bounded(async {
        let stats = Arc::new(ProducerStats::default());
        let (paused_tx, mut paused) = tokio::sync::mpsc::channel(1);
        *stats.paused.lock().unwrap() = Some(paused_tx);
        let chunk = Bytes::from(pattern(CHUNK, 3));
        let factory_stats = Arc::clone(&stats);
        let server = listen_tcp(any_port(), move |_| Producer {
            chunk: chunk.clone(),
            total: TOTAL,
            written: 0,
            stats: Arc::clone(&factory_stats),
        })
        .unwrap();
        // A small receive window so the kernel cannot swallow the whole stream.
        let socket =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(&server.local_addr().into()).unwrap();
        socket.set_nonblocking(true).unwrap();
        let mut stream = TcpStream::from_std(std::net::TcpStream::from(socket)).unwrap();

        // Not reading: the producer must be paused, not buffering without bound.
        paused.recv().await.unwrap();
        assert_eq!(server.connection_count(), 1);
        let mut got = Vec::with_capacity(TOTAL);
        stream.read_to_end(&mut got).await.unwrap();

        let expected: Vec<u8> = pattern(CHUNK, 3).repeat(TOTAL / CHUNK);
        assert!(got == expected, "stream differs ({} bytes)", got.len());
        let high_water = loomwork::stream::Config::default().high_water;
        let max_queued = stats.max_queued.load(Ordering::SeqCst);
        eprintln!(
            "max queued {max_queued} B (high water {high_water}), pauses {}, resumes {}",
            stats.pauses.load(Ordering::SeqCst),
            stats.resumes.load(Ordering::SeqCst)
        );
        assert!(max_queued <= high_water + CHUNK);
        assert!(stats.pauses.load(Ordering::SeqCst) >= 1);
        assert!(stats.resumes.load(Ordering::SeqCst) >= 1);
        server.shutdown(Duration::from_secs(5)).await;
    });
}

#[test]
fn graceful_close_delivers_every_byte_even_with_unread_input() {
    const LEN: usize = 4 * 1024 * 1024;
    bounded(async {
        let payload = Bytes::from(pattern(LEN, 11));
        let sent = payload.clone();
        // Closing stops reading at once (TR-3), so what the peer sent stays unread: the close
        // must still end in FIN after the last byte, not in a reset that could destroy it.
        let (server, _log, mut closed) = scripted_server(
            move |tx| {
                tx.write(sent.clone()).unwrap();
                tx.lose_connection();
            },
            ignore,
        );
        let mut stream = TcpStream::connect(server.local_addr()).await.unwrap();
        stream.write_all(&[1; 64 * 1024]).await.unwrap();
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), LEN);
        assert!(got == payload, "content differs");
        assert_eq!(closed.recv().await.unwrap(), Reason::Done);
        server.shutdown(Duration::from_secs(5)).await;
    });
}
