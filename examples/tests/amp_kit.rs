//! The AMP server (`amp_server`'s machine) under the test kit, as a user would test their own
//! AMP service: answers independent of how calls are split, memory bounded while a caller
//! never reads its answers, one reason per connection under any schedule.

use loomwork::amp::{Amp, AmpBox};
use loomwork::testing::{properties, StreamCheck};
use loomwork_examples::amp::Math;
use proptest::prelude::*;

fn server() -> StreamCheck<loomwork::testing::EachConnection<Amp<Math>>> {
    StreamCheck::protocol(|| Amp::new(Math::new(false)))
}

/// One call box as Twisted would write it: Sum, Divide (by zero too), Echo of up to 2 KiB,
/// an unknown command, or a command without `_ask`.
fn call() -> impl Strategy<Value = Vec<u8>> {
    let tag = 1u32..5000;
    prop_oneof![
        (tag.clone(), -99i64..99, -99i64..99).prop_map(|(t, a, b)| boxed(&[
            ("_command", "Sum".into()),
            ("_ask", format!("{t:x}").into_bytes()),
            ("a", a.to_string().into_bytes()),
            ("b", b.to_string().into_bytes()),
        ])),
        (tag.clone(), -99i64..99, -2i64..2).prop_map(|(t, n, d)| boxed(&[
            ("_command", "Divide".into()),
            ("_ask", format!("{t:x}").into_bytes()),
            ("numerator", n.to_string().into_bytes()),
            ("denominator", d.to_string().into_bytes()),
        ])),
        (tag.clone(), 0usize..2048).prop_map(|(t, n)| boxed(&[
            ("_command", "Echo".into()),
            ("_ask", format!("{t:x}").into_bytes()),
            ("data", vec![b'e'; n]),
        ])),
        tag.clone().prop_map(|t| boxed(&[
            ("_command", "Nope".into()),
            ("_ask", format!("{t:x}").into_bytes()),
        ])),
        (-99i64..99).prop_map(|a| boxed(&[
            ("_command", "Sum".into()),
            ("a", a.to_string().into_bytes()),
            ("b", b"1".to_vec()),
        ])),
    ]
}

fn boxed(pairs: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut amp_box = AmpBox::new();
    for (key, value) in pairs {
        amp_box.insert(key.to_string(), value.clone()).unwrap();
    }
    amp_box.to_wire().to_vec()
}

/// A run of calls, sometimes ended by a malformed box (a key over 255 bytes).
fn calls() -> BoxedStrategy<Vec<u8>> {
    (proptest::collection::vec(call(), 1..12), any::<bool>())
        .prop_map(|(calls, malformed)| {
            let mut input = calls.concat();
            if malformed {
                input.extend_from_slice(b"\x01\x00");
                input.extend_from_slice(&[b'k'; 256]);
            }
            input
        })
        .boxed()
}

#[test]
fn the_answers_do_not_depend_on_how_the_calls_are_split() {
    server()
        .cases(96)
        .same_replies_however_split(calls())
        .unwrap();
}

#[test]
fn a_caller_that_never_reads_its_answers_does_not_grow_the_server() {
    server()
        .cases(64)
        .bounded_while_peer_never_reads(calls())
        .unwrap();
}

#[test]
fn every_amp_connection_ends_with_one_reason_under_any_schedule() {
    server()
        .cases(96)
        .ends_with_one_reason(properties::schedule::<()>(calls()))
        .unwrap();
}
