//! AMP, Twisted's Asynchronous Messaging Protocol (`twisted.protocols.amp`), wire-compatible.
//!
//! With AMP a loomwork service joins a Twisted deployment as a peer: it calls commands on the
//! other side and answers the commands it is sent, in boxes of key/value pairs.
//!
//! - [`BoxCodec`] and [`AmpBox`]: the box framing, a [`Decoder`](crate::framing::Decoder) /
//!   [`Encoder`](crate::framing::Encoder) pair like every framing here (zero-copy values,
//!   bounded, the buffer untouched on "need more").
//! - [`Argument`]: the argument types (Integer, String, Unicode, Boolean, Float, Decimal,
//!   DateTime, ListOf, AmpList, optional), written byte for byte as Twisted writes them.
//! - [`Command`], [`fields!`], [`errors!`]: a command's name, typed arguments, typed response
//!   and declared errors in about ten lines.
//! - [`Amp`] and [`AmpHandler`]: the connection, a stream [`Protocol`](crate::stream::Protocol);
//!   responders are plain methods registered by name, calls take a typed callback.
//!
//! ```
//! use loomwork::amp::{errors, fields, Amp, AmpHandler, AmpTransport, CallError, Command};
//! use loomwork::amp::{NoError, Responders};
//! use loomwork::stream::{Config, Connection};
//! use loomwork::Instant;
//!
//! fields! {
//!     /// `Divide`'s arguments.
//!     pub struct DivideArgs { pub numerator: i64, pub denominator: i64 }
//! }
//! fields! {
//!     /// `Divide`'s response.
//!     pub struct Quotient { pub result: f64 }
//! }
//! errors! {
//!     /// `Divide`'s declared error.
//!     pub enum DivideError { ZeroDivision = "ZERO_DIVISION" => "division by zero" }
//! }
//! /// Twisted's `Divide`.
//! pub struct Divide;
//! impl Command for Divide {
//!     const NAME: &'static str = "Divide";
//!     type Arguments = DivideArgs;
//!     type Response = Quotient;
//!     type Error = DivideError;
//! }
//!
//! /// The server: one responder, a plain method.
//! struct Math;
//! impl Math {
//!     fn divide(&mut self, a: DivideArgs, _: &mut AmpTransport<'_, '_, Self>)
//!         -> Result<Quotient, DivideError> {
//!         if a.denominator == 0 {
//!             return Err(DivideError::ZeroDivision);
//!         }
//!         Ok(Quotient { result: a.numerator as f64 / a.denominator as f64 })
//!     }
//! }
//! impl AmpHandler for Math {
//!     type Message = ();
//!     fn responders(r: &mut Responders<Self>) {
//!         r.add::<Divide>(Self::divide);
//!     }
//! }
//!
//! /// The client: calls on connection, keeps the outcome.
//! #[derive(Default)]
//! struct Client(Option<Result<Quotient, CallError<DivideError>>>);
//! impl AmpHandler for Client {
//!     type Message = ();
//!     fn responders(_: &mut Responders<Self>) {}
//!     fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
//!         let args = DivideArgs { numerator: 1234, denominator: 0 };
//!         amp.call::<Divide>(args, |me, outcome, _| me.0 = Some(outcome)).unwrap();
//!     }
//! }
//!
//! // Two connections joined by hand: what a runtime (or `testing::Pair`) does.
//! let (t, addr) = (Instant::ZERO, "127.0.0.1:1".parse().unwrap());
//! let mut client = Connection::new(Amp::new(Client::default()), Config::default());
//! let mut server = Connection::new(Amp::new(Math), Config::default());
//! server.handle_connected(t, addr, addr);
//! client.handle_connected(t, addr, addr);
//! let call: Vec<u8> = client.poll_write().flatten().copied().collect();
//! client.handle_written(t, call.len());
//! server.handle_data(t, &call);
//! let answer: Vec<u8> = server.poll_write().flatten().copied().collect();
//! client.handle_data(t, &answer);
//! let outcome = client.protocol().handler().0.clone().unwrap();
//! assert!(matches!(outcome, Err(CallError::Declared(DivideError::ZeroDivision))));
//! ```

mod box_codec;
mod command;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod handler;
mod machine;
mod responders;
mod transport;
mod types;
mod values;

pub use box_codec::{AmpBox, BoxCodec, BoxError};
pub use box_codec::{DEFAULT_MAX_BOX_LENGTH, MAX_KEY_LENGTH, MAX_VALUE_LENGTH};
pub use command::{Command, DeclaredError, Fields, NoError};
pub use handler::{AmpHandler, Config, DEFAULT_MAX_OUTSTANDING};
pub use machine::Amp;
pub use responders::{Deferred, Responders};
pub use transport::{AmpTransport, CallError, CallId, CallRefused};
pub use types::{AmpList, Argument, ArgumentError};
pub use values::{DateTime, Decimal, ValueError};

#[doc(inline)]
pub use crate::amp_errors as errors;
#[doc(inline)]
pub use crate::amp_fields as fields;

/// The key of a call's tag (`_ask`).
pub const ASK: &str = "_ask";
/// The key of an answer's tag (`_answer`).
pub const ANSWER: &str = "_answer";
/// The key of a command's name (`_command`).
pub const COMMAND: &str = "_command";
/// The key of an error answer's tag (`_error`).
pub const ERROR: &str = "_error";
/// The key of an error answer's code (`_error_code`).
pub const ERROR_CODE: &str = "_error_code";
/// The key of an error answer's description (`_error_description`).
pub const ERROR_DESCRIPTION: &str = "_error_description";
/// Twisted's code for an error the responder did not declare (`UNKNOWN`).
pub const UNKNOWN_ERROR_CODE: &str = "UNKNOWN";
/// Twisted's code for a command without a responder (`UNHANDLED`).
pub const UNHANDLED_ERROR_CODE: &str = "UNHANDLED";

/// What the macros need from this crate, whatever the user's crate has in scope.
#[doc(hidden)]
pub mod __private {
    pub use crate::amp::command::describe;
    pub use alloc::string::String;
}

#[cfg(test)]
mod tests;
