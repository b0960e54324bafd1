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

/// Every box in `buf`, parsed.
fn decode_all(codec: &mut BoxCodec, buf: &mut BytesMut) -> Result<Vec<AmpBox>, FrameError> {
    let mut boxes = Vec::new();
    while let Some(pairs) = codec.decode(buf)? {
        boxes.push(AmpBox::parse(pairs).unwrap());
    }
    Ok(boxes)
}

mod codec;
mod machine;
