//! [`AmpTransport`]: calls to the peer (tags, pending callbacks, their timers) and answers
//! promised for later.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt::{self, Write as _};
use core::time::Duration;

use bytes::Bytes;

use crate::amp::box_codec::AmpBox;
use crate::amp::command::{Command, DeclaredError, Fields};
use crate::amp::handler::{AmpHandler, Config};
use crate::amp::responders::{refusal_or_box, reply_box, Deferred};
use crate::amp::types::ArgumentError;
use crate::amp::{ASK, COMMAND, UNHANDLED_ERROR_CODE};
use crate::reason::Reason;
use crate::stream::{Handle, Transport, WriteError};
use crate::time::Instant;
use crate::timer::TimerId;

/// Twisted drops the connection when a command sent without `_ask` fails.
pub(crate) const NO_ASK_FAILED: &str = "amp: a command sent without _ask failed";

/// The id of a call this side made: Twisted's `_ask` tag, as a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(u64);

impl CallId {
    /// The tag's number (the wire form is its lowercase hexadecimal).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// How a call ended, for the typed callback of [`AmpTransport::call`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CallError<E> {
    /// The peer answered with one of the command's declared errors.
    Declared(E),
    /// The peer has no responder for the command (`UNHANDLED`).
    Unhandled {
        /// The peer's description (`Unhandled Command: b'Name'` from Twisted).
        description: String,
    },
    /// The peer answered with an error the command does not declare (`UNKNOWN` for a
    /// responder that failed unexpectedly; Twisted's `UnknownRemoteError`).
    Remote {
        /// The error code.
        code: Bytes,
        /// The description.
        description: String,
    },
    /// The answer does not carry the command's response.
    BadAnswer(ArgumentError),
    /// No answer within the call timeout.
    TimedOut,
    /// The connection ended first, for this reason.
    ConnectionLost(Reason),
}

impl<E: fmt::Display> fmt::Display for CallError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Declared(error) => write!(f, "{error}"),
            CallError::Unhandled { description } => write!(f, "unhandled command: {description}"),
            CallError::Remote { code, description } => write!(
                f,
                "remote error {}: {description}",
                String::from_utf8_lossy(code)
            ),
            CallError::BadAnswer(error) => write!(f, "bad answer: {error}"),
            CallError::TimedOut => f.write_str("call timed out"),
            CallError::ConnectionLost(reason) => write!(f, "connection lost: {reason}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for CallError<E> {}

/// Why a call, command or answer was not sent; nothing went on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallRefused {
    /// The connection is closed or closing.
    Closed,
    /// As many calls as [`Config::max_outstanding`] already await an answer.
    TooManyCalls {
        /// The bound.
        max: usize,
    },
    /// An argument cannot be sent (a value over 65,535 bytes, say).
    Argument(ArgumentError),
    /// The whole box is over [`Config::max_box_length`].
    BoxTooLong {
        /// The box's length on the wire.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The connection refused the write (its queue is full).
    Write(WriteError),
}

impl fmt::Display for CallRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallRefused::Closed => f.write_str("AMP connection is closed"),
            CallRefused::TooManyCalls { max } => {
                write!(f, "too many AMP calls awaiting an answer (at most {max})")
            }
            CallRefused::Argument(error) => write!(f, "{error}"),
            CallRefused::BoxTooLong { len, max } => {
                write!(f, "AMP box too long: {len} bytes > {max}")
            }
            CallRefused::Write(error) => write!(f, "{error}"),
        }
    }
}

impl core::error::Error for CallRefused {}

/// What came back for a call, before it is typed by its command.
pub(crate) enum Outcome {
    Answer(AmpBox),
    Error { code: Bytes, description: String },
    TimedOut,
    Lost(Reason),
}

impl Outcome {
    fn typed<C: Command>(self) -> Result<C::Response, CallError<C::Error>> {
        match self {
            Outcome::Answer(amp_box) => {
                C::Response::from_box(&amp_box).map_err(CallError::BadAnswer)
            }
            Outcome::Error { code, description } => {
                if let Some(error) = C::Error::from_code(&code, &description) {
                    Err(CallError::Declared(error))
                } else if code.as_ref() == UNHANDLED_ERROR_CODE.as_bytes() {
                    Err(CallError::Unhandled { description })
                } else {
                    Err(CallError::Remote { code, description })
                }
            }
            Outcome::TimedOut => Err(CallError::TimedOut),
            Outcome::Lost(reason) => Err(CallError::ConnectionLost(reason)),
        }
    }
}

pub(crate) type OnAnswer<H> = Box<dyn FnOnce(&mut H, Outcome, &mut AmpTransport<'_, '_, H>) + Send>;

pub(crate) enum Pending<H: AmpHandler> {
    /// Awaiting its answer; the callback runs exactly once.
    Waiting {
        on_answer: OnAnswer<H>,
        timer: Option<TimerId>,
    },
    /// Timed out: its callback ran; a late answer is dropped and frees the place.
    Abandoned,
}

/// The calls side of a connection: tags, pending callbacks, their timers.
pub(crate) struct Calls<H: AmpHandler> {
    pub(crate) config: Config,
    pub(crate) counter: u64,
    pub(crate) pending: BTreeMap<u64, Pending<H>>,
    pub(crate) timers: BTreeMap<TimerId, u64>,
    /// Set once the connection is gone: every later call is refused.
    pub(crate) lost: bool,
}

/// What an [`AmpHandler`] acts through: calls to the peer, plus the connection's
/// [`Transport`] while it is up.
pub struct AmpTransport<'t, 'a, H: AmpHandler> {
    pub(crate) tx: Option<&'t mut Transport<'a, H::Message>>,
    pub(crate) calls: &'t mut Calls<H>,
}

impl<'a, H: AmpHandler> AmpTransport<'_, 'a, H> {
    /// Calls command `C` on the peer; `on_answer` runs exactly once with the typed outcome:
    /// the response, a declared or undeclared error, a timeout, or the connection's end.
    ///
    /// `on_answer` is typically a plain method (`Self::sum_done`); a closure may carry
    /// whatever it needs (a handle to another connection that wants the answer, say).
    /// Refused at once, with nothing sent, when the connection is closing, when
    /// [`Config::max_outstanding`] calls await answers, or when an argument is too long.
    pub fn call<C: Command>(
        &mut self,
        arguments: C::Arguments,
        on_answer: impl FnOnce(&mut H, Result<C::Response, CallError<C::Error>>, &mut AmpTransport<'_, '_, H>)
            + Send
            + 'static,
    ) -> Result<CallId, CallRefused> {
        let timeout = self.calls.config.call_timeout;
        self.call_with_timeout::<C>(arguments, timeout, on_answer)
    }

    /// [`call`](Self::call) with this call's own deadline instead of
    /// [`Config::call_timeout`]: `on_answer` gets [`CallError::TimedOut`] once `timeout` has
    /// passed without an answer (`None`: no deadline).
    pub fn call_with_timeout<C: Command>(
        &mut self,
        arguments: C::Arguments,
        timeout: Option<Duration>,
        on_answer: impl FnOnce(&mut H, Result<C::Response, CallError<C::Error>>, &mut AmpTransport<'_, '_, H>)
            + Send
            + 'static,
    ) -> Result<CallId, CallRefused> {
        if self.calls.pending.len() >= self.calls.config.max_outstanding {
            return Err(CallRefused::TooManyCalls {
                max: self.calls.config.max_outstanding,
            });
        }
        let tag = self.send_command::<C>(&arguments, true)?;
        let timer = match (timeout, self.tx.as_deref_mut()) {
            (Some(timeout), Some(tx)) => Some(tx.call_later(timeout)),
            _ => None,
        };
        if let Some(timer) = timer {
            self.calls.timers.insert(timer, tag);
        }
        let on_answer: OnAnswer<H> = Box::new(move |handler, outcome, amp| {
            on_answer(handler, outcome.typed::<C>(), amp);
        });
        self.calls
            .pending
            .insert(tag, Pending::Waiting { on_answer, timer });
        Ok(CallId(tag))
    }

    /// Sends command `C` without `_ask`: the peer runs it and answers nothing (Twisted's
    /// `requiresAnswer = False`).
    pub fn send<C: Command>(&mut self, arguments: C::Arguments) -> Result<(), CallRefused> {
        self.send_command::<C>(&arguments, false).map(|_| ())
    }

    /// Answers a call promised for later ([`Responders::add_deferred`](crate::amp::Responders::add_deferred)) with the response or
    /// a declared error, as a plain responder would have: a fatal declared error, or a
    /// response that cannot be written (Twisted's `UNKNOWN`), closes the connection after it.
    /// Refused with [`CallRefused::Closed`] once the connection is closing.
    pub fn answer<C: Command>(
        &mut self,
        deferred: Deferred<C>,
        result: Result<C::Response, C::Error>,
    ) -> Result<(), CallRefused> {
        if !self.is_open() {
            return Err(CallRefused::Closed);
        }
        let result = refusal_or_box::<C>(result);
        let Some(ask) = deferred.ask else {
            // Twisted drops the connection when a command sent without `_ask` fails.
            if result.is_err() {
                if let Some(tx) = self.tx.as_deref_mut() {
                    tx.lose_connection_with(Reason::protocol(NO_ASK_FAILED));
                }
            }
            return Ok(());
        };
        let (reply, close) = reply_box(ask, result);
        self.send_box(&reply);
        if close {
            self.lose_connection();
        }
        Ok(())
    }

    /// Calls awaiting an answer (timed-out ones whose late answer has not come included).
    pub fn outstanding(&self) -> usize {
        self.calls.pending.len()
    }

    /// The connection's transport (timers, addresses, the handle); `None` once it is gone.
    pub fn transport(&mut self) -> Option<&mut Transport<'a, H::Message>> {
        self.tx.as_deref_mut()
    }

    /// This connection's handle, for other connections to post to (`None` without one).
    pub fn handle(&self) -> Option<&Handle<H::Message>> {
        self.tx.as_deref().and_then(|tx| tx.handle())
    }

    /// The current time; `None` once the connection is gone.
    pub fn now(&self) -> Option<Instant> {
        self.tx.as_deref().map(|tx| tx.now())
    }

    /// Closes gracefully once everything queued is sent; pending calls then fail with the
    /// connection's reason.
    pub fn lose_connection(&mut self) {
        if let Some(tx) = self.tx.as_deref_mut() {
            tx.lose_connection();
        }
    }

    /// True while calls can be made.
    pub fn is_open(&self) -> bool {
        !self.calls.lost && self.tx.as_deref().is_some_and(|tx| !tx.is_closing())
    }

    fn send_command<C: Command>(
        &mut self,
        arguments: &C::Arguments,
        ask: bool,
    ) -> Result<u64, CallRefused> {
        if !self.is_open() {
            return Err(CallRefused::Closed);
        }
        let mut amp_box = AmpBox::new();
        arguments
            .to_box(&mut amp_box)
            .map_err(CallRefused::Argument)?;
        // Twisted's `_nextTag`: every command takes a number, asked or not.
        let tag = self.calls.counter + 1;
        let _ = amp_box.insert(COMMAND, C::NAME);
        if ask {
            let _ = amp_box.insert(ASK, hex_tag(tag));
        }
        let wire = amp_box.to_wire();
        let max = self.calls.config.max_box_length;
        if wire.len() > max {
            return Err(CallRefused::BoxTooLong {
                len: wire.len(),
                max,
            });
        }
        let Some(tx) = self.tx.as_deref_mut() else {
            return Err(CallRefused::Closed);
        };
        tx.write(wire).map_err(CallRefused::Write)?;
        tx.stats_mut().frames_sent += 1;
        self.calls.counter = tag;
        Ok(tag)
    }

    /// Sends a box built here (an answer or an error); a refused write closes the connection.
    pub(crate) fn send_box(&mut self, amp_box: &AmpBox) {
        let wire = amp_box.to_wire();
        if let Some(tx) = self.tx.as_deref_mut() {
            match tx.write(wire) {
                Ok(()) => tx.stats_mut().frames_sent += 1,
                Err(WriteError::QueueFull { .. }) => tx.lose_connection_with(Reason::protocol(
                    "amp: answer refused by a full write queue",
                )),
                Err(_) => {}
            }
        }
    }
}

pub(crate) fn hex_tag(tag: u64) -> Bytes {
    let mut text = String::new();
    let _ = write!(text, "{tag:x}");
    Bytes::from(text)
}

/// Reads one of our own tags back: lowercase hexadecimal without leading zeros.
pub(crate) fn parse_tag(tag: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(tag).ok()?;
    let value = u64::from_str_radix(text, 16).ok()?;
    (hex_tag(value).as_ref() == tag).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_twisted_hex_counters_and_read_back_strictly() {
        assert_eq!(hex_tag(1), "1");
        assert_eq!(hex_tag(255), "ff");
        assert_eq!(parse_tag(b"ff"), Some(255));
        for bad in [&b"0ff"[..], b"FF", b"", b"-1", b"g"] {
            assert_eq!(parse_tag(bad), None, "{bad:?}");
        }
    }
}
