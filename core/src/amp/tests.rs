//! AMP scripts with explicit bytes: golden byte strings are Twisted 24's own output (captured
//! with `StringTransport` from `twisted.protocols.amp`), so every check here is a check
//! against Twisted.

extern crate std;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use crate::amp::*;
use crate::framing::{Decoder, Encoder, FrameError};
use crate::stream::{Config as StreamConfig, Connection};
use crate::{Instant, Limit, Reason};

/// `callRemote(Sum, a=13, b=81)` then `callRemote(Divide, numerator=1234, denominator=0)`.
const TWISTED_CALLS: &[u8] = b"\x00\x04_ask\x00\x011\x00\x08_command\x00\x03Sum\x00\x01a\x00\x0213\x00\x01b\x00\x0281\x00\x00\x00\x04_ask\x00\x012\x00\x08_command\x00\x06Divide\x00\x0bdenominator\x00\x010\x00\tnumerator\x00\x041234\x00\x00";

/// Twisted's `ampserver.py` answering them.
const TWISTED_ANSWERS: &[u8] = b"\x00\x07_answer\x00\x011\x00\x05total\x00\x0294\x00\x00\x00\x06_error\x00\x012\x00\x0b_error_code\x00\rZERO_DIVISION\x00\x12_error_description\x00\x10division by zero\x00\x00";

/// The answer boxes of `TWISTED_ANSWERS`, one by one.
const SUM_ANSWER: &[u8] = b"\x00\x07_answer\x00\x011\x00\x05total\x00\x0294\x00\x00";
const DIVIDE_ERROR: &[u8] = b"\x00\x06_error\x00\x012\x00\x0b_error_code\x00\rZERO_DIVISION\x00\x12_error_description\x00\x10division by zero\x00\x00";

fields! {
    /// `Sum`'s arguments.
    struct SumArgs { a: i64, b: i64 }
}
fields! {
    /// `Sum`'s response.
    #[derive(PartialEq)]
    struct Total { total: i64 }
}
/// Twisted's `Sum`.
struct Sum;
impl Command for Sum {
    const NAME: &'static str = "Sum";
    type Arguments = SumArgs;
    type Response = Total;
    type Error = NoError;
}

fields! {
    /// `Divide`'s arguments.
    struct DivideArgs { numerator: i64, denominator: i64 }
}
fields! {
    /// `Divide`'s response.
    struct Quotient { result: f64 }
}
errors! {
    /// `Divide`'s declared errors.
    enum DivideError {
        ZeroDivision = "ZERO_DIVISION" => "division by zero",
        Overflow = "OVERFLOW" => "numbers too large" [fatal],
    }
}
/// Twisted's `Divide`.
struct Divide;
impl Command for Divide {
    const NAME: &'static str = "Divide";
    type Arguments = DivideArgs;
    type Response = Quotient;
    type Error = DivideError;
}

fields! {
    /// A command carrying one value of any length.
    struct Blob { data: Bytes }
}
/// Echoes a blob.
struct Echo;
impl Command for Echo {
    const NAME: &'static str = "Echo";
    type Arguments = Blob;
    type Response = Blob;
    type Error = NoError;
}

/// Sends a blob without asking for an answer.
struct Note;
impl Command for Note {
    const NAME: &'static str = "Note";
    const REQUIRES_ANSWER: bool = false;
    type Arguments = Blob;
    type Response = ();
    type Error = NoError;
}

/// `Sum`, answered later ([`Responders::add_deferred`]).
struct Later;
impl Command for Later {
    const NAME: &'static str = "Later";
    type Arguments = SumArgs;
    type Response = Total;
    type Error = DivideError;
}

/// The message that answers every deferred `Later` call, last received first.
const ANSWER_LATER: u32 = u32::MAX - 1;
/// The same, after closing the connection first.
const CLOSE_THEN_ANSWER: u32 = u32::MAX - 2;

type Log = Rc<RefCell<Vec<String>>>;

/// Twisted's `ampserver.py` Math, plus Echo and Note; also a caller whose outcomes are logged.
struct Math {
    log: Log,
    notes: usize,
    later: Vec<(SumArgs, Deferred<Later>)>,
}

impl Math {
    fn sum(&mut self, args: SumArgs, _: &mut AmpTransport<'_, '_, Self>) -> Result<Total, NoError> {
        Ok(Total {
            total: args.a + args.b,
        })
    }
    fn divide(
        &mut self,
        args: DivideArgs,
        _: &mut AmpTransport<'_, '_, Self>,
    ) -> Result<Quotient, DivideError> {
        match args.denominator {
            0 => Err(DivideError::ZeroDivision),
            -1 => Err(DivideError::Overflow),
            d => Ok(Quotient {
                result: args.numerator as f64 / d as f64,
            }),
        }
    }
    fn echo(&mut self, args: Blob, _: &mut AmpTransport<'_, '_, Self>) -> Result<Blob, NoError> {
        // A response one byte over the limit cannot be written: Twisted's BadLocalReturn.
        if args.data == "grow" {
            return Ok(Blob {
                data: Bytes::from(vec![b'x'; 65_536]),
            });
        }
        Ok(args)
    }
    fn later(
        &mut self,
        args: SumArgs,
        deferred: Deferred<Later>,
        _: &mut AmpTransport<'_, '_, Self>,
    ) {
        self.later.push((args, deferred));
    }
    fn note(&mut self, _: Blob, _: &mut AmpTransport<'_, '_, Self>) -> Result<(), NoError> {
        self.notes += 1;
        Ok(())
    }
    fn logged<T: core::fmt::Debug, E: core::fmt::Display>(
        &mut self,
        label: &str,
        outcome: Result<T, CallError<E>>,
    ) {
        let line = match outcome {
            Ok(response) => alloc::format!("{label}: {response:?}"),
            Err(error) => alloc::format!("{label}: error {error}"),
        };
        self.log.borrow_mut().push(line);
    }
}

impl AmpHandler for Math {
    type Message = u32;
    fn responders(r: &mut Responders<Self>) {
        r.add::<Sum>(Self::sum)
            .add::<Divide>(Self::divide)
            .add::<Echo>(Self::echo)
            .add::<Note>(Self::note)
            .add_deferred::<Later>(Self::later);
    }
    /// A message from elsewhere in the program: call Sum(n, n) on this connection's peer.
    fn message(&mut self, n: u32, amp: &mut AmpTransport<'_, '_, Self>) {
        if n == u32::MAX {
            return run_queued(amp);
        }
        if n == ANSWER_LATER || n == CLOSE_THEN_ANSWER {
            if n == CLOSE_THEN_ANSWER {
                amp.lose_connection();
            }
            while let Some((args, deferred)) = self.later.pop() {
                let result = match args.b {
                    0 => Err(DivideError::ZeroDivision),
                    b => Ok(Total { total: args.a + b }),
                };
                let tag = deferred.tag().cloned();
                let sent = amp.answer(deferred, result);
                self.log
                    .borrow_mut()
                    .push(alloc::format!("answered {tag:?}: {sent:?}"));
            }
            return;
        }
        let args = SumArgs {
            a: i64::from(n),
            b: i64::from(n),
        };
        let _ = amp.call::<Sum>(args, move |me, outcome, _| {
            me.logged(&alloc::format!("message {n}"), outcome)
        });
    }
}

/// One AMP connection driven by hand, with explicit time.
struct Peer {
    conn: Connection<Amp<Math>>,
    now: Instant,
    log: Log,
}

fn addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 1))
}

impl Peer {
    fn new() -> Self {
        Peer::with_config(Config::default())
    }

    fn with_config(config: Config) -> Self {
        let log = Log::default();
        let math = Math {
            log: log.clone(),
            notes: 0,
            later: Vec::new(),
        };
        let mut conn = Connection::new(Amp::with_config(math, config), StreamConfig::default());
        conn.handle_connected(Instant::ZERO, addr(), addr());
        Peer {
            conn,
            now: Instant::ZERO,
            log,
        }
    }

    fn receive(&mut self, data: &[u8]) {
        self.conn.handle_data(self.now, data);
    }

    fn take_written(&mut self) -> Vec<u8> {
        let out: Vec<u8> = self.conn.poll_write().flatten().copied().collect();
        self.conn.handle_written(self.now, out.len());
        out
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
        self.conn.handle_timeout(self.now);
    }

    /// Runs `f` on the handler with a live transport, as a message would.
    fn call(&mut self, f: impl FnOnce(&mut AmpTransport<'_, '_, Math>) + 'static) {
        CALLS.with(|calls| calls.borrow_mut().push(Box::new(f)));
        self.conn.handle_message(self.now, u32::MAX);
    }

    fn log(&self) -> Vec<String> {
        self.log.borrow().clone()
    }

    fn handler(&self) -> &Math {
        self.conn.protocol().handler()
    }
}

type Queued = alloc::boxed::Box<dyn FnOnce(&mut AmpTransport<'_, '_, Math>)>;

std::thread_local! {
    /// Work for `Peer::call`, picked up by the message `u32::MAX`.
    static CALLS: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
}

/// Math with a hook: the message `u32::MAX` runs the queued closures (tests' calls).
fn run_queued(amp: &mut AmpTransport<'_, '_, Math>) {
    let queued: Vec<Queued> = CALLS.with(|calls| core::mem::take(&mut *calls.borrow_mut()));
    for f in queued {
        f(amp);
    }
}

fn log_into(
    label: &'static str,
) -> impl Fn(&mut Math, Result<Total, CallError<NoError>>, &mut AmpTransport<'_, '_, Math>) {
    move |me, outcome, _| me.logged(label, outcome)
}

// ---------------------------------------------------------------- the box codec

fn decode_all(codec: &mut BoxCodec, buf: &mut BytesMut) -> Result<Vec<AmpBox>, FrameError> {
    let mut boxes = Vec::new();
    while let Some(pairs) = codec.decode(buf)? {
        boxes.push(AmpBox::parse(pairs).unwrap());
    }
    Ok(boxes)
}

#[test]
fn twisted_call_boxes_decode_into_their_keys_and_values() {
    let mut buf = BytesMut::from(TWISTED_CALLS);
    let boxes = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(boxes.len(), 2);
    assert_eq!(boxes[0].get(b"_command").unwrap(), "Sum");
    assert_eq!(boxes[0].get(b"a").unwrap(), "13");
    assert_eq!(boxes[1].get(b"numerator").unwrap(), "1234");
    assert_eq!(boxes[1].get(b"_ask").unwrap(), "2");
}

#[test]
fn boxes_serialize_with_sorted_keys_byte_for_byte_as_twisted() {
    let mut sum = AmpBox::new();
    for (k, v) in [("b", "81"), ("a", "13"), ("_command", "Sum"), ("_ask", "1")] {
        sum.insert(k, v).unwrap();
    }
    assert_eq!(&sum.to_wire()[..], &TWISTED_CALLS[..sum.to_wire().len()]);
    // Decode then re-serialize: the same bytes.
    let mut buf = BytesMut::from(TWISTED_ANSWERS);
    let mut again = Vec::new();
    for b in decode_all(&mut BoxCodec::new(), &mut buf).unwrap() {
        again.extend_from_slice(&b.to_wire());
    }
    assert_eq!(again, TWISTED_ANSWERS);
}

#[test]
fn values_are_slices_of_the_received_bytes_not_copies() {
    let frame = Bytes::from_static(b"\x00\x01k\x00\x03abc");
    let amp_box = AmpBox::parse(frame.clone()).unwrap();
    let value = amp_box.get(b"k").unwrap();
    assert_eq!(value.as_ptr(), frame[5..].as_ptr());
}

#[test]
fn need_more_leaves_the_buffer_untouched_at_every_split() {
    let mut codec = BoxCodec::new();
    for cut in 0..SUM_ANSWER.len() {
        let mut buf = BytesMut::from(&SUM_ANSWER[..cut]);
        assert_eq!(codec.decode(&mut buf), Ok(None), "cut {cut}");
        assert_eq!(&buf[..], &SUM_ANSWER[..cut]);
        buf.extend_from_slice(&SUM_ANSWER[cut..]);
        assert!(codec.decode(&mut buf).unwrap().is_some(), "cut {cut}");
    }
}

#[test]
fn a_key_over_255_bytes_is_malformed_from_its_length_alone() {
    let mut codec = BoxCodec::new();
    let mut buf = BytesMut::from(&b"\x01\x00"[..]);
    let error = codec.decode(&mut buf).unwrap_err();
    assert!(matches!(error, FrameError::Malformed(_)));
    assert_eq!(
        Reason::from(error),
        Reason::protocol("amp: key longer than 255 bytes")
    );
    // Sticky until reset.
    let mut fine = BytesMut::from(SUM_ANSWER);
    assert_eq!(codec.decode(&mut fine), Err(error));
}

#[test]
fn a_box_over_the_bound_is_refused_before_its_end_arrives() {
    let mut codec = BoxCodec::new().with_max_length(64);
    let mut buf = BytesMut::from(&b"\x00\x01a\x00\xff"[..]);
    assert_eq!(
        codec.decode(&mut buf),
        Err(FrameError::TooLong { max: 64, seen: 262 })
    );
    assert_eq!(
        Reason::from(FrameError::TooLong { max: 64, seen: 262 }),
        Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max: 64,
            seen: 262
        }
    );
}

#[test]
fn a_value_of_exactly_65535_bytes_goes_through_the_codec() {
    let mut amp_box = AmpBox::new();
    amp_box.insert("v", vec![7u8; 65_535]).unwrap();
    assert_eq!(
        amp_box.insert("w", vec![7u8; 65_536]),
        Err(BoxError::ValueTooLong { len: 65_536 })
    );
    let mut buf = BytesMut::from(&amp_box.to_wire()[..]);
    let back = decode_all(&mut BoxCodec::new(), &mut buf).unwrap();
    assert_eq!(back[0].get(b"v").unwrap().len(), 65_535);
}

#[test]
fn the_encoder_adds_the_terminator_and_refuses_what_is_not_pairs() {
    let mut codec = BoxCodec::new();
    let encoded = codec
        .encode(Bytes::from_static(b"\x00\x01a\x00\x011"))
        .unwrap();
    assert_eq!(encoded.to_vec(), b"\x00\x01a\x00\x011\x00\x00");
    for bad in [&b"\x00\x01a"[..], b"\x00\x00", b"\x01\x00"] {
        assert!(
            codec.encode(Bytes::copy_from_slice(bad)).is_err(),
            "{bad:?}"
        );
    }
}

/// Bytes that often form boxes: small lengths, short keys.
fn boxy_bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![
            Just(vec![0u8, 0]),
            (1u8..4).prop_map(|n| vec![0, n]),
            Just(b"ab".to_vec()),
            Just(vec![1u8, 0]),
            any::<u8>().prop_map(|b| vec![b]),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

fn outcome_in_chunks(input: &[u8], sizes: &[usize]) -> (Vec<AmpBox>, Option<FrameError>) {
    let mut codec = BoxCodec::new().with_max_length(48);
    let mut buf = BytesMut::new();
    let mut boxes = Vec::new();
    let mut rest = input;
    let mut sizes = sizes.iter().cycle();
    while !rest.is_empty() {
        let n = (*sizes.next().unwrap_or(&1)).min(rest.len()).max(1);
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        loop {
            let before = buf.clone();
            match codec.decode(&mut buf) {
                Ok(Some(pairs)) => boxes.push(AmpBox::parse(pairs).unwrap()),
                Ok(None) => {
                    assert_eq!(buf, before, "need more must leave the buffer alone");
                    assert!(buf.len() <= 48, "buffered past the bound");
                    break;
                }
                Err(error) => return (boxes, Some(error)),
            }
        }
    }
    (boxes, None)
}

proptest! {
    #[test]
    fn any_chunking_gives_the_same_boxes_and_error(
        input in boxy_bytes(),
        sizes in proptest::collection::vec(1usize..9, 1..6),
    ) {
        let whole = outcome_in_chunks(&input, &[usize::MAX]);
        prop_assert_eq!(outcome_in_chunks(&input, &sizes), whole.clone());
        prop_assert_eq!(outcome_in_chunks(&input, &[1]), whole);
    }

    #[test]
    fn serialized_boxes_decode_to_themselves(
        pairs in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 1..8), proptest::collection::vec(any::<u8>(), 0..20)),
            0..6,
        ),
    ) {
        let mut amp_box = AmpBox::new();
        for (k, v) in pairs {
            amp_box.insert(k, v).unwrap();
        }
        let mut buf = BytesMut::from(&amp_box.to_wire()[..]);
        let back = BoxCodec::new().decode(&mut buf).unwrap().unwrap();
        let back = AmpBox::parse(back).unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(back.serialize(), amp_box.serialize());
    }
}

// ---------------------------------------------------------------- the machine

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
