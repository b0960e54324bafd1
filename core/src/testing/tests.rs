//! Tests of the recorders, written as a user's unit tests would be.

use alloc::vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use super::*;
use crate::datagram::{Command, DatagramProtocol, DatagramTransport};
use crate::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use crate::reason::{Reason, Timeout};
use crate::stream::{Action, Config, Handle, Protocol, Transport, WriteError};
use crate::time::Instant;
use crate::timer::TimerId;

/// Twisted's line echo, closing on `quit`.
struct LineEcho;

impl FrameHandler for LineEcho {
    type Codec = LineCodec;
    type Message = ();
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if line == "quit" {
            tx.lose_connection();
        } else {
            let _ = tx.send_frame(line);
        }
    }
}

fn line_echo() -> Recorder<Framed<LineEcho>> {
    Recorder::new(Framed::new(LineEcho, LineCodec::new()))
}

#[test]
fn line_echo_joins_a_line_split_over_two_reads() {
    let mut rec = line_echo();
    rec.receive(b"hel");
    assert_eq!(rec.written(), b"");
    rec.receive(b"lo\r\nwor");
    assert_eq!(rec.take_written(), "hello\r\n");
    rec.receive(b"ld\r\n");
    assert_eq!(rec.take_written(), "world\r\n");
    assert!(rec.actions().is_empty());
    assert!(!rec.is_ended());
}

#[test]
fn the_recorder_reads_as_the_runtimes_do_and_takes_the_storage_back_while_waiting() {
    let mut rec = line_echo();
    // Half a line stays with the protocol, moved into storage of its own size; the read's room
    // went back to the recorder.
    rec.receive(b"hel");
    assert_eq!(rec.connection().buffered_bytes(), 3);
    assert!(rec.connection_mut().poll_spare_buffer().is_none());
    // The rest of the line arrives through the lent storage, and nothing was lost.
    rec.receive(b"lo\r\n");
    assert_eq!(rec.take_written(), "hello\r\n");
    assert!(rec.connection_mut().poll_spare_buffer().is_none());
}

#[test]
fn graceful_close_records_shutdown_then_close_and_the_reason() {
    let mut rec = line_echo();
    rec.receive(b"bye\r\nquit\r\nignored\r\n");
    // The reply before `quit` is flushed; the line after it is never answered.
    assert_eq!(rec.take_written(), "bye\r\n");
    assert!(rec.is_ended());
    assert_eq!(rec.reason(), Some(&Reason::Done));
    // Our side is shut down; the socket lingers for the peer's EOF before closing.
    assert_eq!(rec.actions(), [Action::ShutdownWrite]);
    assert!(rec.is_write_shut() && !rec.is_closed());
    rec.receive_eof();
    assert_eq!(rec.actions(), [Action::ShutdownWrite, Action::Close]);
    assert!(rec.is_closed());
}

#[test]
fn linger_ends_in_close_when_the_peer_never_sends_eof() {
    let mut rec = line_echo();
    rec.receive(b"quit\r\n");
    let linger = Config::default().close_linger.unwrap();
    assert_eq!(rec.next_timeout(), Some(Instant::ZERO + linger));
    rec.advance(linger - Duration::from_millis(1));
    assert!(!rec.is_closed());
    rec.advance(Duration::from_millis(1));
    assert_eq!(rec.actions(), [Action::ShutdownWrite, Action::Close]);
}

/// Answers a half-close and keeps writing: `read_closed` overridden.
struct HalfClose;

impl Protocol for HalfClose {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(b"total: 0\n");
        tx.shutdown_write();
    }
}

#[test]
fn half_close_both_ways_is_recorded() {
    let mut rec = Recorder::new(HalfClose);
    rec.receive(b"some input");
    rec.receive_eof();
    assert_eq!(rec.take_written(), "total: 0\n");
    // Both sides have shut down: the connection is over, cleanly, and the socket closes at
    // once (no linger: the peer's EOF is in).
    assert_eq!(rec.actions(), [Action::ShutdownWrite, Action::Close]);
    assert!(rec.is_write_shut() && rec.is_closed());
    assert!(rec.is_ended());
    assert!(rec.reason().unwrap().is_clean());
}

#[test]
fn reset_and_abort_give_their_reasons() {
    let mut rec = line_echo();
    rec.reset();
    assert_eq!(rec.reason(), Some(&Reason::Reset));
    // The socket is dropped, but no EOF went out.
    assert_eq!(rec.actions(), [Action::Close]);
    assert!(!rec.is_write_shut());

    let mut rec = line_echo();
    assert!(rec.abort());
    assert_eq!(rec.reason(), Some(&Reason::Aborted));
    assert_eq!(rec.actions(), [Action::Abort]);
    // Over: the handle refuses further requests.
    assert!(!rec.close());
    assert!(!rec.handle().abort());
}

/// Writes `tick` when its timer fires, once.
#[derive(Default)]
struct Ticker {
    timer: Option<TimerId>,
}

impl Protocol for Ticker {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.timer = Some(tx.call_later(Duration::from_secs(5)));
    }
    fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
        assert_eq!(Some(timer), self.timer.take());
        let _ = tx.write_slice(b"tick");
    }
}

#[test]
fn a_timer_writes_only_once_its_deadline_is_reached() {
    let mut rec = Recorder::new(Ticker::default());
    let deadline = Instant::ZERO + Duration::from_secs(5);
    assert_eq!(rec.next_timeout(), Some(deadline));
    rec.advance(Duration::from_millis(4_999));
    assert_eq!(rec.written(), b"");
    rec.advance(Duration::from_millis(1));
    assert_eq!(rec.now(), deadline);
    assert_eq!(rec.take_written(), "tick");
    assert_eq!(rec.next_timeout(), None);
}

#[test]
fn advance_fires_a_timer_at_its_own_time() {
    let mut rec = Recorder::new(Ticker::default());
    // Jumping past the deadline still runs the timer at the deadline, then moves on.
    rec.advance(Duration::from_secs(60));
    assert_eq!(rec.take_written(), "tick");
    assert_eq!(rec.now(), Instant::ZERO + Duration::from_secs(60));
}

/// Keeps its handle from `connection_made` and writes what is posted to it.
#[derive(Default)]
struct Inbox {
    handle: Option<Handle<&'static str>>,
}

impl Protocol for Inbox {
    type Message = &'static str;
    fn connection_made(&mut self, tx: &mut Transport<'_, &'static str>) {
        self.handle = tx.handle().cloned();
        // A message to itself, delivered on the recorder's next step, not inside this call.
        let _ = self.handle.as_ref().unwrap().send("hello");
    }
    fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_, &'static str>) {}
    fn message(&mut self, message: &'static str, tx: &mut Transport<'_, &'static str>) {
        let _ = tx.write_slice(message.as_bytes());
    }
}

#[test]
fn the_handle_is_there_in_connection_made_and_delivers_in_order() {
    let mut rec = Recorder::new(Inbox::default());
    // Posted from connection_made: delivered by the construction's step.
    assert_eq!(rec.take_written(), "hello");
    let handle = rec.protocol().handle.clone().unwrap();
    assert_eq!(&handle, rec.handle());
    assert_eq!(handle.peer(), RecorderConfig::default().peer);
    // Posted from outside: queued until the recorder steps, then in order with its own posts.
    handle.send(" a").unwrap();
    handle.send(" b").unwrap();
    assert_eq!(rec.written(), b"");
    rec.post(" c").unwrap();
    assert_eq!(rec.take_written(), " a b c");
    // A close through the handle comes after the message posted before it.
    handle.send(" last").unwrap();
    assert!(handle.close());
    rec.run_until_idle();
    assert_eq!(rec.take_written(), " last");
    assert_eq!(rec.reason(), Some(&Reason::Done));
    // Over: posts are given back.
    assert_eq!(handle.send("late"), Err("late"));
    assert_eq!(rec.post("later"), Err("later"));
}

/// Writes `size` bytes per read, ignoring backpressure, and records what happened.
struct Flood {
    size: usize,
    refused: Option<WriteError>,
    paused: bool,
}

impl Protocol for Flood {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        data.clear();
        if let Err(e) = tx.write(Bytes::from(vec![b'x'; self.size])) {
            self.refused = Some(e);
        }
    }
    fn pause_producing(&mut self, _: &mut Transport<'_>) {
        self.paused = true;
    }
    fn resume_producing(&mut self, _: &mut Transport<'_>) {
        self.paused = false;
    }
}

#[test]
fn a_peer_that_never_reads_brings_pause_producing_then_queue_full() {
    let config = RecorderConfig {
        peer_reads: PeerReads::Nothing,
        connection: Config {
            high_water: 4 * 1024,
            low_water: 1024,
            max_queued: Some(16 * 1024),
            ..Config::default()
        },
        ..RecorderConfig::default()
    };
    let flood = Flood {
        size: 3 * 1024,
        refused: None,
        paused: false,
    };
    let mut rec = Recorder::with_config(flood, config);
    rec.receive(b"1");
    assert!(!rec.protocol().paused);
    rec.receive(b"2");
    assert!(
        rec.protocol().paused,
        "6 KiB queued is above the 4 KiB mark"
    );
    let mut reads = 2;
    while rec.protocol().refused.is_none() {
        rec.receive(b"n");
        reads += 1;
        assert!(reads < 10, "the cap never refused a write");
    }
    assert!(matches!(
        rec.protocol().refused,
        Some(WriteError::QueueFull { max: 16_384, .. })
    ));
    assert_eq!(rec.written(), b"", "the peer took nothing");
    let queued = rec.queued_bytes();
    assert_eq!(
        queued,
        (reads - 1) * 3 * 1024,
        "the refused write queued nothing"
    );
    // The peer starts reading a little at a time: the queue drains and production resumes.
    rec.set_peer_reads(PeerReads::AtMost(1000));
    rec.step();
    assert_eq!(rec.take_written().len(), 1000);
    rec.run_until_idle();
    assert_eq!(rec.take_written().len(), queued - 1000);
    assert!(!rec.protocol().paused);
}

/// Echo with the default backpressure: pausing stops reading.
struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

#[test]
fn a_paused_echo_leaves_the_peer_bytes_unread_until_it_resumes() {
    let config = RecorderConfig {
        peer_reads: PeerReads::Nothing,
        connection: Config {
            high_water: 1024,
            low_water: 512,
            ..Config::default()
        },
        ..RecorderConfig::default()
    };
    let mut rec = Recorder::with_config(Echo, config);
    rec.receive(&[b'a'; 2048]);
    rec.receive(&[b'b'; 100]);
    rec.receive_eof();
    // Paused: the second read and the EOF wait, as in a kernel buffer.
    assert_eq!(rec.unread_bytes(), 100);
    assert!(!rec.is_ended());
    rec.set_peer_reads(PeerReads::All);
    rec.run_until_idle();
    let out = rec.take_written();
    assert_eq!((out.len(), out[2047], out[2048]), (2148, b'a', b'b'));
    // Then the EOF: the default `read_closed` closes.
    assert_eq!(rec.reason(), Some(&Reason::Done));
}

#[test]
fn a_close_that_cannot_flush_times_out() {
    let config = RecorderConfig {
        peer_reads: PeerReads::Nothing,
        ..RecorderConfig::default()
    };
    let mut rec = Recorder::with_config(Echo, config);
    rec.receive(b"stuck");
    assert!(rec.close());
    assert!(!rec.is_ended());
    rec.advance(Config::default().close_timeout.unwrap());
    assert_eq!(rec.reason(), Some(&Reason::TimedOut(Timeout::Close)));
    assert_eq!(rec.actions(), [Action::Abort]);
}

/// Twisted's UDP echo, connecting to whoever says `connect`.
struct UdpEcho;

impl DatagramProtocol for UdpEcho {
    type Message = Bytes;
    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if data == "connect" {
            let _ = tx.connect(from);
        } else if data == "close" {
            tx.close();
        } else {
            let _ = tx.send_to(data, from);
        }
    }
    fn message(&mut self, message: Bytes, tx: &mut DatagramTransport<'_>) {
        let _ = tx.send(message);
    }
}

#[test]
fn datagram_echo_sends_back_and_records_commands() {
    let alice: SocketAddr = "192.168.1.1:1000".parse().unwrap();
    let bob: SocketAddr = "192.168.1.2:2000".parse().unwrap();
    let mut rec = DatagramRecorder::new(UdpEcho);
    rec.receive(&b"one"[..], alice);
    rec.receive(&b"two"[..], bob);
    assert_eq!(
        rec.take_sent(),
        vec![
            (Bytes::from("one"), Some(alice)),
            (Bytes::from("two"), Some(bob))
        ]
    );
    rec.receive(&b"connect"[..], alice);
    assert_eq!(rec.commands(), [Command::Connect(alice)]);
    assert_eq!(rec.peer(), Some(alice));
    // Connected: bob is filtered out; a posted message goes to the connected peer.
    rec.receive(&b"from bob"[..], bob);
    rec.post(Bytes::from("posted")).unwrap();
    assert_eq!(rec.take_sent(), vec![(Bytes::from("posted"), None)]);
    rec.receive(&b"close"[..], alice);
    assert!(rec.is_ended() && rec.is_closed());
    assert_eq!(rec.reason(), Some(&Reason::Done));
    assert!(rec.post(Bytes::new()).is_err());
}

/// Sends `beat` on a timer every second.
struct Heartbeat;

impl DatagramProtocol for Heartbeat {
    type Message = ();
    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        tx.call_later(Duration::from_secs(1));
    }
    fn datagram_received(
        &mut self,
        _: Bytes,
        _: SocketAddr,
        _: bool,
        _: &mut DatagramTransport<'_>,
    ) {
    }
    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        let _ = tx.send_to(&b"beat"[..], "10.0.0.9:9".parse().unwrap());
        tx.call_later(Duration::from_secs(1));
    }
}

#[test]
fn datagram_timers_fire_in_virtual_time() {
    let mut rec = DatagramRecorder::new(Heartbeat);
    rec.advance(Duration::from_millis(999));
    assert!(rec.sent().is_empty());
    rec.advance(Duration::from_millis(2_001));
    assert_eq!(rec.take_sent().len(), 3);
    rec.abort();
    assert_eq!(rec.reason(), Some(&Reason::Aborted));
    assert!(rec.is_closed());
    assert_eq!(rec.next_timeout(), None);
}
