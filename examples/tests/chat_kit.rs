//! The chat server under the test kit, as a user would test their own server: proptest
//! properties over schedules of joins, lines, stalls and departures, and the replay of the
//! chat fuzz target's corpus (fuzz/corpus/chat, found by `fuzz/run.sh chat`).

use std::path::PathBuf;

use loomwork::testing::{properties, Op, StreamCheck};
use loomwork_examples::chat::{connection_config, ChatConfig, ChatFactory, ChatMessage};
use proptest::prelude::*;

/// The chat server as the fuzz target checks it (fuzz/fuzz_targets/chat.rs).
fn chat() -> StreamCheck<ChatFactory> {
    StreamCheck::server(|| ChatFactory::new(ChatConfig::default())).config(connection_config())
}

/// What chatters type: names (some taken twice), lines, blank lines, `\r\n` endings.
fn typed() -> BoxedStrategy<Vec<u8>> {
    let line = prop_oneof![
        Just(b"alice\n".to_vec()),
        Just(b"bob\r\n".to_vec()),
        Just(b"\n".to_vec()),
        "[a-z ]{0,16}\n".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(line, 1..6)
        .prop_map(|lines| lines.concat())
        .boxed()
}

#[test]
fn every_chatter_ends_with_one_reason_under_any_schedule() {
    chat()
        .cases(128)
        .ends_with_one_reason(properties::schedule::<ChatMessage>(typed()))
        .unwrap();
}

#[test]
fn a_chatters_replies_do_not_depend_on_how_its_lines_are_split() {
    chat()
        .cases(128)
        .same_replies_however_split(typed())
        .unwrap();
}

#[test]
fn a_chatter_that_never_reads_does_not_grow_the_server() {
    chat()
        .cases(64)
        .bounded_while_peer_never_reads(typed())
        .unwrap();
}

/// Two chatters: what one says reaches the other, through handles, in virtual time.
#[test]
fn a_line_said_reaches_the_other_chatter() {
    let send = |conn, data: &[u8]| Op::Send {
        conn,
        data: data.to_vec(),
    };
    let outcome = chat()
        .run([
            Op::Connect,
            send(0, b"alice\n"),
            send(1, b"bob\n"),
            send(0, b"hello bob\n"),
        ])
        .unwrap();
    let bob = String::from_utf8_lossy(&outcome.connections[1].written);
    assert!(
        bob.ends_with("Welcome, bob!\r\nalice: hello bob\r\n"),
        "{bob}"
    );
}

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/chat")
}

#[test]
fn the_chat_fuzz_corpus_replays_clean() {
    let check = chat();
    let mut count = 0;
    for entry in std::fs::read_dir(corpus()).expect("fuzz/corpus/chat") {
        let path = entry.unwrap().path();
        count += 1;
        if let Err(violation) = check.fuzz_checked(&std::fs::read(&path).unwrap()) {
            panic!("{}: {violation}", path.display());
        }
    }
    assert!(count > 0, "the chat corpus is empty");
}

/// Writes the hand-made seeds of the chat corpus from schedules (run once with
/// `cargo test -p loomwork-examples --test chat_kit -- --ignored`; the fuzzer's finds sit
/// beside them).
#[test]
#[ignore = "writes fuzz/corpus/chat/seed-*"]
fn write_chat_seeds() {
    let check = chat();
    let send = |conn, data: &[u8]| Op::Send {
        conn,
        data: data.to_vec(),
    };
    let seeds: [(&str, Vec<Op<ChatMessage>>); 4] = [
        (
            "two-chatters",
            vec![
                Op::Connect,
                send(0, b"alice\n"),
                send(1, b"bob\n"),
                send(0, b"hi\n"),
                send(1, b"hello\r\n"),
            ],
        ),
        (
            "name-taken",
            vec![
                Op::Connect,
                send(0, b"alice\n"),
                send(1, b"alice\n"),
                send(1, b"bob\n"),
            ],
        ),
        (
            "stalled-reader",
            vec![
                Op::Connect,
                send(0, b"alice\n"),
                send(1, b"bob\n"),
                Op::Reading { conn: 1, on: false },
                send(0, &b"spam spam spam\n".repeat(200)),
                Op::Advance(std::time::Duration::from_secs(5)),
                Op::Reading { conn: 1, on: true },
            ],
        ),
        (
            "leave-mid-broadcast",
            vec![
                Op::Connect,
                Op::Connect,
                send(0, b"a\n"),
                send(1, b"b\n"),
                send(2, b"c\n"),
                send(0, b"one\ntwo\n"),
                Op::Reset { conn: 1 },
                Op::SendEof { conn: 2 },
                send(0, b"three\n"),
            ],
        ),
    ];
    std::fs::create_dir_all(corpus()).unwrap();
    for (name, ops) in seeds {
        check.run(ops.clone()).unwrap();
        let bytes = check.encode_schedule(&ops[..]);
        assert_eq!(check.decode_schedule(&bytes), ops);
        std::fs::write(corpus().join(format!("seed-{name}")), bytes).unwrap();
    }
}
