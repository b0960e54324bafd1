//! loomwork's AMP client against REAL Twisted: `interop/twisted_amp.py server` (Twisted's
//! ampserver.py plus the interop commands), on every runtime.
//!
//! Needs a running Twisted server, so the tests are ignored by a plain `cargo test`;
//! `.ci/extra/interop-amp.sh` starts the server and runs them with
//! `AMP_TWISTED_ADDR=IP:PORT cargo test --release -p loomwork-examples --test amp_twisted -- --ignored`.
//!
//! Checked: Sum; Divide's declared error; an unknown command (UNHANDLED with Twisted's
//! description); a 65,535-byte value; every argument type, byte for byte (Twisted's answer
//! must be exactly the bytes loomwork writes for the same values, and Twisted checks it
//! received the values it expects); 1,000 pipelined calls that Twisted answers out of order,
//! each routed to its caller exactly once; an undeclared error (UNKNOWN), after which Twisted
//! closes and nothing is left pending.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use loomwork::amp::{Amp, AmpBox, AmpHandler, AmpList, AmpTransport, ArgumentError};
use loomwork::amp::{CallError, Command, DateTime, Decimal, Fields, NoError, Responders};
use loomwork::bytes::Bytes;
use loomwork::connector::{self, ClientFactory, Retry};
use loomwork::stream::Config;
use loomwork::Reason;
use loomwork_examples::amp::{Blob, Divide, DivideArgs, DivideError, Echo, Everything, Row};
use loomwork_examples::amp::{Delayed, DelayedAnswer, DelayedArgs, RoundTrip, Sum, SumArgs};
use loomwork_examples::Runtime;

/// The vectors of interop/twisted_amp.py, in the same order.
fn vectors() -> Vec<Everything> {
    let dt = |text: &str| DateTime::parse(text.as_bytes()).unwrap();
    let dec = |text: &str| Decimal::parse(text).unwrap();
    vec![
        Everything {
            integer: -7,
            string: Bytes::from_static(b"\x00\xff bytes"),
            unicode: "h\u{e9}llo \u{2603}".into(),
            boolean: true,
            float: 0.1,
            special: f64::NAN,
            decimal: dec("1.50"),
            datetime: dt("2012-01-23T12:34:56.054321-00:00"),
            list: vec![3, 7, 9],
            rows: AmpList(vec![
                Row {
                    a: 7,
                    b: "hello".into(),
                },
                Row {
                    a: 9,
                    b: "goodbye".into(),
                },
            ]),
            maybe: None,
        },
        Everything {
            integer: 1 << 62,
            string: Bytes::new(),
            unicode: String::new(),
            boolean: false,
            float: 1e16,
            special: f64::INFINITY,
            decimal: dec("-1E+2"),
            datetime: dt("2000-02-29T23:59:59.999999+05:30"),
            list: vec![],
            rows: AmpList(vec![]),
            maybe: Some(5),
        },
        Everything {
            integer: 0,
            string: Bytes::from_static(b"\r\n\x00\x00"),
            unicode: "\u{0}z".into(),
            boolean: true,
            float: -1.5e-07,
            special: f64::NEG_INFINITY,
            decimal: dec("NaN"),
            datetime: dt("0001-01-01T00:00:00.000000-08:00"),
            list: vec![-1, 0, i64::MAX],
            rows: AmpList(vec![Row { a: 0, b: "".into() }]),
            maybe: Some(-1),
        },
    ]
}

/// An answer kept as the box it arrived in, to compare bytes.
#[derive(Debug)]
struct RawBox(AmpBox);

impl Fields for RawBox {
    fn to_box(&self, amp_box: &mut AmpBox) -> Result<(), ArgumentError> {
        for (key, value) in self.0.iter() {
            amp_box
                .insert(key.clone(), value.clone())
                .map_err(|_| ArgumentError::Invalid { expected: "box" })?;
        }
        Ok(())
    }
    fn from_box(amp_box: &AmpBox) -> Result<Self, ArgumentError> {
        let mut copy = amp_box.clone();
        copy.remove(b"_answer");
        Ok(RawBox(copy))
    }
}

/// `RoundTrip`, its answer kept raw.
struct RawRoundTrip;
impl Command for RawRoundTrip {
    const NAME: &'static str = "RoundTrip";
    type Arguments = Everything;
    type Response = RawBox;
    type Error = NoError;
}

/// A command Twisted's server does not know.
struct Nope;
impl Command for Nope {
    const NAME: &'static str = "Nope";
    type Arguments = ();
    type Response = ();
    type Error = NoError;
}

/// A command whose Twisted responder raises an undeclared exception.
struct Fail;
impl Command for Fail {
    const NAME: &'static str = "Fail";
    type Arguments = ();
    type Response = ();
    type Error = NoError;
}

const PIPELINED: i64 = 1000;

/// What the run found: one line per failed check, and counters.
#[derive(Debug, Default)]
struct Report {
    failures: Vec<String>,
    passed: Vec<&'static str>,
    delayed_answers: i64,
    out_of_order: bool,
    last_delayed: Option<i64>,
    done: bool,
}

type Shared = Arc<Mutex<Report>>;

/// Runs every check on connection, then `Fail` once everything else is answered.
struct Checker {
    report: Shared,
    vectors: Vec<Everything>,
}

impl Checker {
    fn check(&self, name: &'static str, ok: bool, detail: impl FnOnce() -> String) {
        let mut report = self.report.lock().unwrap();
        if ok {
            report.passed.push(name);
        } else {
            report.failures.push(format!("{name}: {}", detail()));
        }
    }

    fn after_answer(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        if amp.outstanding() > 0 {
            return;
        }
        // Last: an undeclared error, after which Twisted closes the connection.
        let sent = amp.call::<Fail>((), |me, outcome, _| {
            let ok = matches!(&outcome, Err(CallError::Remote { code, description })
                if code.as_ref() == b"UNKNOWN" && description == "Unknown Error");
            me.check("undeclared error is UNKNOWN", ok, || format!("{outcome:?}"));
            me.report.lock().unwrap().done = true;
        });
        if let Err(error) = sent {
            self.check("Fail sent", false, || error.to_string());
        }
    }
}

impl AmpHandler for Checker {
    type Message = ();

    fn responders(_: &mut Responders<Self>) {}

    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        let calls = [
            amp.call::<Sum>(SumArgs { a: 13, b: 81 }, |me, outcome, amp| {
                let ok = matches!(&outcome, Ok(t) if t.total == 94);
                me.check("Sum", ok, || format!("{outcome:?}"));
                me.after_answer(amp);
            }),
            amp.call::<Divide>(
                DivideArgs {
                    numerator: 1234,
                    denominator: 0,
                },
                |me, outcome, amp| {
                    let ok = matches!(outcome, Err(CallError::Declared(DivideError::ZeroDivision)));
                    me.check("Divide declared error", ok, || format!("{outcome:?}"));
                    me.after_answer(amp);
                },
            ),
            amp.call::<Nope>((), |me, outcome, amp| {
                let ok = matches!(&outcome, Err(CallError::Unhandled { description })
                    if description == "Unhandled Command: b'Nope'");
                me.check("unknown command is UNHANDLED", ok, || {
                    format!("{outcome:?}")
                });
                me.after_answer(amp);
            }),
            amp.call::<Echo>(
                Blob {
                    data: Bytes::from(vec![0xa5; 65_535]),
                },
                |me, outcome, amp| {
                    let ok = matches!(&outcome, Ok(b) if b.data.len() == 65_535
                        && b.data.iter().all(|&x| x == 0xa5));
                    me.check("65,535-byte value", ok, || "changed".into());
                    me.after_answer(amp);
                },
            ),
        ];
        for call in calls {
            if let Err(error) = call {
                self.check("call sent", false, || error.to_string());
            }
        }
        for (i, values) in self.vectors.clone().into_iter().enumerate() {
            let mut ours = AmpBox::new();
            values.to_box(&mut ours).unwrap();
            let sent = amp.call::<RawRoundTrip>(values, move |me, outcome, amp| {
                let ok = matches!(&outcome, Ok(RawBox(theirs))
                    if theirs.serialize() == ours.serialize());
                me.check("every argument type byte for byte", ok, || {
                    format!("vector {i}: Twisted answered {outcome:?}, we write {ours:?}")
                });
                me.after_answer(amp);
            });
            if let Err(error) = sent {
                self.check("RoundTrip sent", false, || error.to_string());
            }
        }
        // Typed too: the values come back equal (NaN as NaN).
        if let Some(values) = self.vectors.first().cloned() {
            let _ = amp.call::<RoundTrip>(values, |me, outcome, amp| {
                let ok = matches!(&outcome, Ok(v) if v.special.is_nan()
                    && v.integer == -7 && v.rows.0.len() == 2 && v.maybe.is_none());
                me.check("typed RoundTrip", ok, || format!("{outcome:?}"));
                me.after_answer(amp);
            });
        }
        // 1,000 pipelined calls; later calls get shorter delays, so answers come back out of
        // order, and each must reach its own caller exactly once.
        for i in 0..PIPELINED {
            let args = DelayedArgs {
                a: i,
                delay_ms: (PIPELINED - i) % 97,
            };
            let sent = amp.call::<Delayed>(args, move |me, outcome, amp| {
                {
                    let mut report = me.report.lock().unwrap();
                    match outcome {
                        Ok(DelayedAnswer { a }) if a == i => {
                            report.delayed_answers += 1;
                            if report.last_delayed.is_some_and(|last| last > i) {
                                report.out_of_order = true;
                            }
                            report.last_delayed = Some(i);
                        }
                        other => report.failures.push(format!("Delayed {i}: {other:?}")),
                    }
                }
                me.after_answer(amp);
            });
            if let Err(error) = sent {
                self.check("Delayed sent", false, || error.to_string());
            }
        }
    }
}

struct Once {
    report: Shared,
}

impl ClientFactory for Once {
    type Protocol = Amp<Checker>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        Some(Amp::new(Checker {
            report: self.report.clone(),
            vectors: vectors(),
        }))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        let mut report = self.report.lock().unwrap();
        report.failures.push(format!("connection failed: {reason}"));
        Retry::Stop
    }
    fn connection_lost(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
}

fn twisted_addr() -> SocketAddr {
    let addr = std::env::var("AMP_TWISTED_ADDR")
        .expect("AMP_TWISTED_ADDR=IP:PORT of `interop/twisted_amp.py server` (see the docs above)");
    addr.parse().expect("AMP_TWISTED_ADDR is IP:PORT")
}

fn run(runtime: Runtime) {
    let report = Shared::default();
    let factory = Once {
        report: report.clone(),
    };
    let addr = twisted_addr();
    let (connector, config) = (connector::Config::default(), Config::default());
    match runtime {
        Runtime::Std => {
            loomwork_std::connect_tcp_with(addr, factory, connector, config).join();
        }
        Runtime::Smol => {
            smol::block_on(
                loomwork_smol::connect_tcp_with(addr, factory, connector, config).join(),
            );
        }
        Runtime::Tokio => {
            loomwork_examples::tokio_runtime().block_on(async {
                loomwork_tokio::connect_tcp_with(addr, factory, connector, config)
                    .join()
                    .await
            });
        }
    }
    let report = report.lock().unwrap();
    assert!(
        report.failures.is_empty(),
        "{runtime:?}: {:#?}",
        report.failures
    );
    assert!(
        report.done,
        "{runtime:?}: the run did not reach its last check"
    );
    assert_eq!(report.delayed_answers, PIPELINED, "{runtime:?}");
    assert!(
        report.out_of_order,
        "{runtime:?}: Twisted answered in order"
    );
    assert_eq!(
        report
            .passed
            .iter()
            .filter(|p| **p == "every argument type byte for byte")
            .count(),
        vectors().len()
    );
    println!(
        "{runtime:?}: {} checks passed, {} pipelined calls answered out of order",
        report.passed.len(),
        report.delayed_answers
    );
}

#[test]
#[ignore = "needs interop/twisted_amp.py server; run by .ci/extra/interop-amp.sh"]
fn loomwork_calls_twisted_on_std() {
    run(Runtime::Std);
}

#[test]
#[ignore = "needs interop/twisted_amp.py server; run by .ci/extra/interop-amp.sh"]
fn loomwork_calls_twisted_on_smol() {
    run(Runtime::Smol);
}

#[test]
#[ignore = "needs interop/twisted_amp.py server; run by .ci/extra/interop-amp.sh"]
fn loomwork_calls_twisted_on_tokio() {
    run(Runtime::Tokio);
}
