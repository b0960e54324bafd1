//! The test kit finds bugs (issue 13, item 7): five deliberately broken protocols, each
//! reported by the check a user would run, within a bounded number of cases; and correct
//! protocols, a slow-reading peer's graceful close included, not reported.
//!
//! A kit that passes a broken protocol is itself broken, so each broken protocol is also
//! shown to be reported for the reason it is broken, not for some other one.

use std::collections::VecDeque;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork::stream::{Protocol, Transport, WriteError};
use loomwork::testing::{properties, Ending, Op, StreamCheck};
use loomwork::TimerId;
use proptest::prelude::*;

/// Lines of printable text, the inputs every property below is run with.
fn lines() -> BoxedStrategy<Vec<u8>> {
    properties::text_lines(8)
}

// ----- correct protocols ------------------------------------------------------------------

/// A line echo that closes gracefully on `QUIT`.
struct Echo;

impl FrameHandler for Echo {
    type Codec = LineCodec;
    type Message = ();

    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if &line[..] == b"QUIT" {
            let _ = tx.send_frame(Bytes::from_static(b"bye"));
            tx.lose_connection();
        } else {
            let _ = tx.send_frame(line);
        }
    }
}

fn echo() -> Framed<Echo> {
    Framed::new(Echo, LineCodec::new())
}

#[test]
fn a_correct_line_echo_passes_every_property() {
    let check = StreamCheck::protocol(echo).cases(64);
    check.same_replies_however_split(lines()).unwrap();
    check.bounded_while_peer_never_reads(lines()).unwrap();
    check
        .ends_with_one_reason(properties::schedule(lines()))
        .unwrap();
}

/// A graceful close whose flush the peer reads one byte per step, ended by the close
/// deadline: not a chunking bug, not a broken invariant.
#[test]
fn a_graceful_close_to_a_peer_reading_one_byte_per_step_is_not_reported() {
    let check = StreamCheck::protocol(echo);
    let mut ops = vec![Op::Reading { conn: 0, on: false }];
    // Ten lines of 10,000 bytes, then QUIT: 100,015 bytes to flush.
    let line = [&b"x".repeat(10_000)[..], b"\r\n"].concat();
    ops.push(Op::Send {
        conn: 0,
        data: [line.repeat(10), b"QUIT\r\n".to_vec()].concat(),
    });
    for _ in 0..1_000 {
        ops.push(Op::Read { conn: 0, max: 1 });
    }
    // Time passes while the peer crawls: the close deadline (30 s) ends the connection.
    ops.push(Op::Advance(Duration::from_secs(40)));
    let outcome = check.run(ops).unwrap();
    let served = &outcome.connections[0];
    assert_eq!(served.written.len(), 1_000);
    assert_eq!(
        served.reason,
        Some(loomwork::Reason::TimedOut(loomwork::Timeout::Close))
    );

    let quit_split = [b"hello\r\nQU".to_vec(), b"IT\r".to_vec(), b"\n".to_vec()];
    let strategy = Just(quit_split.concat());
    check
        .cases(16)
        .same_replies_however_split(strategy)
        .unwrap();
}

// ----- 1. writes after its connection ended -----------------------------------------------

/// Echoes lines; an empty line says goodbye and shuts down writing, but its keep-alive timer
/// goes on writing: those bytes are lost.
struct WritesAfterHalfClose {
    keepalive: Option<TimerId>,
}

impl FrameHandler for WritesAfterHalfClose {
    type Codec = LineCodec;
    type Message = ();

    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        self.keepalive = Some(tx.call_later(Duration::from_secs(5)));
    }

    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if line.is_empty() {
            let _ = tx.send_frame(Bytes::from_static(b"bye"));
            tx.shutdown_write();
        } else {
            let _ = tx.send_frame(line);
        }
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame(Bytes::from_static(b"ping"));
        self.keepalive = Some(tx.call_later(Duration::from_secs(5)));
    }
}

#[test]
fn a_protocol_that_writes_after_shutting_down_writing_is_reported() {
    let check = StreamCheck::protocol(|| {
        Framed::new(WritesAfterHalfClose { keepalive: None }, LineCodec::new())
    });
    let failure = check
        .ends_with_one_reason(properties::schedule(lines()))
        .unwrap_err();
    assert!(
        failure
            .what
            .contains("wrote after its writing side had closed"),
        "{failure}"
    );
}

// ----- 2. buffers without bound when the peer does not read -------------------------------

/// Echoes, ignores `pause_producing`, and keeps what the full queue refuses in a backlog of its
/// own, to send "later": while the peer never reads, the backlog grows without bound.
#[derive(Default)]
struct Hoarder {
    backlog: VecDeque<Bytes>,
}

impl Protocol for Hoarder {
    type Message = ();

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let reply = data.split().freeze();
        while let Some(old) = self.backlog.pop_front() {
            if tx.write(old.clone()).is_err() {
                self.backlog.push_front(old);
                break;
            }
        }
        if let Err(WriteError::QueueFull { .. }) = tx.write(reply.clone()) {
            self.backlog.push_back(reply);
        }
    }

    fn pause_producing(&mut self, _: &mut Transport<'_>) {}
}

#[test]
fn a_protocol_that_buffers_without_bound_for_a_peer_that_never_reads_is_reported() {
    let failure = StreamCheck::protocol(Hoarder::default)
        .bounded_while_peer_never_reads(lines())
        .unwrap_err();
    assert!(
        failure
            .what
            .contains("after a write was refused as over the queue's cap"),
        "{failure}"
    );
}

// ----- 3. panics on a delimiter split across reads ----------------------------------------

/// Splits lines itself, and assumes a `\r` is always followed by its `\n` in the same read.
#[derive(Default)]
struct NaiveLines;

impl Protocol for NaiveLines {
    type Message = ();

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        while let Some(cr) = data.iter().position(|&b| b == b'\r') {
            assert_eq!(data[cr + 1], b'\n', "a line ends in \\r\\n");
            let line = data.split_to(cr + 2).freeze();
            let _ = tx.write(line);
        }
    }
}

#[test]
fn a_protocol_that_panics_on_a_delimiter_split_across_reads_is_reported() {
    let failure = StreamCheck::protocol(|| NaiveLines)
        .same_replies_however_split(lines())
        .unwrap_err();
    assert!(failure.what.contains("index out of bounds"), "{failure}");
}

// ----- 4. never ends a connection after a timeout -----------------------------------------

/// Says it closes idle connections after 10 s, and on the timeout only says so.
#[derive(Default)]
struct ForgetfulIdle {
    timer: Option<TimerId>,
}

impl ForgetfulIdle {
    fn rearm(&mut self, tx: &mut Transport<'_>) {
        if let Some(timer) = self.timer.take() {
            tx.cancel_timer(timer);
        }
        self.timer = Some(tx.call_later(Duration::from_secs(10)));
    }
}

impl Protocol for ForgetfulIdle {
    type Message = ();

    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.rearm(tx);
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
        self.rearm(tx);
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_>) {
        self.timer = None;
        let _ = tx.write_slice(b"idle timeout\r\n");
        // Bug: no tx.lose_connection().
    }
}

#[test]
fn a_protocol_that_never_ends_a_connection_after_its_timeout_is_reported() {
    let idle = Ending::Idle {
        within: Duration::from_secs(11),
    };
    let failure = StreamCheck::protocol(ForgetfulIdle::default)
        .ending(idle)
        .ends_with_one_reason(properties::schedule(lines()))
        .unwrap_err();
    assert!(
        failure.what.contains("no idle timeout ended it"),
        "{failure}"
    );
}

// ----- 5. a reply that depends on the chunking --------------------------------------------

/// Answers every read, not every request: its replies depend on how TCP split the input.
struct PerRead;

impl Protocol for PerRead {
    type Message = ();

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let got = data.split();
        let _ = tx.write(format!("got {} bytes\r\n", got.len()));
    }
}

#[test]
fn a_protocol_whose_reply_depends_on_the_chunking_is_reported() {
    let failure = StreamCheck::protocol(|| PerRead)
        .same_replies_however_split(lines())
        .unwrap_err();
    assert!(
        failure.what.contains("in one read the protocol wrote"),
        "{failure}"
    );
}

// ----- the fuzz driver, on random bytes ---------------------------------------------------

/// `count` pseudo-random inputs of up to 2 KiB (the core's SplitMix64, fixed seed).
fn random_inputs(count: usize) -> impl Iterator<Item = Vec<u8>> {
    let mut rng = loomwork::rand::SplitMix64::new(0x5eed);
    (0..count).map(move |_| {
        let len = (rng.next_u64() % 2048) as usize;
        (0..len).map(|_| rng.next_u64() as u8).collect()
    })
}

/// Echoes; half-closes on an end-of-transmission byte (0x04, the terminal's ^D), but its
/// keep-alive timer goes on writing into the shut side.
#[derive(Default)]
struct KeepaliveAfterEot;

impl Protocol for KeepaliveAfterEot {
    type Message = ();

    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        tx.call_later(Duration::from_secs(5));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let data = data.split().freeze();
        match data.iter().position(|&b| b == 0x04) {
            Some(eot) => {
                let _ = tx.write(data.slice(..eot));
                tx.shutdown_write();
            }
            None => {
                let _ = tx.write(data);
            }
        }
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(b"ping\r\n");
        tx.call_later(Duration::from_secs(5));
    }
}

#[test]
fn the_fuzz_driver_passes_a_correct_protocol_and_reports_a_write_after_half_close() {
    let good = StreamCheck::protocol(echo);
    for input in random_inputs(300) {
        if let Err(violation) = good.fuzz_checked(&input) {
            panic!("{violation}");
        }
    }
    let broken = StreamCheck::protocol(KeepaliveAfterEot::default);
    let found = random_inputs(2_000)
        .filter_map(|input| broken.fuzz_checked(&input).err())
        .next()
        .expect("no input out of 2,000 reported the write after the half-close");
    assert!(
        found
            .what
            .contains("wrote after its writing side had closed"),
        "{found}"
    );
}

#[test]
fn a_panic_in_the_protocol_reaches_the_fuzzer() {
    let check = StreamCheck::protocol(|| NaiveLines);
    let crashed = random_inputs(2_000).any(|input| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check.fuzz(&input))).is_err()
    });
    assert!(crashed, "no input out of 2,000 split a \\r\\n");
}
