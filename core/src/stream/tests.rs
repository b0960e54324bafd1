//! Script-style tests of the `Connection` driver, with explicit times, and proptest over
//! arbitrary event sequences.

use alloc::string::String;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::reason::{Limit, Reason, Timeout};
use crate::time::Instant;
use crate::timer::TimerId;

use super::write_queue::ENTRY_OVERHEAD as OVERHEAD;

/// Records every callback, and does what its script says on data.
#[derive(Default)]
struct Scripted {
    log: Vec<String>,
    /// Echo what arrives.
    echo: bool,
    /// Consume nothing (to exercise the receive limit).
    hoard: bool,
    /// Close after the first data.
    close_on_data: bool,
    abort_on_data: bool,
    timers: Vec<TimerId>,
}

impl Protocol for Scripted {
    type Message = u32;
    fn connection_made(&mut self, _: &mut Transport<'_, u32>) {
        self.log.push("made".into());
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, u32>) {
        self.log.push(alloc::format!("data {}", data.len()));
        if self.hoard {
            return;
        }
        let bytes = data.split().freeze();
        if self.echo {
            let _ = tx.write(bytes);
        }
        if self.close_on_data {
            tx.lose_connection();
        }
        if self.abort_on_data {
            tx.abort_connection();
        }
    }
    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, u32>) {
        self.timers.push(timer);
        self.log.push(alloc::format!("timer at {:?}", tx.now()));
    }
    fn message(&mut self, message: u32, tx: &mut Transport<'_, u32>) {
        self.log.push(alloc::format!("message {message}"));
        let _ = tx.write_slice(&message.to_be_bytes());
    }
    fn pause_producing(&mut self, tx: &mut Transport<'_, u32>) {
        self.log.push("pause".into());
        tx.pause_reading();
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_, u32>) {
        self.log.push("resume".into());
        tx.resume_reading();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.log.push(alloc::format!("lost {reason:?}"));
    }
}

fn addr() -> core::net::SocketAddr {
    "127.0.0.1:4000".parse().unwrap()
}

fn open(protocol: Scripted, config: Config) -> Connection<Scripted> {
    let mut c = Connection::new(protocol, config);
    c.handle_connected(Instant::ZERO, addr(), addr());
    c
}

/// An open connection that echoes what arrives.
fn echoing(config: Config) -> Connection<Scripted> {
    open(
        Scripted {
            echo: true,
            ..Default::default()
        },
        config,
    )
}

/// An open connection that echoes the first data, then closes gracefully.
fn echoing_closer(config: Config) -> Connection<Scripted> {
    open(
        Scripted {
            echo: true,
            close_on_data: true,
            ..Default::default()
        },
        config,
    )
}

fn drain_writes(c: &mut Connection<Scripted>, now: Instant) -> Vec<u8> {
    let out: Vec<u8> = c.poll_write().flatten().copied().collect();
    c.handle_written(now, out.len());
    out
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn echo_then_peer_eof_closes_cleanly_after_flushing() {
    let mut c = echoing(Config::default());
    c.handle_data(t(1), b"abc");
    c.handle_read_closed(t(2));
    // PR-7 differs on purpose (KW-10): the pending echo is flushed before the close.
    assert_eq!(c.poll_action(), None);
    assert_eq!(drain_writes(&mut c, t(3)), b"abc");
    assert_eq!(c.poll_action(), Some(Action::Close));
    assert_eq!(c.protocol().log, ["made", "data 3", "lost Done"]);
}

#[test]
fn nothing_is_delivered_before_connected_or_after_lost() {
    let mut c = Connection::new(Scripted::default(), Config::default());
    c.handle_data(t(0), b"early");
    c.handle_timeout(t(0));
    c.handle_message(t(0), 7);
    assert!(c.protocol().log.is_empty());
    c.handle_connected(t(1), addr(), addr());
    c.handle_error(t(2), Reason::Reset);
    c.handle_data(t(3), b"late");
    c.handle_error(t(4), Reason::Lost);
    c.handle_read_closed(t(5));
    assert_eq!(c.protocol().log, ["made", "lost Reset"]);
    assert_eq!(c.poll_action(), Some(Action::Close));
    assert_eq!(c.poll_action(), None);
}

#[test]
fn abort_discards_the_queue_and_reports_aborted_after_the_callback() {
    let mut c = open(
        Scripted {
            echo: true,
            abort_on_data: true,
            ..Default::default()
        },
        Config::default(),
    );
    c.handle_data(t(1), b"xyz");
    assert_eq!(
        c.poll_write().count(),
        0,
        "nothing is written after an abort"
    );
    assert_eq!(c.poll_action(), Some(Action::Abort));
    assert_eq!(c.reason(), Some(&Reason::Aborted));
    assert_eq!(c.protocol().log.last().unwrap(), "lost Aborted");
}

#[test]
fn lose_connection_stops_reading_and_flushes_later_writes_too() {
    let mut c = echoing_closer(Config::default());
    c.handle_data(t(1), b"one");
    assert!(
        !c.wants_read(),
        "TR-3: no more reading after lose_connection"
    );
    c.handle_data(t(2), b"two");
    c.handle_message(t(2), 0x41424344); // TR-3: writes after lose_connection are still sent
    assert_eq!(drain_writes(&mut c, t(3)), b"oneABCD");
    assert_eq!(c.poll_action(), Some(Action::ShutdownWrite));
    assert!(
        c.is_ended(),
        "connection_lost comes once everything is flushed"
    );
}

#[test]
fn a_flushed_close_lingers_discarding_input_until_the_peer_eof() {
    let mut c = echoing_closer(Config::default());
    c.handle_data(t(1), b"bye");
    assert_eq!(drain_writes(&mut c, t(2)), b"bye");
    // Closing now, with the peer's later bytes unread, would reset the connection and could
    // destroy "bye" in flight: shut down writing, read and discard, close on EOF.
    assert_eq!(c.poll_action(), Some(Action::ShutdownWrite));
    assert_eq!(c.reason(), Some(&Reason::Done));
    assert!(c.wants_read() && !c.is_closed());
    c.handle_data(t(3), b"ignored: nobody reads this");
    assert_eq!(
        c.protocol().log,
        ["made", "data 3", "lost Done"],
        "the protocol is done"
    );
    assert_eq!(c.buffered_bytes(), 0);
    c.handle_read_closed(t(4));
    assert_eq!(c.poll_action(), Some(Action::Close));
    assert!(c.is_closed());
}

#[test]
fn a_silent_peer_is_closed_at_the_linger_deadline() {
    let config = Config {
        close_linger: Some(Duration::from_millis(500)),
        ..Config::default()
    };
    let mut c = echoing_closer(config);
    c.handle_data(t(0), b"x");
    drain_writes(&mut c, t(10));
    assert_eq!(c.poll_action(), Some(Action::ShutdownWrite));
    assert_eq!(c.next_timeout(), Some(t(510)));
    c.handle_timeout(t(509));
    assert_eq!(c.poll_action(), None);
    c.handle_timeout(t(510));
    assert_eq!(c.poll_action(), Some(Action::Close));
}

#[test]
fn no_linger_when_the_peer_already_closed_or_when_disabled() {
    let mut c = echoing(Config::default());
    c.handle_data(t(1), b"abc");
    c.handle_read_closed(t(2));
    drain_writes(&mut c, t(3));
    assert_eq!(
        c.poll_action(),
        Some(Action::Close),
        "peer EOF seen: nothing to drain"
    );

    let config = Config {
        close_linger: None,
        ..Config::default()
    };
    let mut c = echoing_closer(config);
    c.handle_data(t(1), b"abc");
    drain_writes(&mut c, t(2));
    assert_eq!(c.poll_action(), Some(Action::Close));
}

#[test]
fn graceful_close_that_cannot_flush_aborts_at_the_deadline() {
    let config = Config {
        close_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let mut c = echoing_closer(config);
    c.handle_data(t(1000), b"stuck");
    assert_eq!(c.next_timeout(), Some(t(6000)));
    c.handle_timeout(t(5999));
    assert_eq!(c.poll_action(), None, "never early");
    c.handle_timeout(t(6000));
    assert_eq!(c.poll_action(), Some(Action::Abort));
    assert_eq!(c.reason(), Some(&Reason::TimedOut(Timeout::Close)));
}

#[test]
fn backpressure_pauses_above_high_and_resumes_at_low() {
    // The marks count the queue's account: its bytes plus one entry's overhead here.
    let config = Config {
        high_water: 100 + OVERHEAD,
        low_water: 40 + OVERHEAD,
        ..Config::default()
    };
    let mut c = echoing(config);
    c.handle_data(t(1), &[7u8; 150]);
    assert!(!c.wants_read(), "paused reading via the default policy");
    c.handle_written(t(2), 100); // 50 left: above low water
    assert!(!c.wants_read());
    c.handle_written(t(3), 10); // 40 left: resume
    assert!(c.wants_read());
    assert_eq!(c.protocol().log, ["made", "data 150", "pause", "resume"]);
    assert_eq!(c.stats().pauses, 1);
    assert_eq!(c.stats().time_paused, Duration::from_millis(2));
}

#[test]
fn the_write_queue_cap_refuses_whole_writes() {
    struct Greedy(Vec<WriteError>);
    impl Protocol for Greedy {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
            data.clear();
            for _ in 0..4 {
                if let Err(e) = tx.write_slice(&[0u8; 40]) {
                    self.0.push(e);
                }
            }
        }
    }
    // The cap counts the queue's account: two 40-byte writes share one block, charged one
    // entry's overhead.
    let config = Config {
        max_queued: Some(100 + OVERHEAD),
        ..Config::default()
    };
    let mut c = Connection::new(Greedy(Vec::new()), config);
    c.handle_connected(t(0), addr(), addr());
    c.handle_data(t(1), b"go");
    assert_eq!(c.queued_bytes(), 80, "nothing half-queued");
    assert_eq!(c.queued_memory(), 80 + OVERHEAD);
    let full = WriteError::QueueFull {
        queued: 80 + OVERHEAD,
        max: 100 + OVERHEAD,
        len: 40,
    };
    assert_eq!(c.protocol().0, [full.clone(), full]);
}

/// A connection whose protocol consumes nothing, with a receive buffer of `max` bytes.
fn hoarding(max: usize) -> Connection<Scripted> {
    let config = Config {
        max_receive_buffer: Some(max),
        ..Config::default()
    };
    open(
        Scripted {
            hoard: true,
            ..Default::default()
        },
        config,
    )
}

#[test]
fn a_protocol_that_never_consumes_hits_the_receive_limit() {
    let mut c = hoarding(10);
    c.handle_data(t(1), b"0123456789");
    assert!(!c.is_closed());
    c.handle_data(t(2), b"x");
    assert_eq!(
        c.reason(),
        Some(&Reason::LimitExceeded {
            limit: Limit::ReceiveBuffer,
            max: 10,
            seen: 11
        })
    );
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn reading_in_place_delivers_what_was_appended_and_returns_the_result() {
    let mut c = echoing(Config::default());
    let read = c.handle_data_with(t(1), |buf| {
        buf.extend_from_slice(b"abc");
        Ok::<usize, ()>(3)
    });
    assert_eq!(read, Ok(3));
    assert_eq!(drain_writes(&mut c, t(1)), b"abc");
    // A read that appended nothing (would block, failed) changes nothing.
    assert_eq!(
        c.handle_data_with(t(2), |_| Err::<usize, &str>("EAGAIN")),
        Err("EAGAIN")
    );
    assert_eq!(c.protocol().log, ["made", "data 3"]);
    assert_eq!(c.stats().bytes_received, 3);
}

#[test]
fn reading_in_place_after_close_keeps_nothing() {
    let mut c = open(
        Scripted {
            close_on_data: true,
            ..Default::default()
        },
        Config {
            close_linger: None,
            ..Config::default()
        },
    );
    c.handle_data(t(1), b"bye");
    let mut queued = 0;
    let _ = c.handle_data_with(t(2), |buf| {
        buf.extend_from_slice(b"late");
        queued = buf.len();
        Ok::<(), ()>(())
    });
    assert_eq!(queued, 4, "the buffer was lent out as usual");
    assert_eq!(
        c.buffered_bytes(),
        0,
        "and what was appended after the close dropped"
    );
    assert_eq!(c.protocol().log, ["made", "data 3", "lost Done"]);
}

/// Reads `bytes` into `c` the way a runtime lending storage does: into room for 64 KiB.
fn read_into_room(c: &mut Connection<Scripted>, now: Instant, bytes: &[u8]) {
    let _ = c.handle_data_with(now, |buf| {
        buf.reserve(64 * 1024);
        buf.extend_from_slice(bytes);
        Ok::<(), ()>(())
    });
}

#[test]
fn a_consumed_buffer_is_given_up_whole() {
    let mut c = echoing(Config::default());
    assert!(
        c.poll_spare_buffer().is_none(),
        "nothing read, nothing held"
    );
    read_into_room(&mut c, t(1), b"abc");
    assert_eq!(drain_writes(&mut c, t(1)), b"abc");
    let spare = c.poll_spare_buffer().expect("the read's storage");
    assert!(spare.is_empty());
    assert!(spare.capacity() >= 60 * 1024, "{}", spare.capacity());
    assert!(c.poll_spare_buffer().is_none(), "given up once");
    // The connection reads on as before, into whatever storage it is lent next.
    read_into_room(&mut c, t(2), b"de");
    assert_eq!(drain_writes(&mut c, t(2)), b"de");
}

#[test]
fn a_small_partial_input_keeps_its_bytes_in_storage_of_its_own() {
    let mut c = hoarding(100_000);
    read_into_room(&mut c, t(1), b"partial frame");
    let spare = c.poll_spare_buffer().expect("the read's storage");
    assert!(spare.is_empty() && spare.capacity() >= 60 * 1024);
    assert_eq!(c.buffered_bytes(), 13, "the input stayed");
    // What the connection still holds is about the input's size, not a read buffer.
    assert!(c.poll_spare_buffer().is_none());
    // And the input is still there, in order, for the protocol: more arrives behind it.
    read_into_room(&mut c, t(2), b"!");
    assert_eq!(c.buffered_bytes(), 14);
}

#[test]
fn a_large_partial_input_keeps_its_buffer() {
    let mut c = hoarding(100_000);
    read_into_room(&mut c, t(1), &[7; 4096]);
    assert!(
        c.poll_spare_buffer().is_none(),
        "copying 4 KiB per wait would cost more than the room saves"
    );
    assert_eq!(c.buffered_bytes(), 4096);
}

#[test]
fn reading_in_place_is_bounded_by_the_receive_limit() {
    let mut c = hoarding(10);
    let _ = c.handle_data_with(t(1), |buf| {
        buf.extend_from_slice(b"0123456789x");
        Ok::<(), ()>(())
    });
    assert!(matches!(
        c.reason(),
        Some(Reason::LimitExceeded {
            limit: Limit::ReceiveBuffer,
            seen: 11,
            ..
        })
    ));
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn timers_fire_in_deadline_order_and_never_early() {
    struct Timers;
    impl Protocol for Timers {
        type Message = ();
        fn connection_made(&mut self, tx: &mut Transport<'_>) {
            tx.call_later(Duration::from_millis(30));
            tx.call_later(Duration::from_millis(10));
            let cancelled = tx.call_later(Duration::from_millis(20));
            tx.cancel_timer(cancelled);
        }
        fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
        fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
            assert!(tx.now() >= timer.deadline());
            let _ = tx.write_slice(&[timer.deadline().as_nanos() as u8]);
        }
    }
    let mut c = Connection::new(Timers, Config::default());
    c.handle_connected(t(0), addr(), addr());
    assert_eq!(c.next_timeout(), Some(t(10)));
    c.handle_timeout(t(9));
    assert!(!c.wants_write());
    c.handle_timeout(t(100));
    let fired: Vec<u8> = c.poll_write().flatten().copied().collect();
    assert_eq!(fired, [t(10).as_nanos() as u8, t(30).as_nanos() as u8]);
    assert_eq!(c.next_timeout(), None);
}

#[test]
fn a_timer_rearmed_for_now_waits_for_the_next_wakeup() {
    struct Rearm(u32);
    impl Protocol for Rearm {
        type Message = ();
        fn connection_made(&mut self, tx: &mut Transport<'_>) {
            tx.call_later(Duration::ZERO);
        }
        fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
        fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_>) {
            self.0 += 1;
            tx.call_later(Duration::ZERO);
        }
    }
    let mut c = Connection::new(Rearm(0), Config::default());
    c.handle_connected(t(0), addr(), addr());
    c.handle_timeout(t(0));
    assert_eq!(c.protocol().0, 1);
    c.handle_timeout(t(0));
    assert_eq!(c.protocol().0, 2);
}

#[test]
fn half_close_shuts_down_writing_after_the_queue_drains_and_keeps_reading() {
    struct HalfCloser;
    impl Protocol for HalfCloser {
        type Message = ();
        fn connection_made(&mut self, tx: &mut Transport<'_>) {
            let _ = tx.write_slice(b"request");
            tx.shutdown_write();
        }
        fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
            data.clear();
        }
        fn read_closed(&mut self, _: &mut Transport<'_>) {}
    }
    let mut c = Connection::new(HalfCloser, Config::default());
    c.handle_connected(t(0), addr(), addr());
    assert_eq!(c.poll_action(), None);
    c.handle_written(t(1), 7);
    assert_eq!(c.poll_action(), Some(Action::ShutdownWrite));
    assert!(c.wants_read());
    c.handle_data(t(2), b"answer");
    c.handle_read_closed(t(3));
    assert_eq!(
        c.poll_action(),
        Some(Action::Close),
        "both halves closed: done"
    );
    assert_eq!(c.reason(), Some(&Reason::Done));
}

#[test]
fn resume_reading_redelivers_buffered_bytes_without_new_input() {
    /// Takes one byte per call and pauses; resumes on message.
    struct OneAtATime(Vec<u8>);
    impl Protocol for OneAtATime {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
            if !data.is_empty() {
                self.0.push(data.split_to(1)[0]);
                tx.pause_reading();
            }
        }
        fn message(&mut self, _: (), tx: &mut Transport<'_>) {
            tx.resume_reading();
        }
    }
    let mut c = Connection::new(OneAtATime(Vec::new()), Config::default());
    c.handle_connected(t(0), addr(), addr());
    c.handle_data(t(1), b"abc");
    assert_eq!(c.protocol().0, b"a");
    c.handle_message(t(2), ());
    assert_eq!(c.protocol().0, b"ab");
    c.handle_message(t(3), ());
    assert_eq!(c.protocol().0, b"abc");
}

// ----- proptest: lifecycle invariants over arbitrary event sequences --------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// The fuzz target's check (see `fuzzing`), driven by proptest so that every `cargo test`
    /// explores fresh sequences too.
    #[cfg(feature = "fuzz")]
    #[test]
    fn lifecycle_invariants_hold_for_any_event_sequence(
        data in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        if let Err(violation) = super::fuzzing::check_connection(&data) {
            prop_assert!(false, "{}", violation);
        }
    }

    #[test]
    fn any_chunking_gives_the_same_echo(
        data in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(1usize..300, 1..20),
    ) {
        let mut c = open(Scripted { echo: true, ..Default::default() }, Config::default());
        let mut out = Vec::new();
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            c.handle_data(t(1), &rest[..n]);
            rest = &rest[n..];
            out.extend(drain_writes(&mut c, t(1)));
            i += 1;
        }
        prop_assert_eq!(out, data);
    }
}

// ----- a close asked from outside --------------------------------------------------------

/// Says goodbye when a close is asked from outside; `stubborn` does not close itself;
/// `defers` puts the close off until the peer says `quit`.
#[derive(Default)]
struct LastWords {
    asked: u32,
    stubborn: bool,
    defers: bool,
    deferred: Option<bool>,
}

impl Protocol for LastWords {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        if &data[..] == b"quit" {
            tx.lose_connection();
        }
        data.clear();
    }
    fn close_requested(&mut self, tx: &mut Transport<'_>) {
        self.asked += 1;
        let _ = tx.write_slice(b"going down\n");
        if self.defers {
            self.deferred = Some(tx.defer_close());
            return;
        }
        if !self.stubborn {
            tx.lose_connection();
        }
    }
}

fn last_words(stubborn: bool) -> Connection<LastWords> {
    let mut c = Connection::new(
        LastWords {
            stubborn,
            ..LastWords::default()
        },
        Config {
            close_linger: None,
            ..Config::default()
        },
    );
    c.handle_connected(Instant::ZERO, addr(), addr());
    c
}

fn flush(c: &mut Connection<LastWords>, now: Instant) -> Vec<u8> {
    let out: Vec<u8> = c.poll_write().flatten().copied().collect();
    c.handle_written(now, out.len());
    out
}

#[test]
fn a_close_from_outside_lets_the_protocol_say_its_last_words_first() {
    for control in [true, false] {
        let mut c = last_words(false);
        if control {
            c.handle_control(t(1), Control::Close);
        } else {
            c.close(t(1));
        }
        assert_eq!(c.protocol().asked, 1);
        assert_eq!(flush(&mut c, t(2)), b"going down\n");
        assert_eq!(c.reason(), Some(&Reason::Done));
        assert!(c.is_closed());
    }
}

#[test]
fn a_protocol_cannot_refuse_a_close_from_outside() {
    let mut c = last_words(true);
    c.close(t(1));
    assert_eq!(flush(&mut c, t(2)), b"going down\n");
    assert_eq!(c.reason(), Some(&Reason::Done), "closed all the same");
}

#[test]
fn a_protocol_already_closing_is_not_asked_again() {
    let mut c = last_words(false);
    assert!(!c.is_closing());
    c.handle_data(t(1), b"quit");
    assert!(c.is_closing(), "the protocol's own close counts");
    c.close(t(2));
    c.close(t(3));
    assert_eq!(c.protocol().asked, 0);
    assert!(flush(&mut c, t(4)).is_empty());
    assert_eq!(c.reason(), Some(&Reason::Done));
}

fn deferring() -> Connection<LastWords> {
    let mut c = Connection::new(
        LastWords {
            defers: true,
            ..LastWords::default()
        },
        Config {
            close_linger: None,
            close_timeout: Some(Duration::from_millis(100)),
            ..Config::default()
        },
    );
    c.handle_connected(Instant::ZERO, addr(), addr());
    c
}

#[test]
fn a_deferred_close_keeps_reading_until_the_protocol_closes_itself() {
    let mut c = deferring();
    c.close(t(10));
    assert_eq!(c.protocol().deferred, Some(true));
    assert!(!c.is_closing(), "still open");
    assert!(c.wants_read(), "still reading");
    assert_eq!(c.next_timeout(), Some(t(110)), "the close deadline stands");
    // Asking again changes nothing.
    c.close(t(20));
    assert_eq!(c.protocol().asked, 1);
    c.handle_data(t(30), b"quit");
    assert!(c.is_closing());
    assert_eq!(
        c.next_timeout(),
        Some(t(110)),
        "the protocol's own close keeps the deadline it was given, not a fresh one"
    );
    assert_eq!(flush(&mut c, t(40)), b"going down\n");
    assert_eq!(c.reason(), Some(&Reason::Done));
    assert!(c.is_closed());
}

#[test]
fn a_deferred_close_that_never_comes_is_aborted_at_the_deadline() {
    let mut c = deferring();
    c.close(t(10));
    c.handle_timeout(t(109));
    assert!(!c.is_ended());
    c.handle_timeout(t(110));
    assert_eq!(c.reason(), Some(&Reason::TimedOut(Timeout::Close)));
    assert_eq!(c.poll_action(), Some(Action::Abort));
}

#[test]
fn a_close_can_be_deferred_only_from_close_requested() {
    struct Eager(Option<bool>);
    impl Protocol for Eager {
        type Message = ();
        fn connection_made(&mut self, tx: &mut Transport<'_>) {
            self.0 = Some(tx.defer_close());
        }
        fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    }
    let mut c = Connection::new(Eager(None), Config::default());
    c.handle_connected(t(0), addr(), addr());
    assert_eq!(c.protocol().0, Some(false));
    assert_eq!(c.next_timeout(), None, "no deadline came of it");
}
