//! The AMP commands of Twisted's `ampserver.py` / `ampclient.py` (`Sum`, `Divide`), plus the
//! two the interop checks use (`RoundTrip`: every argument type; `Echo`: one string of any
//! length), and the server's responders (`Math`).

use std::collections::HashMap;
use std::time::Duration;

use loomwork::amp::{errors, fields, AmpHandler, AmpList, AmpTransport, Command, Deferred};
use loomwork::amp::{DateTime, Decimal, NoError, Responders};
use loomwork::bytes::Bytes;
use loomwork::TimerId;

fields! {
    /// `Sum`'s arguments.
    pub struct SumArgs { pub a: i64, pub b: i64 }
}
fields! {
    /// `Sum`'s response.
    pub struct Total { pub total: i128 }
}
/// `Sum(a: Integer, b: Integer) -> total: Integer`.
pub struct Sum;
impl Command for Sum {
    const NAME: &'static str = "Sum";
    type Arguments = SumArgs;
    type Response = Total;
    type Error = NoError;
}

fields! {
    /// `Divide`'s arguments.
    pub struct DivideArgs { pub numerator: i64, pub denominator: i64 }
}
fields! {
    /// `Divide`'s response.
    pub struct Quotient { pub result: f64 }
}
errors! {
    /// `Divide`'s declared error: Python's `ZeroDivisionError`, described as `ampserver.py`'s
    /// `float(numerator) / denominator` describes it.
    pub enum DivideError { ZeroDivision = "ZERO_DIVISION" => "float division by zero" }
}
/// `Divide(numerator: Integer, denominator: Integer) -> result: Float`, declaring
/// `ZERO_DIVISION`.
pub struct Divide;
impl Command for Divide {
    const NAME: &'static str = "Divide";
    type Arguments = DivideArgs;
    type Response = Quotient;
    type Error = DivideError;
}

fields! {
    /// One row of `RoundTrip`'s `AmpList`.
    #[derive(PartialEq)]
    pub struct Row { pub a: i64, pub b: String }
}
fields! {
    /// One value of every AMP argument type; `RoundTrip` answers with the same values.
    #[derive(PartialEq)]
    pub struct Everything {
        /// `Integer`.
        pub integer: i64,
        /// `String` (bytes).
        pub string: Bytes,
        /// `Unicode`.
        pub unicode: String,
        /// `Boolean`.
        pub boolean: bool,
        /// `Float`.
        pub float: f64,
        /// `Float`, a special value (`nan`, `inf`, `-inf`).
        pub special: f64,
        /// `Decimal`.
        pub decimal: Decimal,
        /// `DateTime`.
        pub datetime: DateTime,
        /// `ListOf(Integer())`.
        pub list: Vec<i64>,
        /// `AmpList([(b"a", Integer()), (b"b", Unicode())])`.
        pub rows: AmpList<Row>,
        /// `Integer(optional=True)`.
        pub maybe: Option<i64>,
    }
}
/// `RoundTrip(everything) -> everything`: answers with the values it was sent.
pub struct RoundTrip;
impl Command for RoundTrip {
    const NAME: &'static str = "RoundTrip";
    type Arguments = Everything;
    type Response = Everything;
    type Error = NoError;
}

fields! {
    /// `Echo`'s argument and response.
    pub struct Blob { pub data: Bytes }
}
/// `Echo(data: String) -> data: String`.
pub struct Echo;
impl Command for Echo {
    const NAME: &'static str = "Echo";
    type Arguments = Blob;
    type Response = Blob;
    type Error = NoError;
}

fields! {
    /// `Delayed`'s arguments: the value to answer and how long to wait first.
    pub struct DelayedArgs { pub a: i64, pub delay_ms: i64 }
}
fields! {
    /// `Delayed`'s response.
    pub struct DelayedAnswer { pub a: i64 }
}
/// `Delayed(a: Integer, delay_ms: Integer) -> a: Integer`, answered after the delay (at most
/// 10 s): calls with shorter delays overtake earlier ones, so answers come out of order.
pub struct Delayed;
impl Command for Delayed {
    const NAME: &'static str = "Delayed";
    type Arguments = DelayedArgs;
    type Response = DelayedAnswer;
    type Error = NoError;
}

/// The server of `ampserver.py`: `Sum` and `Divide` (and `RoundTrip`, `Echo`, `Delayed`).
#[derive(Debug, Default)]
pub struct Math {
    /// Log each call to stderr, as `ampserver.py` prints it.
    pub verbose: bool,
    /// `Delayed` calls waiting for their timer.
    delayed: HashMap<TimerId, (i64, Deferred<Delayed>)>,
}

impl Math {
    /// `ampserver.py`'s Math; with `verbose`, each sum and division is printed to stderr.
    pub fn new(verbose: bool) -> Self {
        Math {
            verbose,
            delayed: HashMap::new(),
        }
    }
}

impl Math {
    fn sum(&mut self, args: SumArgs, _: &mut AmpTransport<'_, '_, Self>) -> Result<Total, NoError> {
        // Python's integers do not overflow; the sum of two i64 always fits in an i128.
        let total = i128::from(args.a) + i128::from(args.b);
        if self.verbose {
            eprintln!("Did a sum: {} + {} = {total}", args.a, args.b);
        }
        Ok(Total { total })
    }

    fn divide(
        &mut self,
        args: DivideArgs,
        _: &mut AmpTransport<'_, '_, Self>,
    ) -> Result<Quotient, DivideError> {
        if args.denominator == 0 {
            return Err(DivideError::ZeroDivision);
        }
        let result = args.numerator as f64 / args.denominator as f64;
        if self.verbose {
            eprintln!(
                "Divided: {} / {} = {result:.6}",
                args.numerator, args.denominator
            );
        }
        Ok(Quotient { result })
    }

    fn round_trip(
        &mut self,
        args: Everything,
        _: &mut AmpTransport<'_, '_, Self>,
    ) -> Result<Everything, NoError> {
        Ok(args)
    }

    fn echo(&mut self, args: Blob, _: &mut AmpTransport<'_, '_, Self>) -> Result<Blob, NoError> {
        Ok(args)
    }

    fn delayed(
        &mut self,
        args: DelayedArgs,
        deferred: Deferred<Delayed>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        let delay = Duration::from_millis(args.delay_ms.clamp(0, 10_000) as u64);
        if let Some(tx) = amp.transport() {
            let timer = tx.call_later(delay);
            self.delayed.insert(timer, (args.a, deferred));
        }
    }
}

impl AmpHandler for Math {
    type Message = ();
    fn responders(r: &mut Responders<Self>) {
        r.add::<Sum>(Self::sum)
            .add::<Divide>(Self::divide)
            .add::<RoundTrip>(Self::round_trip)
            .add::<Echo>(Self::echo)
            .add_deferred::<Delayed>(Self::delayed);
    }

    fn timer_fired(&mut self, timer: TimerId, amp: &mut AmpTransport<'_, '_, Self>) {
        if let Some((a, deferred)) = self.delayed.remove(&timer) {
            // Refused only when the connection is closing: nobody is left to answer.
            let _ = amp.answer(deferred, Ok(DelayedAnswer { a }));
        }
    }
}
