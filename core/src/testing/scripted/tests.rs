//! Each script step behaves as documented, checked under a `Recorder`.

use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::connector;
use crate::framing::{LengthCodec, LineCodec, NetstringCodec};
use crate::reason::Reason;
use crate::stream::Action;
use crate::testing::{Recorder, Script, ScriptedFactory, ScriptedPeer, Step, StreamNetwork};
use crate::time::Instant;

fn play(script: Script) -> Recorder<ScriptedPeer> {
    Recorder::new(ScriptedPeer::new(script))
}

#[test]
fn sends_run_at_once_up_to_the_first_wait() {
    let mut rec = play(Script::new().send("a").send(b"b").wait_bytes(1).send("c"));
    assert_eq!(rec.take_written(), "ab");
    assert_eq!(rec.protocol().transcript().steps_done, 2);
    rec.receive(b"x");
    assert_eq!(rec.take_written(), "c");
    assert!(rec.protocol().is_finished());
    assert!(
        !rec.is_ended(),
        "a finished script keeps the connection open"
    );
}

#[test]
fn send_frame_writes_the_encoders_wire_bytes() {
    let script = Script::new()
        .send_frame(&mut LineCodec::new(), "line")
        .send_frame(&mut NetstringCodec::new(), "net")
        .send_frame(&mut LengthCodec::int32(), "len");
    assert_eq!(
        play(script).take_written(),
        &b"line\r\n3:net,\x00\x00\x00\x03len"[..]
    );
}

#[test]
#[should_panic(expected = "refused the payload")]
fn send_frame_panics_on_a_payload_the_encoder_refuses() {
    let _ = Script::new().send_frame(&mut LineCodec::new(), "two\r\nlines");
}

#[test]
fn wait_bytes_consumes_what_it_waited_for() {
    let mut rec = play(
        Script::new()
            .wait_bytes(3)
            .send("1")
            .wait_bytes(2)
            .send("2"),
    );
    rec.receive(b"ab");
    assert_eq!(rec.written(), b"");
    // The third byte ends the first wait; the fourth is one of the second wait's two.
    rec.receive(b"cd");
    assert_eq!(rec.take_written(), "1");
    rec.receive(b"e");
    assert_eq!(rec.take_written(), "2");
}

#[test]
fn wait_for_needs_one_delimiter_per_wait_even_split_across_reads() {
    let mut rec = play(
        Script::new()
            .wait_for("\r\n")
            .wait_for("\r\n")
            .send("two lines"),
    );
    rec.receive(b"first\r\nsecond\r");
    assert_eq!(rec.written(), b"");
    assert_eq!(rec.protocol().transcript().steps_done, 1);
    rec.receive(b"\n");
    assert_eq!(rec.take_written(), "two lines");
}

#[test]
fn sleep_waits_exactly_its_duration() {
    let mut rec = play(Script::new().sleep(Duration::from_secs(5)).send("late"));
    rec.advance(Duration::from_millis(4_999));
    assert_eq!(rec.written(), b"");
    rec.advance(Duration::from_millis(1));
    assert_eq!(rec.take_written(), "late");
}

#[test]
fn wait_eof_then_answer_and_close() {
    let mut rec = play(Script::new().wait_eof().send("bye").close());
    rec.receive(b"data");
    assert_eq!(rec.written(), b"");
    rec.advance(Duration::from_secs(1));
    rec.receive_eof();
    assert_eq!(rec.take_written(), "bye");
    assert!(rec.is_ended());
    let seen = rec.protocol().transcript();
    assert_eq!(seen.eof_at, Some(Instant::from_secs(1)));
    assert_eq!(seen.reason, Some(Reason::Done));
    assert!(seen.is_finished());
}

#[test]
fn shutdown_write_half_closes_and_keeps_reading() {
    let mut rec = play(Script::new().send("request").shutdown_write());
    assert_eq!(rec.take_written(), "request");
    assert_eq!(rec.actions(), [Action::ShutdownWrite]);
    assert!(!rec.is_ended());
    rec.receive(b"answer");
    assert_eq!(rec.protocol().received(), b"answer");
    rec.receive_eof();
    assert!(rec.is_closed());
    assert_eq!(rec.protocol().transcript().reason, Some(Reason::Done));
}

#[test]
fn close_flushes_and_ends_cleanly_and_later_steps_never_run() {
    let mut rec = play(Script::new().send("last words").close().send("never"));
    assert_eq!(rec.take_written(), "last words");
    assert!(rec.is_ended());
    let seen = rec.protocol().transcript();
    assert_eq!(seen.reason, Some(Reason::Done));
    assert_eq!((seen.steps_done, seen.steps_total), (2, 3));
}

#[test]
fn abort_discards_and_ends_as_aborted() {
    let mut rec = play(
        Script::new()
            .wait_bytes(1)
            .send("dropped")
            .abort()
            .send("never"),
    );
    rec.receive(b"!");
    // "dropped" was queued, then the abort discarded the queue before the peer took it.
    assert_eq!(rec.written(), b"");
    assert_eq!(rec.actions(), [Action::Abort]);
    let seen = rec.protocol().transcript();
    assert_eq!(seen.reason, Some(Reason::Aborted));
    assert_eq!(seen.steps_done, 3);
    assert!(!seen.is_finished());
}

#[test]
fn eof_while_waiting_for_bytes_closes_without_finishing() {
    let mut rec = play(Script::new().wait_bytes(10).send("never"));
    rec.receive(b"abc");
    rec.receive_eof();
    assert!(rec.is_ended());
    assert_eq!(rec.written(), b"");
    let seen = rec.protocol().transcript();
    assert_eq!(seen.steps_done, 0);
    assert_eq!(seen.reason, Some(Reason::Done));
}

#[test]
fn every_read_is_recorded_with_its_time() {
    let mut rec = play(Script::new());
    rec.receive(b"one");
    rec.advance(Duration::from_millis(250));
    rec.receive(b"two");
    let seen = rec.protocol().transcript();
    assert_eq!(
        seen.reads,
        [
            (Instant::ZERO, Bytes::from("one")),
            (Instant::from_millis(250), Bytes::from("two"))
        ]
    );
    assert_eq!(seen.received, b"onetwo");
    assert_eq!(seen.connected_at, Some(Instant::ZERO));
    assert!(seen.peer.is_some());
}

#[test]
fn messages_through_the_handle_are_written() {
    let mut rec = play(Script::new());
    rec.post(Bytes::from("out of turn")).unwrap();
    assert_eq!(rec.take_written(), "out of turn");
}

#[test]
fn writes_after_a_half_close_are_counted_as_refused() {
    let rec = play(Script::new().shutdown_write().send("too late"));
    assert_eq!(rec.written(), b"");
    assert_eq!(rec.protocol().transcript().refused_writes, 1);
}

#[test]
fn the_steps_are_kept_in_order() {
    let script = Script::new()
        .send("a")
        .wait_bytes(1)
        .wait_for("\n")
        .wait_eof()
        .sleep(Duration::from_secs(1))
        .shutdown_write()
        .close()
        .abort()
        .then(Step::Send(Bytes::from("b")));
    assert_eq!(
        script.steps(),
        [
            Step::Send(Bytes::from("a")),
            Step::WaitBytes(1),
            Step::WaitFor(Bytes::from("\n")),
            Step::WaitEof,
            Step::Sleep(Duration::from_secs(1)),
            Step::ShutdownWrite,
            Step::Close,
            Step::Abort,
            Step::Send(Bytes::from("b")),
        ]
    );
}

#[test]
fn the_factory_as_a_client_records_failures_and_does_not_retry() {
    let mut net = StreamNetwork::default();
    let factory = ScriptedFactory::new(Script::new());
    let nowhere = SocketAddr::from(([10, 0, 0, 9], 9));
    let client = net.connect(nowhere, factory.clone(), connector::Config::default());
    net.run_until_idle();
    assert_eq!(factory.failures(), [Reason::Refused]);
    assert!(net.is_client_finished(client));
    assert!(factory.transcripts().is_empty());
}

#[test]
fn the_factory_as_a_server_collects_a_transcript_per_connection() {
    let mut net = StreamNetwork::default();
    let echoer = ScriptedFactory::new(Script::new().wait_for("\n").send("ok\n").close());
    let addr = SocketAddr::from(([10, 0, 0, 1], 80));
    net.listen(addr, echoer.clone(), Default::default());
    for word in ["a\n", "b\n"] {
        let peer = ScriptedPeer::new(Script::new().send(word).wait_eof());
        net.dial(addr, peer, Default::default()).unwrap();
    }
    net.run_until_idle();
    let mut heard: alloc::vec::Vec<_> = echoer
        .transcripts()
        .into_iter()
        .map(|t| (t.received, t.reason))
        .collect();
    heard.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        heard,
        [
            (b"a\n".to_vec(), Some(Reason::Done)),
            (b"b\n".to_vec(), Some(Reason::Done))
        ]
    );
}
