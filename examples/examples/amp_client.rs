//! AMP client: Twisted's `ampclient.py`. Calls `Sum(13, 81)` and `Divide(1234, 0)` at once,
//! turns the declared `ZERO_DIVISION` into infinity, prints the results and exits.
//!
//! `cargo run --release --example amp_client -- --connect 127.0.0.1:1234`
//!
//! Prints `Divided by zero: returning INF` when the declared error comes back, then
//! `Done with math: 94 inf`, and exits 0. A connection failure: stderr
//! `Connection failed: <reason>`, exit 1.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use clap::Parser;
use loomwork::amp::{Amp, AmpHandler, AmpTransport, CallError, Responders};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::Reason;
use loomwork_examples::amp::{Divide, DivideArgs, DivideError, Quotient, Sum, SumArgs, Total};
use loomwork_examples::{connect_and_join, outcome_or_exit, parse_args, resolve_or_exit, Runtime};

/// AMP client (Twisted's ampclient.py).
#[derive(Parser, Debug)]
#[command(name = "amp_client", version)]
struct Args {
    /// Server address (HOST:PORT or IP:PORT; IPv6 as [::1]:PORT).
    #[arg(long, default_value = "127.0.0.1:1234")]
    connect: String,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
}

/// How the run ended: the line to print and the exit status, once known.
type Outcome = Arc<Mutex<Option<Result<String, String>>>>;

/// Makes both calls on connection; once both are answered prints the result and closes.
struct MathClient {
    total: Option<i128>,
    quotient: Option<f64>,
    outcome: Outcome,
}

impl MathClient {
    fn summed(
        &mut self,
        result: Result<Total, CallError<loomwork::amp::NoError>>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        match result {
            Ok(Total { total }) => self.total = Some(total),
            Err(error) => return self.give_up(format!("Sum failed: {error}"), amp),
        }
        self.finish(amp);
    }

    fn divided(
        &mut self,
        result: Result<Quotient, CallError<DivideError>>,
        amp: &mut AmpTransport<'_, '_, Self>,
    ) {
        match result {
            Ok(Quotient { result }) => self.quotient = Some(result),
            // ampclient.py's `trapZero`.
            Err(CallError::Declared(DivideError::ZeroDivision)) => {
                println!("Divided by zero: returning INF");
                self.quotient = Some(f64::INFINITY);
            }
            Err(error) => return self.give_up(format!("Divide failed: {error}"), amp),
        }
        self.finish(amp);
    }

    fn finish(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        if let (Some(total), Some(quotient)) = (self.total, self.quotient) {
            let line = format!("Done with math: {total} {quotient}");
            *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(Ok(line));
            amp.lose_connection();
        }
    }

    fn give_up(&mut self, message: String, amp: &mut AmpTransport<'_, '_, Self>) {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if outcome.is_none() {
            *outcome = Some(Err(message));
        }
        amp.lose_connection();
    }
}

impl AmpHandler for MathClient {
    type Message = ();

    fn responders(_: &mut Responders<Self>) {}

    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        let sum = amp.call::<Sum>(SumArgs { a: 13, b: 81 }, Self::summed);
        let divide = amp.call::<Divide>(
            DivideArgs {
                numerator: 1234,
                denominator: 0,
            },
            Self::divided,
        );
        if let Err(error) = sum.and(divide) {
            self.give_up(format!("cannot call: {error}"), amp);
        }
    }
}

/// Connects once; remembers how it ended (Twisted's clientConnectionFailed/Lost).
struct Once {
    outcome: Outcome,
}

impl Once {
    fn settle(&self, message: String) {
        let mut outcome = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        if outcome.is_none() {
            *outcome = Some(Err(message));
        }
    }
}

impl ClientFactory for Once {
    type Protocol = Amp<MathClient>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        Some(Amp::new(MathClient {
            total: None,
            quotient: None,
            outcome: self.outcome.clone(),
        }))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.settle(format!("Connection failed: {reason}"));
        Retry::Stop
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        // Ended before both answers came back: a lost connection, however clean.
        self.settle(format!("Connection lost: {reason}"));
        Retry::Stop
    }
}

fn main() {
    let args: Args = parse_args();
    let addr = resolve_or_exit(&args.connect);
    let outcome = Outcome::default();
    let factory = Once {
        outcome: outcome.clone(),
    };
    connect_and_join(args.runtime, addr, factory);
    let result = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
    println!("{}", outcome_or_exit(result));
}
