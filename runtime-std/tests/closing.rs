//! How connections end: graceful close, abort, half-close, resets, and backpressure on the way.

#[allow(dead_code)]
mod common;

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Sender};
use std::time::Duration;

use common::{any_port, pattern, raw_client, read_until_end, recv, Once, PATIENCE};
use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Protocol, ServerFactory, Transport};
use loomwork::Reason;
use loomwork_std::{connect_tcp, listen_tcp, listen_tcp_with, ListenConfig};
use socket2::SockRef;

/// Writes `payload` as soon as it can (when `on_connect`) or when the peer says anything, then
/// closes gracefully or aborts; reports its `connection_lost` reason.
struct Burst {
    payload: Bytes,
    on_connect: bool,
    abort: bool,
    lost: Sender<Reason>,
}

impl Burst {
    fn send_and_close(&mut self, tx: &mut Transport<'_>) {
        tx.write(self.payload.clone()).unwrap();
        if self.abort {
            tx.abort_connection();
        } else {
            tx.lose_connection();
        }
    }
}

impl Protocol for Burst {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        if self.on_connect {
            self.send_and_close(tx);
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        data.clear();
        if !self.on_connect && !tx.is_closing() {
            self.send_and_close(tx);
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.lost.send(reason.clone());
    }
}

#[test]
fn a_graceful_close_after_a_4_mib_write_delivers_every_byte() {
    let payload = Bytes::from(pattern(4, 4 * 1024 * 1024));
    let (lost, reasons) = mpsc::channel();
    let server_payload = payload.clone();
    let server = listen_tcp(any_port(), move |_| Burst {
        payload: server_payload.clone(),
        on_connect: true,
        abort: false,
        lost: lost.clone(),
    })
    .unwrap();
    let mut client = raw_client(server.local_addr());
    let (received, error) = read_until_end(&mut client);
    assert!(error.is_none(), "{error:?}");
    assert_eq!(received.len(), payload.len());
    assert!(received == payload, "every byte, in order");
    assert_eq!(recv(&reasons), Reason::Done);
    server.shutdown(PATIENCE);
}

#[test]
fn an_abort_discards_the_queue_and_the_peer_sees_a_reset() {
    let (lost, reasons) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| Burst {
        payload: Bytes::from(pattern(8, 8 * 1024 * 1024)),
        on_connect: false,
        abort: true,
        lost: lost.clone(),
    })
    .unwrap();
    let mut client = raw_client(server.local_addr());
    client.write_all(b"go").unwrap();
    let (received, error) = read_until_end(&mut client);
    // The 8 MiB were queued and aborted in the same callback: none of it may leave.
    assert!(received.is_empty(), "{} bytes leaked", received.len());
    assert_eq!(
        error.map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionReset)
    );
    assert_eq!(recv(&reasons), Reason::Aborted);
    server.shutdown(PATIENCE);
}

/// Client side of the half-close test: says hello, shuts its write side, collects the answer.
struct HalfCloser {
    received: Vec<u8>,
    report: Sender<(Vec<u8>, Reason)>,
}

impl Protocol for HalfCloser {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.write_slice(b"hello").unwrap();
        tx.shutdown_write();
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.received.extend_from_slice(&data.split());
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self
            .report
            .send((std::mem::take(&mut self.received), reason.clone()));
    }
}

/// Server side: answers only once the peer has finished sending.
struct AnswerAtEof {
    received: Vec<u8>,
    lost: Sender<Reason>,
}

impl Protocol for AnswerAtEof {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.received.extend_from_slice(&data.split());
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        tx.write_slice(b"got: ").unwrap();
        tx.write_slice(&self.received).unwrap();
        tx.lose_connection();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.lost.send(reason.clone());
    }
}

#[test]
fn after_a_client_half_close_the_server_still_answers_then_closes() {
    let (lost, server_reasons) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| AnswerAtEof {
        received: Vec::new(),
        lost: lost.clone(),
    })
    .unwrap();
    let (report, reports) = mpsc::channel();
    let factory = connect_tcp(
        server.local_addr(),
        Once::new(move || HalfCloser {
            received: Vec::new(),
            report: report.clone(),
        }),
    )
    .join();
    let (answer, client_reason) = recv(&reports);
    assert_eq!(answer, b"got: hello");
    assert_eq!(client_reason, Reason::Done);
    assert_eq!(factory.losses, [Reason::Done]);
    assert_eq!(recv(&server_reasons), Reason::Done);
    server.shutdown(PATIENCE);
}

/// Echo that reports every `connection_lost` it gets, to count them.
struct CountingEcho {
    lost: Sender<Reason>,
}

impl Protocol for CountingEcho {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.lost.send(reason.clone());
    }
}

/// Server factory that also reports `connection_closed`.
struct Closings {
    lost: Sender<Reason>,
    closed: Sender<Reason>,
}

impl ServerFactory for Closings {
    type Protocol = CountingEcho;
    fn build_protocol(&mut self, _: SocketAddr) -> Option<CountingEcho> {
        Some(CountingEcho {
            lost: self.lost.clone(),
        })
    }
    fn connection_closed(&mut self, _: SocketAddr, reason: &Reason) {
        let _ = self.closed.send(reason.clone());
    }
}

#[test]
fn a_peer_reset_mid_stream_gives_exactly_one_connection_lost() {
    let (lost, losses) = mpsc::channel();
    let (closed, closings) = mpsc::channel();
    let server = listen_tcp(any_port(), Closings { lost, closed }).unwrap();
    let mut client = raw_client(server.local_addr());
    // Mid-stream: the echo is busy writing back while the reset arrives.
    let chunk = pattern(1, 64 * 1024);
    for _ in 0..4 {
        client.write_all(&chunk).unwrap();
    }
    client.read_exact(&mut [0; 1024]).unwrap();
    SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    assert_eq!(recv(&losses), Reason::Reset);
    assert_eq!(
        recv(&closings),
        Reason::Reset,
        "the factory hears the same reason"
    );
    // Shutdown joins the connection's thread, so nothing can arrive after it.
    assert_eq!(server.shutdown(PATIENCE).aborted, 0);
    assert!(losses.try_recv().is_err(), "exactly one connection_lost");
    assert!(
        closings.try_recv().is_err(),
        "exactly one connection_closed"
    );
}

/// What the producer saw while the peer was slow.
#[derive(Debug, Default, Clone)]
struct Backpressure {
    pauses: usize,
    resumes: usize,
    max_queued: usize,
    produced: usize,
}

/// A push producer that honours pause/resume: fills the queue to just past the high-water
/// mark, then waits for `resume_producing`. Reports the first pause, and its totals at the end.
struct Producer {
    total: usize,
    chunk: Bytes,
    high_water: usize,
    paused: bool,
    seen: Backpressure,
    first_pause: Option<Sender<Backpressure>>,
    done: Sender<(Backpressure, Reason)>,
}

impl Producer {
    fn produce(&mut self, tx: &mut Transport<'_>) {
        while !self.paused
            && self.seen.produced < self.total
            && tx.queued_bytes() <= self.high_water
        {
            tx.write(self.chunk.clone()).unwrap();
            self.seen.produced += self.chunk.len();
            self.seen.max_queued = self.seen.max_queued.max(tx.queued_bytes());
        }
        if self.seen.produced >= self.total {
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
    fn pause_producing(&mut self, tx: &mut Transport<'_>) {
        self.paused = true;
        self.seen.pauses += 1;
        self.seen.max_queued = self.seen.max_queued.max(tx.queued_bytes());
        if let Some(first) = self.first_pause.take() {
            let _ = first.send(self.seen.clone());
        }
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_>) {
        self.paused = false;
        self.seen.resumes += 1;
        self.produce(tx);
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.done.send((self.seen.clone(), reason.clone()));
    }
}

#[test]
fn a_slow_reader_pauses_the_producer_and_the_queue_stays_bounded() {
    // Far more than loopback socket buffers can hold, so the producer must wait for the reader.
    const TOTAL: usize = 48 * 1024 * 1024;
    const CHUNK: usize = 16 * 1024;
    let connection = Config::default();
    let high_water = connection.high_water;
    let config = ListenConfig {
        connection,
        ..ListenConfig::default()
    };
    let (first_pause, first_pauses) = mpsc::channel();
    let (done, dones) = mpsc::channel();
    let mut first_pause = Some(first_pause);
    let server = listen_tcp_with(
        any_port(),
        move |_| Producer {
            total: TOTAL,
            chunk: Bytes::from(pattern(0, CHUNK)),
            high_water,
            paused: false,
            seen: Backpressure::default(),
            first_pause: first_pause.take(),
            done: done.clone(),
        },
        config,
    )
    .unwrap();
    let mut client = raw_client(server.local_addr());
    // Nothing is read until the producer has been told to pause.
    let at_first_pause = recv(&first_pauses);
    assert!(at_first_pause.produced < TOTAL);

    let expected_chunk = pattern(0, CHUNK);
    let mut received = 0;
    let mut buf = vec![0; CHUNK];
    loop {
        let n = client.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        // Compare the read against the repeating chunk, across chunk boundaries.
        let mut checked = 0;
        while checked < n {
            let offset = (received + checked) % CHUNK;
            let len = (n - checked).min(CHUNK - offset);
            assert!(buf[checked..checked + len] == expected_chunk[offset..offset + len]);
            checked += len;
        }
        received += n;
    }
    assert_eq!(received, TOTAL);
    let (seen, reason) = recv(&dones);
    assert_eq!(reason, Reason::Done);
    assert!(seen.pauses >= 1 && seen.resumes >= 1, "{seen:?}");
    assert!(
        seen.max_queued <= high_water + CHUNK,
        "queue grew to {} bytes",
        seen.max_queued
    );
    server.shutdown(PATIENCE);
}

#[test]
fn a_graceful_close_that_cannot_flush_is_aborted_at_its_deadline() {
    let (lost, reasons) = mpsc::channel();
    let config = ListenConfig {
        connection: Config {
            close_timeout: Some(Duration::from_millis(200)),
            max_queued: Some(64 * 1024 * 1024),
            ..Config::default()
        },
        ..ListenConfig::default()
    };
    let server = listen_tcp_with(
        any_port(),
        move |_| Burst {
            // More than loopback buffers hold, to a peer that never reads.
            payload: Bytes::from(pattern(5, 32 * 1024 * 1024)),
            on_connect: true,
            abort: false,
            lost: lost.clone(),
        },
        config,
    )
    .unwrap();
    let mut client = raw_client(server.local_addr());
    assert_eq!(
        recv(&reasons),
        Reason::TimedOut(loomwork::Timeout::Close),
        "the runtime woke for the close deadline with no traffic at all"
    );
    let (received, error) = read_until_end(&mut client);
    assert!(received.len() < 32 * 1024 * 1024);
    assert_eq!(
        error.map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionReset)
    );
    server.shutdown(PATIENCE);
}

/// Holds the connection open until told otherwise through its handle.
struct Quiet {
    made: Sender<()>,
    lost: Sender<Reason>,
}

impl Protocol for Quiet {
    type Message = ();
    fn connection_made(&mut self, _: &mut Transport<'_>) {
        let _ = self.made.send(());
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.lost.send(reason.clone());
    }
}

#[test]
fn an_abort_through_a_handle_resets_the_peer() {
    let (made, made_rx) = mpsc::channel();
    let (lost, reasons) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| Quiet {
        made: made.clone(),
        lost: lost.clone(),
    })
    .unwrap();
    let mut client = raw_client(server.local_addr());
    recv(&made_rx);
    assert!(server.handles()[0].abort());
    assert_eq!(recv(&reasons), Reason::Aborted);
    let (received, error) = read_until_end(&mut client);
    assert!(received.is_empty());
    assert_eq!(
        error.map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionReset)
    );
    server.shutdown(PATIENCE);
}

/// Never reads: pauses reading as soon as it is connected, and reports how it ended.
struct Paused {
    lost: Sender<Reason>,
}

impl Protocol for Paused {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.pause_reading();
    }
    fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = self.lost.send(reason.clone());
    }
}

#[test]
fn a_peer_reset_ends_a_connection_that_has_paused_reading() {
    let (lost, losses) = mpsc::channel();
    let server = listen_tcp(any_port(), move |_| Paused { lost: lost.clone() }).unwrap();
    let mut client = raw_client(server.local_addr());
    client.write_all(b"never read").unwrap();
    // The server wants neither to read nor to write, so only an error report from the kernel
    // can tell its thread about the reset, not the next read.
    std::thread::sleep(Duration::from_millis(50));
    SockRef::from(&client)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(client);
    assert_eq!(recv(&losses), Reason::Reset);
}
