//! The AMP machine against Twisted's bytes: answers, errors, calls, timeouts, the end.

use alloc::vec;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

#[test]
fn the_server_answers_twisted_calls_with_twisted_bytes() {
    let mut server = Peer::new();
    server.receive(TWISTED_CALLS);
    assert_eq!(server.take_written(), TWISTED_ANSWERS);
    assert!(!server.conn.is_closing());
}

#[test]
fn the_client_sends_twisted_bytes_and_gets_answers_in_any_order() {
    let mut client = Peer::new();
    CALLS.with(|calls| {
        calls.borrow_mut().push(Box::new(|amp| {
            amp.call::<Sum>(SumArgs { a: 13, b: 81 }, log_into("sum"))
                .unwrap();
            amp.call::<Divide>(
                DivideArgs {
                    numerator: 1234,
                    denominator: 0,
                },
                |me, outcome, _| me.logged("divide", outcome),
            )
            .unwrap();
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    assert_eq!(client.take_written(), TWISTED_CALLS);
    // The error first, then the answer: each goes to its own caller.
    client.receive(DIVIDE_ERROR);
    client.receive(SUM_ANSWER);
    assert_eq!(
        client.log(),
        ["divide: error division by zero", "sum: Total { total: 94 }"]
    );
    assert_eq!(client.conn.protocol().outstanding(), 0);
}

#[test]
fn an_unknown_command_is_answered_unhandled_as_twisted_words_it() {
    let mut server = Peer::new();
    let mut call = AmpBox::new();
    call.insert("_command", "Nope").unwrap();
    call.insert("_ask", "9").unwrap();
    server.receive(&call.to_wire());
    let mut expected = AmpBox::new();
    expected.insert("_error", "9").unwrap();
    expected.insert("_error_code", "UNHANDLED").unwrap();
    expected
        .insert("_error_description", "Unhandled Command: b'Nope'")
        .unwrap();
    assert_eq!(server.take_written(), expected.to_wire());
    assert!(!server.conn.is_closing(), "UNHANDLED is not fatal");
}

#[test]
fn bad_arguments_are_answered_unknown_and_end_the_connection() {
    let mut server = Peer::new();
    let mut call = AmpBox::new();
    for (k, v) in [("_command", "Sum"), ("_ask", "1"), ("a", "x"), ("b", "1")] {
        call.insert(k, v).unwrap();
    }
    server.receive(&call.to_wire());
    let written = server.take_written();
    let mut buf = BytesMut::from(&written[..]);
    let answer = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert_eq!(answer[0].get(b"_error_code").unwrap(), "UNKNOWN");
    assert_eq!(
        answer[0].get(b"_error_description").unwrap(),
        "Unknown Error"
    );
    assert!(server.conn.is_ended());
    assert_eq!(server.conn.reason(), Some(&Reason::Done));
}

#[test]
fn a_response_too_long_to_write_is_answered_unknown() {
    let mut server = Peer::new();
    let mut call = AmpBox::new();
    for (k, v) in [("_command", "Echo"), ("_ask", "1"), ("data", "grow")] {
        call.insert(k, v).unwrap();
    }
    server.receive(&call.to_wire());
    let written = server.take_written();
    let mut buf = BytesMut::from(&written[..]);
    let answer = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert_eq!(answer[0].get(b"_error_code").unwrap(), "UNKNOWN");
}

#[test]
fn a_fatal_declared_error_is_sent_then_the_connection_closes() {
    let mut server = Peer::new();
    let mut call = AmpBox::new();
    for (k, v) in [
        ("_command", "Divide"),
        ("_ask", "1"),
        ("numerator", "1"),
        ("denominator", "-1"),
    ] {
        call.insert(k, v).unwrap();
    }
    server.receive(&call.to_wire());
    let written = server.take_written();
    assert!(written.windows(8).any(|w| w == b"OVERFLOW"));
    assert!(server.conn.is_ended());
}

#[test]
fn a_command_without_ask_runs_and_is_not_answered() {
    let mut server = Peer::new();
    let mut note = AmpBox::new();
    note.insert("_command", "Note").unwrap();
    note.insert("data", "hi").unwrap();
    server.receive(&note.to_wire());
    assert_eq!(server.handler().notes, 1);
    assert!(server.take_written().is_empty());
    // The sending side: no `_ask`, but the tag counter moves on as Twisted's does.
    let mut client = Peer::new();
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(|amp| {
            amp.send::<Note>(Blob {
                data: Bytes::from_static(b"hi"),
            })
            .unwrap();
            amp.call::<Sum>(SumArgs { a: 1, b: 2 }, log_into("sum"))
                .unwrap();
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    let written = client.take_written();
    let mut buf = BytesMut::from(&written[..]);
    let sent = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert!(!sent[0].contains(b"_ask"));
    assert_eq!(sent[1].get(b"_ask").unwrap(), "2");
}

#[test]
fn a_thousand_pipelined_calls_answered_backwards_reach_their_callers_once() {
    let mut client = Peer::new();
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(|amp| {
            for i in 0..1000 {
                amp.call::<Sum>(SumArgs { a: i, b: 1 }, move |me, outcome, _| {
                    let total = outcome.unwrap().total;
                    assert_eq!(total, i + 1, "answer routed to the wrong caller");
                    me.log.borrow_mut().push(alloc::format!("{i}"));
                })
                .unwrap();
            }
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    let calls = client.take_written();
    // A real server answers them; reverse its answers box by box.
    let mut server = Peer::new();
    server.receive(&calls);
    let answers = server.take_written();
    let mut buf = BytesMut::from(&answers[..]);
    let boxes = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert_eq!(boxes.len(), 1000);
    for b in boxes.iter().rev() {
        client.receive(&b.to_wire());
    }
    let log = client.log();
    assert_eq!(log.len(), 1000);
    assert_eq!(log[0], "999");
    assert_eq!(client.conn.protocol().outstanding(), 0);
}

#[test]
fn calls_past_the_outstanding_bound_are_refused_with_nothing_sent() {
    let mut client = Peer::with_config(Config::default().with_max_outstanding(2));
    let refused = Rc::new(RefCell::new(None));
    let seen = refused.clone();
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(move |amp| {
            for i in 0..2 {
                amp.call::<Sum>(SumArgs { a: i, b: 0 }, log_into("sum"))
                    .unwrap();
            }
            *seen.borrow_mut() = Some(
                amp.call::<Sum>(SumArgs { a: 9, b: 0 }, log_into("sum"))
                    .unwrap_err(),
            );
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    assert_eq!(
        *refused.borrow(),
        Some(CallRefused::TooManyCalls { max: 2 })
    );
    let written = client.take_written();
    let mut buf = BytesMut::from(&written[..]);
    assert_eq!(decode_all(&mut BoxCodec::new(), &mut buf).unwrap().len(), 2);
}

#[test]
fn an_argument_over_64k_is_refused_before_anything_is_sent() {
    let mut client = Peer::new();
    let refused = Rc::new(RefCell::new(None));
    let seen = refused.clone();
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(move |amp| {
            let data = Bytes::from(vec![0u8; 65_536]);
            *seen.borrow_mut() = Some(amp.call::<Echo>(Blob { data }, |_, _, _| {}).unwrap_err());
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    assert_eq!(
        *refused.borrow(),
        Some(CallRefused::Argument(ArgumentError::TooLong {
            key: "data",
            len: 65_536
        }))
    );
    assert!(client.take_written().is_empty());
    assert_eq!(client.conn.protocol().outstanding(), 0);
}

#[test]
fn a_call_times_out_once_and_its_late_answer_is_dropped() {
    let mut client = Peer::with_config(Config::default().with_call_timeout(Duration::from_secs(5)));
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(|amp| {
            amp.call::<Sum>(SumArgs { a: 1, b: 2 }, log_into("sum"))
                .unwrap();
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    let calls = client.take_written();
    client.advance(Duration::from_secs(4));
    assert!(client.log().is_empty());
    client.advance(Duration::from_secs(1));
    assert_eq!(client.log(), ["sum: error call timed out"]);
    // The timed-out call keeps its place until its late answer comes.
    assert_eq!(client.conn.protocol().outstanding(), 1);
    let mut server = Peer::new();
    server.receive(&calls);
    client.receive(&server.take_written());
    assert_eq!(client.log().len(), 1, "answered or failed exactly once");
    assert_eq!(client.conn.protocol().outstanding(), 0);
    assert!(!client.conn.is_closing());
}

#[test]
fn when_the_connection_ends_every_pending_call_fails_once_with_its_reason() {
    let mut client = Peer::new();
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(|amp| {
            amp.call::<Sum>(SumArgs { a: 1, b: 2 }, log_into("one"))
                .unwrap();
            amp.call::<Sum>(SumArgs { a: 3, b: 4 }, log_into("two"))
                .unwrap();
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    client.take_written();
    client.conn.handle_error(client.now, Reason::Reset);
    assert_eq!(
        client.log(),
        [
            "one: error connection lost: connection was reset by peer",
            "two: error connection lost: connection was reset by peer",
        ]
    );
    // Nothing fires twice, whatever comes after.
    client.advance(Duration::from_secs(3600));
    assert_eq!(client.log().len(), 2);
}

#[test]
fn a_malformed_box_ends_only_its_connection_after_earlier_answers() {
    let mut server = Peer::new();
    let mut input = TWISTED_CALLS.to_vec();
    input.extend_from_slice(b"\x01\x00");
    input.extend_from_slice(&[b'k'; 256]);
    server.receive(&input);
    assert_eq!(server.take_written(), TWISTED_ANSWERS);
    assert!(server.conn.is_ended());
    assert_eq!(
        server.conn.reason(),
        Some(&Reason::protocol("amp: key longer than 255 bytes"))
    );
    // Another connection is not affected.
    let mut other = Peer::new();
    other.receive(TWISTED_CALLS);
    assert_eq!(other.take_written(), TWISTED_ANSWERS);
}

#[test]
fn an_answer_to_a_call_never_made_ends_the_connection() {
    let mut client = Peer::new();
    client.receive(SUM_ANSWER);
    assert_eq!(
        client.conn.reason(),
        Some(&Reason::protocol(
            "amp: answer to a call that was never made"
        ))
    );
}

#[test]
fn a_box_that_is_neither_command_nor_answer_ends_the_connection() {
    let mut peer = Peer::new();
    peer.receive(b"\x00\x01a\x00\x011\x00\x00");
    assert_eq!(
        peer.conn.reason(),
        Some(&Reason::protocol(
            "amp: box is neither a command nor an answer"
        ))
    );
}

#[test]
fn a_message_from_another_connection_calls_through_this_one() {
    let mut client = Peer::new();
    // What a chat room or a relay does with this connection's handle.
    client.conn.handle_message(client.now, 21);
    let calls = client.take_written();
    let mut server = Peer::new();
    server.receive(&calls);
    client.receive(&server.take_written());
    assert_eq!(client.log(), ["message 21: Total { total: 42 }"]);
}

#[test]
fn every_argument_type_round_trips_through_a_box() {
    fields! {
        /// One field of every type.
        #[derive(PartialEq)]
        struct Everything {
            integer: i64,
            string: Bytes,
            unicode: String,
            boolean: bool,
            float: f64,
            decimal: Decimal,
            datetime: DateTime,
            list: Vec<i64>,
            rows: AmpList<Total>,
            maybe: Option<i64>,
        }
    }
    let value = Everything {
        integer: -7,
        string: Bytes::from_static(b"\x00\xff"),
        unicode: String::from("h\u{e9}llo \u{2603}"),
        boolean: true,
        float: 1e16,
        decimal: Decimal::parse("1.50").unwrap(),
        datetime: DateTime::parse(b"2012-01-23T12:34:56.054321-00:00").unwrap(),
        list: vec![3, 7, 9],
        rows: AmpList(vec![Total { total: 7 }, Total { total: 9 }]),
        maybe: None,
    };
    let mut amp_box = AmpBox::new();
    value.to_box(&mut amp_box).unwrap();
    assert!(!amp_box.contains(b"maybe"), "None is left out");
    assert_eq!(amp_box.get(b"float").unwrap(), "1e+16");
    assert_eq!(
        amp_box.get(b"list").unwrap(),
        &b"\x00\x013\x00\x017\x00\x019"[..]
    );
    assert_eq!(
        amp_box.get(b"rows").unwrap(),
        &b"\x00\x05total\x00\x017\x00\x00\x00\x05total\x00\x019\x00\x00"[..]
    );
    assert_eq!(Everything::from_box(&amp_box).unwrap(), value);
}

// The queue hook: Math's `message` runs queued closures for `u32::MAX`.
#[test]
fn the_test_hook_runs_queued_work() {
    let mut peer = Peer::new();
    let ran = Rc::new(RefCell::new(false));
    let flag = ran.clone();
    peer.call(move |amp| {
        *flag.borrow_mut() = amp.is_open();
    });
    assert!(*ran.borrow());
}

proptest! {
    #[test]
    fn the_server_answers_the_same_bytes_however_calls_are_split(
        cuts in proptest::collection::vec(1usize..40, 1..12),
        extra in 0i64..50,
    ) {
        // Twisted's two calls, an unknown command and a Sum with a chosen argument.
        let mut input = TWISTED_CALLS.to_vec();
        let mut unknown = AmpBox::new();
        unknown.insert("_command", "Nope").unwrap();
        unknown.insert("_ask", "3").unwrap();
        input.extend_from_slice(&unknown.to_wire());
        let mut sum = AmpBox::new();
        for (k, v) in [("_command", "Sum"), ("_ask", "4"), ("b", "1")] {
            sum.insert(k, v).unwrap();
        }
        sum.insert("a", alloc::format!("{extra}")).unwrap();
        input.extend_from_slice(&sum.to_wire());

        let mut whole = Peer::new();
        whole.receive(&input);
        let expected = whole.take_written();

        let mut split = Peer::new();
        let mut rest = &input[..];
        for &cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let n = cut.min(rest.len());
            split.receive(&rest[..n]);
            rest = &rest[n..];
        }
        prop_assert_eq!(split.take_written(), expected);
        prop_assert!(!split.conn.is_closing());
    }
}

#[test]
fn deferred_answers_go_out_when_given_in_any_order_each_once() {
    let mut server = Peer::new();
    let mut calls = Vec::new();
    for (tag, b) in [("1", "1"), ("2", "0"), ("3", "2")] {
        let mut call = AmpBox::new();
        for (k, v) in [("_command", "Later"), ("_ask", tag), ("a", "10"), ("b", b)] {
            call.insert(k, v).unwrap();
        }
        calls.extend_from_slice(&call.to_wire());
    }
    server.receive(&calls);
    assert!(server.take_written().is_empty(), "nothing answered yet");
    assert_eq!(server.handler().later.len(), 3);
    server.conn.handle_message(server.now, ANSWER_LATER);
    let written = server.take_written();
    let mut buf = BytesMut::from(&written[..]);
    let answers = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    // Last received first: 3, then 2 (the declared error), then 1.
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0].get(b"_answer").unwrap(), "3");
    assert_eq!(answers[0].get(b"total").unwrap(), "12");
    assert_eq!(answers[1].get(b"_error").unwrap(), "2");
    assert_eq!(answers[1].get(b"_error_code").unwrap(), "ZERO_DIVISION");
    assert_eq!(answers[2].get(b"_answer").unwrap(), "1");
    assert!(!server.conn.is_closing());
}

#[test]
fn a_deferred_answer_after_the_connection_closed_is_refused() {
    let mut server = Peer::new();
    let mut call = AmpBox::new();
    for (k, v) in [("_command", "Later"), ("_ask", "1"), ("a", "1"), ("b", "1")] {
        call.insert(k, v).unwrap();
    }
    server.receive(&call.to_wire());
    server.conn.handle_message(server.now, CLOSE_THEN_ANSWER);
    assert!(server.take_written().is_empty());
    assert_eq!(server.log(), ["answered Some(b\"1\"): Err(Closed)"]);
    assert!(server.conn.is_ended());
}

#[test]
fn a_call_with_its_own_timeout_fails_at_its_own_deadline() {
    let mut client =
        Peer::with_config(Config::default().with_call_timeout(Duration::from_secs(60)));
    CALLS.with(|c| {
        c.borrow_mut().push(Box::new(|amp| {
            let args = SumArgs { a: 1, b: 2 };
            amp.call_with_timeout::<Sum>(args, Some(Duration::from_secs(2)), log_into("short"))
                .unwrap();
            amp.call::<Sum>(SumArgs { a: 3, b: 4 }, log_into("default"))
                .unwrap();
        }))
    });
    client.conn.handle_message(client.now, u32::MAX);
    client.advance(Duration::from_secs(2));
    assert_eq!(client.log(), ["short: error call timed out"]);
    client.advance(Duration::from_secs(58));
    assert_eq!(
        client.log(),
        [
            "short: error call timed out",
            "default: error call timed out"
        ]
    );
}
