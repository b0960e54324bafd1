//! `Framed` over a `Connection`, script style with explicit times: what a peer sees.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

use crate::framing::{
    AnyCodec, EncodeError, FrameError, FrameHandler, FrameTransport, Framed, LengthCodec,
    LineCodec, NetstringCodec, Recovery, SendError,
};
use crate::stream::{Action, Config, Connection};
use crate::{Instant, Limit, Reason};

type Tx<'t, 'a> = FrameTransport<'t, 'a, AnyCodec>;

/// What a test's handler does with each frame.
type Behaviour = fn(&mut Script, Bytes, &mut Tx<'_, '_>);

/// A handler that logs every callback and reacts to frames through `behaviour`.
struct Script {
    log: Vec<String>,
    behaviour: Behaviour,
}

fn echo(script: &mut Script, frame: Bytes, tx: &mut Tx<'_, '_>) {
    script.log(format_args!("frame {:?}", frame));
    if let Err(error) = tx.send_frame(frame) {
        script.log(format_args!("send failed: {error}"));
    }
}

impl Script {
    fn log(&mut self, line: core::fmt::Arguments<'_>) {
        self.log.push(alloc::format!("{line}"));
    }
}

impl FrameHandler for Script {
    type Codec = AnyCodec;
    type Message = ();

    fn frame_received(&mut self, frame: Bytes, tx: &mut Tx<'_, '_>) {
        (self.behaviour)(self, frame, tx);
    }

    fn raw_data_received(&mut self, data: &mut BytesMut, tx: &mut Tx<'_, '_>) {
        // LR-9 probe: raw until `|`, then back to frames with the rest.
        match data.iter().position(|&b| b == b'|') {
            Some(at) => {
                let raw = data.split_to(at + 1);
                self.log(format_args!("raw {:?}", raw.freeze()));
                tx.set_frame_mode();
            }
            None => {
                let raw = data.split();
                self.log(format_args!("raw {:?}", raw.freeze()));
            }
        }
    }

    fn frame_skipped(&mut self, error: FrameError, _tx: &mut Tx<'_, '_>) {
        self.log(format_args!("skipped: {error}"));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.log(format_args!("lost: {reason}"));
    }
}

fn connect(codec: impl Into<AnyCodec>, behaviour: Behaviour) -> Connection<Framed<Script>> {
    let script = Script {
        log: Vec::new(),
        behaviour,
    };
    let mut conn = Connection::new(Framed::new(script, codec.into()), Config::default());
    let addr = "127.0.0.1:9".parse().unwrap();
    conn.handle_connected(Instant::ZERO, addr, addr);
    conn
}

/// Everything the connection wants written, reported as written at `now`.
fn flush(conn: &mut Connection<Framed<Script>>, now: Instant) -> Vec<u8> {
    let out: Vec<u8> = conn.poll_write().flatten().copied().collect();
    conn.handle_written(now, out.len());
    out
}

fn log(conn: &Connection<Framed<Script>>) -> Vec<String> {
    conn.protocol().handler().log.clone()
}

#[test]
fn frames_at_exactly_the_maximum_and_empty_frames_echo() {
    let t = Instant::from_millis(1);
    let mut line = connect(LineCodec::new().with_max_length(4), echo);
    line.handle_data(t, b"abcd\r\n\r\n");
    assert_eq!(flush(&mut line, t), b"abcd\r\n\r\n");

    let mut ns = connect(NetstringCodec::new().with_max_length(4), echo);
    ns.handle_data(t, b"4:abcd,0:,");
    assert_eq!(flush(&mut ns, t), b"4:abcd,0:,");

    for codec in [
        LengthCodec::int8(),
        LengthCodec::int16(),
        LengthCodec::int32(),
    ] {
        let width = codec.length_field_width();
        let mut conn = connect(codec.with_max_length(3), echo);
        let mut wire = vec![0; width - 1];
        wire.extend(b"\x03abc");
        wire.extend(vec![0; width]);
        conn.handle_data(t, &wire);
        assert_eq!(flush(&mut conn, t), wire, "width {width}");
        assert!(!conn.is_closed());
    }
}

#[test]
fn one_byte_at_a_time_gives_the_same_frames() {
    // PR-4, FR-1
    let mut conn = connect(NetstringCodec::new(), echo);
    let wire = b"5:hello,0:,11:hello world,";
    for (i, byte) in wire.iter().enumerate() {
        conn.handle_data(Instant::from_millis(i as u64), core::slice::from_ref(byte));
    }
    assert_eq!(flush(&mut conn, Instant::from_secs(1)), wire);
    assert_eq!(conn.buffered_bytes(), 0);
}

#[test]
fn thousands_of_frames_in_one_read() {
    let mut wire = Vec::new();
    for i in 0..5000u32 {
        wire.extend(alloc::format!("line {i}\r\n").as_bytes());
    }
    let mut conn = connect(LineCodec::new(), echo);
    conn.handle_data(Instant::ZERO, &wire);
    assert_eq!(log(&conn).len(), 5000);
    assert_eq!(flush(&mut conn, Instant::ZERO), wire);
}

#[test]
fn over_limit_closes_with_the_typed_reason_after_earlier_replies() {
    // FR-2, LR-4, LR-6: the earlier line is echoed, then the close; nothing after it is read.
    let t = Instant::from_millis(5);
    let mut conn = connect(LineCodec::new().with_max_length(3), echo);
    conn.handle_data(t, b"abc\r\ntoolong\r\nlater\r\n");
    assert_eq!(log(&conn), ["frame b\"abc\""]);
    assert_eq!(conn.poll_action(), None, "the reply is flushed first");
    assert_eq!(flush(&mut conn, t), b"abc\r\n");
    // Flushed: our side shuts down and lingers for the peer's EOF, then closes.
    assert_eq!(conn.poll_action(), Some(Action::ShutdownWrite));
    conn.handle_read_closed(t);
    assert_eq!(conn.poll_action(), Some(Action::Close));
    assert_eq!(
        conn.reason(),
        Some(&Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max: 3,
            seen: 5
        })
    );
}

#[test]
fn over_limit_length_prefix_closes_before_any_payload_arrives() {
    // IN-2
    let mut conn = connect(LengthCodec::int16().with_max_length(10), echo);
    conn.handle_data(Instant::ZERO, b"\x00\x01a\x00\x0b");
    assert_eq!(flush(&mut conn, Instant::ZERO), b"\x00\x01a");
    assert!(conn.is_ended());
    assert_eq!(
        conn.reason(),
        Some(&Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max: 10,
            seen: 11
        })
    );
}

#[test]
fn malformed_netstring_closes_with_a_protocol_reason() {
    // NS-5, NS-6
    let mut conn = connect(NetstringCodec::new(), echo);
    conn.handle_data(Instant::ZERO, b"1:a,3:abcX");
    assert_eq!(flush(&mut conn, Instant::ZERO), b"1:a,");
    assert_eq!(
        conn.reason(),
        Some(&Reason::protocol("netstring: missing comma"))
    );
}

#[test]
fn skip_recovery_reports_and_goes_on() {
    let codec = LineCodec::new()
        .with_max_length(3)
        .with_recovery(Recovery::Skip);
    let mut conn = connect(codec, echo);
    conn.handle_data(Instant::ZERO, b"ok\r\nfar too long\r\nyes\r\n");
    assert_eq!(flush(&mut conn, Instant::ZERO), b"ok\r\nyes\r\n");
    assert!(!conn.is_closed());
    assert_eq!(
        log(&conn)[1],
        "skipped: frame too long: 5 bytes > maximum 3"
    );
}

#[test]
fn frames_after_lose_connection_are_not_delivered() {
    // LR-7 (probed), and the same rule for netstrings and int prefixes (KW-5).
    fn quit_on_q(script: &mut Script, frame: Bytes, tx: &mut Tx<'_, '_>) {
        if frame == "q" {
            tx.lose_connection();
        }
        echo(script, frame, tx);
    }
    let mut conn = connect(NetstringCodec::new(), quit_on_q);
    conn.handle_data(Instant::ZERO, b"1:a,1:q,1:b,");
    assert_eq!(log(&conn), ["frame b\"a\"", "frame b\"q\""]);
    assert_eq!(flush(&mut conn, Instant::ZERO), b"1:a,1:q,");
    assert_eq!(conn.reason(), Some(&Reason::Done));
}

#[test]
fn raw_mode_from_a_frame_callback_takes_the_rest_of_the_chunk() {
    // LR-8, LR-9 (probed): raw chunk `xyz|b\r\nc\r\nra` with line mode after `|`.
    fn raw_on_r(script: &mut Script, frame: Bytes, tx: &mut Tx<'_, '_>) {
        script.log(format_args!("frame {:?}", frame));
        if frame == "r" {
            tx.set_raw_mode();
        }
    }
    let mut conn = connect(LineCodec::new(), raw_on_r);
    conn.handle_data(Instant::ZERO, b"r\r\nxyz|b\r\nc\r\nra");
    assert_eq!(
        log(&conn),
        [
            "frame b\"r\"",
            "raw b\"xyz|\"",
            "frame b\"b\"",
            "frame b\"c\""
        ]
    );
    assert_eq!(conn.buffered_bytes(), 2, "`ra` waits for its delimiter");
    conn.handle_data(Instant::ZERO, b"\r\n");
    assert_eq!(log(&conn).last().unwrap(), "frame b\"ra\"");
}

#[test]
fn any_framer_hands_over_to_another_with_every_unconsumed_byte() {
    // The handover Twisted has only for LineReceiver, for every framer.
    fn switch_on_ns(script: &mut Script, frame: Bytes, tx: &mut Tx<'_, '_>) {
        script.log(format_args!("frame {:?}", frame));
        if frame == "NETSTRING" {
            tx.set_codec(NetstringCodec::new().into());
        } else if frame == "INT8" {
            tx.set_codec(LengthCodec::int8().into());
        }
    }
    let mut conn = connect(LineCodec::new(), switch_on_ns);
    conn.handle_data(Instant::ZERO, b"NETSTRING\r\n3:abc,4:INT8,\x02hi");
    assert_eq!(
        log(&conn),
        [
            "frame b\"NETSTRING\"",
            "frame b\"abc\"",
            "frame b\"INT8\"",
            "frame b\"hi\""
        ]
    );
}

#[test]
fn clear_buffer_drops_the_partial_frame() {
    // LR-11
    fn clear_on_c(script: &mut Script, frame: Bytes, tx: &mut Tx<'_, '_>) {
        script.log(format_args!("frame {:?}", frame));
        if frame == "c" {
            let dropped = tx.clear_buffer();
            script.log(format_args!("cleared {:?}", dropped));
        }
    }
    let mut conn = connect(LineCodec::new(), clear_on_c);
    conn.handle_data(Instant::ZERO, b"c\r\nnot\r\nthis");
    assert_eq!(log(&conn), ["frame b\"c\"", "cleared b\"not\\r\\nthis\""]);
    assert_eq!(conn.buffered_bytes(), 0);
    conn.handle_data(Instant::ZERO, b"next\r\n");
    assert_eq!(log(&conn).last().unwrap(), "frame b\"next\"");
}

#[test]
fn paused_frames_wait_in_the_buffer_and_arrive_on_resume() {
    // PP-7, LR-13: pause from a frame callback; resume later from a timer.
    struct Pausing {
        frames: Vec<Bytes>,
    }
    impl FrameHandler for Pausing {
        type Codec = LineCodec;
        type Message = ();
        fn frame_received(&mut self, frame: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
            if frame == "pause" {
                tx.pause_reading();
                tx.call_later(core::time::Duration::from_secs(1));
            }
            self.frames.push(frame);
        }
        fn timer_fired(&mut self, _: crate::TimerId, tx: &mut FrameTransport<'_, '_, LineCodec>) {
            tx.resume_reading();
        }
    }
    let handler = Pausing { frames: Vec::new() };
    let mut conn = Connection::new(Framed::new(handler, LineCodec::new()), Config::default());
    let addr = "127.0.0.1:9".parse().unwrap();
    conn.handle_connected(Instant::ZERO, addr, addr);
    conn.handle_data(Instant::ZERO, b"a\r\npause\r\nb\r\nc\r\n");
    assert_eq!(conn.protocol().handler().frames, ["a", "pause"]);
    assert!(!conn.wants_read());
    assert_eq!(conn.next_timeout(), Some(Instant::from_secs(1)));
    conn.handle_timeout(Instant::from_secs(1));
    assert_eq!(conn.protocol().handler().frames, ["a", "pause", "b", "c"]);
}

#[test]
fn send_frame_refuses_what_the_peer_would_reject_and_queues_nothing() {
    fn send_bad(script: &mut Script, _: Bytes, tx: &mut Tx<'_, '_>) {
        let result = tx.send_frame(Bytes::from_static(b"two\r\nlines"));
        assert_eq!(
            result,
            Err(SendError::Encode(EncodeError::ContainsDelimiter))
        );
        script.log(format_args!("queued {}", tx.queued_bytes()));
    }
    let mut conn = connect(LineCodec::new(), send_bad);
    conn.handle_data(Instant::ZERO, b"go\r\n");
    assert_eq!(log(&conn), ["queued 0"]);
}

#[test]
fn peer_bytes_beyond_the_receive_buffer_limit_close_the_connection() {
    // Documented interplay: a frame maximum above `max_receive_buffer` is cut by the buffer
    // limit first, with its own reason.
    let handler = Script {
        log: Vec::new(),
        behaviour: echo,
    };
    let config = Config {
        max_receive_buffer: Some(64),
        ..Config::default()
    };
    let codec = AnyCodec::from(LineCodec::new().with_max_length(1000));
    let mut conn = Connection::new(Framed::new(handler, codec), config);
    let addr = "127.0.0.1:9".parse().unwrap();
    conn.handle_connected(Instant::ZERO, addr, addr);
    conn.handle_data(Instant::ZERO, &[b'x'; 65]);
    assert!(conn.is_ended());
    assert!(matches!(
        conn.reason(),
        Some(Reason::LimitExceeded {
            limit: Limit::ReceiveBuffer,
            ..
        })
    ));
}

/// Holds raw bytes without consuming them; a timer switches back to lines or clears them.
struct Hoarder {
    frames: Vec<Bytes>,
    clear_on_timer: bool,
}

impl FrameHandler for Hoarder {
    type Codec = LineCodec;
    type Message = ();
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        tx.set_raw_mode();
        tx.call_later(core::time::Duration::from_secs(1));
    }
    fn frame_received(&mut self, frame: Bytes, _: &mut FrameTransport<'_, '_, LineCodec>) {
        self.frames.push(frame);
    }
    fn raw_data_received(&mut self, _: &mut BytesMut, _: &mut FrameTransport<'_, '_, LineCodec>) {
        // Leave everything buffered.
    }
    fn timer_fired(&mut self, _: crate::TimerId, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if self.clear_on_timer {
            let dropped = tx.clear_buffer();
            self.frames.push(dropped);
        }
        tx.set_frame_mode();
    }
}

fn hoarder(clear_on_timer: bool) -> Connection<Framed<Hoarder>> {
    let handler = Hoarder {
        frames: Vec::new(),
        clear_on_timer,
    };
    let mut conn = Connection::new(Framed::new(handler, LineCodec::new()), Config::default());
    let addr = "127.0.0.1:9".parse().unwrap();
    conn.handle_connected(Instant::ZERO, addr, addr);
    conn
}

#[test]
fn switching_to_frames_from_a_timer_parses_what_raw_mode_left_buffered() {
    // LR-9 outside a data callback: no new bytes needed, the buffer is offered again.
    let mut conn = hoarder(false);
    conn.handle_data(Instant::from_millis(10), b"a\r\nb\r\npart");
    assert_eq!(conn.buffered_bytes(), 10);
    conn.handle_timeout(Instant::from_secs(1));
    assert_eq!(conn.protocol().handler().frames, ["a", "b"]);
    assert_eq!(conn.buffered_bytes(), 4);
}

#[test]
fn clear_buffer_from_a_timer_takes_the_connections_buffer() {
    // LR-11 outside a data callback.
    let mut conn = hoarder(true);
    conn.handle_data(Instant::from_millis(10), b"a\r\npart");
    conn.handle_timeout(Instant::from_secs(1));
    assert_eq!(conn.protocol().handler().frames, ["a\r\npart"]);
    assert_eq!(conn.buffered_bytes(), 0);
    conn.handle_data(Instant::from_secs(2), b"x\r\n");
    assert_eq!(conn.protocol().handler().frames, ["a\r\npart", "x"]);
}

#[test]
fn frames_in_out_and_rejected_are_counted_in_the_connection_stats() {
    let codec = LineCodec::new().with_max_length(8);
    let mut conn = connect(codec, echo);
    conn.handle_data(Instant::ZERO, b"one\r\ntwo\r\n");
    assert_eq!(flush(&mut conn, Instant::ZERO), b"one\r\ntwo\r\n");
    let stats = conn.stats();
    assert_eq!(
        (
            stats.frames_received,
            stats.frames_sent,
            stats.frames_rejected
        ),
        (2, 2, 0)
    );
    conn.handle_data(Instant::ZERO, b"much too long for eight\r\n");
    assert_eq!(conn.stats().frames_rejected, 1);
    assert_eq!(conn.stats().frames_received, 2);
}

mod chunking {
    use super::*;
    use proptest::collection::vec as pvec;
    use proptest::prelude::*;

    fn codec(which: u8) -> AnyCodec {
        match which % 4 {
            0 => LineCodec::new().into(),
            1 => NetstringCodec::new().into(),
            2 => LengthCodec::int8().into(),
            _ => LengthCodec::int32().into(),
        }
    }

    proptest! {
        /// PR-4 through the whole stack: an echo over a `Connection` answers with exactly the
        /// bytes it was sent, however the peer's bytes were split into reads.
        #[test]
        fn framed_echo_is_chunking_independent(
            which in 0u8..4,
            payloads in pvec(pvec(prop::sample::select(&b"ab:,\r"[..]), 0..40), 0..20),
            chunks in pvec(1usize..50, 1..10),
        ) {
            let mut encoder = codec(which);
            let mut wire = BytesMut::new();
            for p in &payloads {
                use crate::framing::Encoder;
                encoder.encode(Bytes::from(p.clone())).unwrap().write_to(&mut wire);
            }
            let mut conn = connect(codec(which), echo);
            let mut rest = &wire[..];
            let mut sizes = chunks.iter().cycle();
            let mut t = 0;
            while !rest.is_empty() {
                let n = (*sizes.next().unwrap()).min(rest.len());
                t += 1;
                conn.handle_data(Instant::from_millis(t), &rest[..n]);
                rest = &rest[n..];
            }
            prop_assert_eq!(flush(&mut conn, Instant::from_millis(t)), wire.to_vec());
            prop_assert_eq!(conn.buffered_bytes(), 0);
            prop_assert!(!conn.is_closed());
        }
    }
}

/// Sends a last frame when a close is asked from outside.
struct Farewell;

impl FrameHandler for Farewell {
    type Codec = LineCodec;
    type Message = ();
    fn frame_received(&mut self, _: Bytes, _: &mut FrameTransport<'_, '_, LineCodec>) {}
    fn close_requested(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame(Bytes::from_static(b"server going down"));
        tx.lose_connection();
    }
}

#[test]
fn a_handler_sends_a_last_frame_when_a_close_is_asked_from_outside() {
    let mut conn = Connection::new(Framed::new(Farewell, LineCodec::new()), Config::default());
    conn.handle_connected(
        Instant::ZERO,
        "127.0.0.1:1".parse().unwrap(),
        "127.0.0.1:2".parse().unwrap(),
    );
    conn.close(Instant::from_millis(1));
    let out: Vec<u8> = conn.poll_write().flatten().copied().collect();
    assert_eq!(out, b"server going down\r\n");
    conn.handle_written(Instant::from_millis(2), out.len());
    assert_eq!(conn.poll_action(), Some(Action::ShutdownWrite));
}
