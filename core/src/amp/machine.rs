//! [`Amp`]: the AMP protocol machine (Twisted's `amp.AMP`), calls out and responders in.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use core::fmt::{self, Write as _};
use core::marker::PhantomData;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::amp::box_codec::{AmpBox, BoxCodec, DEFAULT_MAX_BOX_LENGTH};
use crate::amp::command::{Command, DeclaredError, Fields};
use crate::amp::types::ArgumentError;
use crate::amp::{ANSWER, ASK, COMMAND, ERROR, ERROR_CODE, ERROR_DESCRIPTION};
use crate::amp::{UNHANDLED_ERROR_CODE, UNKNOWN_ERROR_CODE};
use crate::framing::Decoder;
use crate::reason::Reason;
use crate::stream::{Handle, Protocol, Transport, WriteError};
use crate::time::Instant;
use crate::timer::TimerId;

const NO_ASK_FAILED: &str = "amp: a command sent without _ask failed";

/// The default bound on calls awaiting an answer on one connection.
pub const DEFAULT_MAX_OUTSTANDING: usize = 4096;

/// How an [`Amp`] connection is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Calls awaiting an answer at most; another call is refused with
    /// [`CallRefused::TooManyCalls`]. A call that timed out keeps its place until its late
    /// answer arrives, so a peer that never answers cannot make us remember without bound.
    pub max_outstanding: usize,
    /// How long a call waits for its answer before it fails with [`CallError::TimedOut`]
    /// (`None`: as long as the connection lasts, as in Twisted).
    pub call_timeout: Option<Duration>,
    /// The bound on one box on the wire, either way ([`DEFAULT_MAX_BOX_LENGTH`]).
    pub max_box_length: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_outstanding: DEFAULT_MAX_OUTSTANDING,
            call_timeout: None,
            max_box_length: DEFAULT_MAX_BOX_LENGTH,
        }
    }
}

impl Config {
    /// Sets [`max_outstanding`](Self::max_outstanding).
    pub fn with_max_outstanding(mut self, max: usize) -> Self {
        self.max_outstanding = max;
        self
    }

    /// Sets [`call_timeout`](Self::call_timeout).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = Some(timeout);
        self
    }

    /// Sets [`max_box_length`](Self::max_box_length).
    pub fn with_max_box_length(mut self, max: usize) -> Self {
        self.max_box_length = max;
        self
    }
}

/// What a user writes for an AMP connection: the responders, and whatever else the
/// connection does (Twisted's `AMP` subclass).
///
/// ```
/// use loomwork::amp::{fields, Amp, AmpHandler, AmpTransport, Command, NoError, Responders};
///
/// fields! {
///     /// `Sum`'s arguments.
///     pub struct SumArgs { pub a: i64, pub b: i64 }
/// }
/// fields! {
///     /// `Sum`'s response.
///     pub struct Total { pub total: i64 }
/// }
/// /// Twisted's `Sum` example command.
/// pub struct Sum;
/// impl Command for Sum {
///     const NAME: &'static str = "Sum";
///     type Arguments = SumArgs;
///     type Response = Total;
///     type Error = NoError;
/// }
///
/// struct Math;
/// impl Math {
///     fn sum(&mut self, args: SumArgs, _: &mut AmpTransport<'_, '_, Self>) -> Result<Total, NoError> {
///         Ok(Total { total: args.a + args.b })
///     }
/// }
/// impl AmpHandler for Math {
///     type Message = ();
///     fn responders(responders: &mut Responders<Self>) {
///         responders.add::<Sum>(Self::sum);
///     }
/// }
/// let protocol = Amp::new(Math); // a stream Protocol, for any runtime
/// # let _ = protocol;
/// ```
pub trait AmpHandler: Sized + 'static {
    /// Messages posted through the connection's handle (see
    /// [`Protocol::Message`](crate::stream::Protocol::Message)).
    type Message;

    /// Registers the responders by command name (Twisted's `Command.responder`).
    fn responders(responders: &mut Responders<Self>);

    /// The connection is established: the place for the first calls.
    fn connection_made(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        let _ = amp;
    }

    /// A message posted through the connection's handle: calls made here go to this
    /// connection's peer (how another connection calls through this one).
    fn message(&mut self, message: Self::Message, amp: &mut AmpTransport<'_, '_, Self>) {
        let _ = (message, amp);
    }

    /// A timer the handler set through [`AmpTransport::transport`] is due.
    fn timer_fired(&mut self, timer: TimerId, amp: &mut AmpTransport<'_, '_, Self>) {
        let _ = (timer, amp);
    }

    /// The peer shut down its writing side; the default closes once answers are flushed.
    fn read_closed(&mut self, amp: &mut AmpTransport<'_, '_, Self>) {
        amp.lose_connection();
    }

    /// The connection is gone, after every pending call has been failed; called once, last.
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = reason;
    }
}

/// The responders of an [`AmpHandler`], by command name.
pub struct Responders<H: AmpHandler> {
    by_name: BTreeMap<Bytes, Responder<H>>,
}

/// A registered responder: the answer box now, `None` for an answer promised for later
/// ([`Deferred`]), or why there is none.
type Responder<H> = Box<
    dyn Fn(&mut H, &AmpBox, &mut AmpTransport<'_, '_, H>) -> Result<Option<AmpBox>, Refusal> + Send,
>;

/// Why a responder produced no answer box.
enum Refusal {
    /// A declared error: its code and description, and whether it is fatal.
    Declared {
        code: &'static str,
        description: String,
        fatal: bool,
    },
    /// Anything else (bad arguments, an unserializable response): Twisted's `UNKNOWN`,
    /// after which the connection closes.
    Unknown,
}

impl<H: AmpHandler> Responders<H> {
    fn new() -> Self {
        Responders {
            by_name: BTreeMap::new(),
        }
    }

    /// Answers command `C` with `responder`, a plain method: arguments in, the response or a
    /// declared error out. A later registration for the same name replaces this one.
    pub fn add<C: Command>(
        &mut self,
        responder: impl Fn(&mut H, C::Arguments, &mut AmpTransport<'_, '_, H>) -> Result<C::Response, C::Error>
            + Send
            + 'static,
    ) -> &mut Self {
        let wrapped =
            move |handler: &mut H, amp_box: &AmpBox, amp: &mut AmpTransport<'_, '_, H>| {
                let arguments = C::Arguments::from_box(amp_box).map_err(|_| Refusal::Unknown)?;
                refusal_or_box::<C>(responder(handler, arguments, amp)).map(Some)
            };
        self.by_name
            .insert(Bytes::from_static(C::NAME.as_bytes()), Box::new(wrapped));
        self
    }

    /// Answers command `C` later: `responder` gets a [`Deferred`] to hand to
    /// [`AmpTransport::answer`] once the response is known (Twisted's responder returning a
    /// `Deferred`): after a timer, or after a call to another connection whose answer comes
    /// back through this connection's handle. Arguments that cannot be read are still
    /// answered `UNKNOWN` at once.
    pub fn add_deferred<C: Command>(
        &mut self,
        responder: impl Fn(&mut H, C::Arguments, Deferred<C>, &mut AmpTransport<'_, '_, H>)
            + Send
            + 'static,
    ) -> &mut Self {
        let wrapped =
            move |handler: &mut H, amp_box: &AmpBox, amp: &mut AmpTransport<'_, '_, H>| {
                let arguments = C::Arguments::from_box(amp_box).map_err(|_| Refusal::Unknown)?;
                let deferred = Deferred {
                    ask: amp_box.get(ASK.as_bytes()).cloned(),
                    command: PhantomData,
                };
                responder(handler, arguments, deferred, amp);
                Ok(None)
            };
        self.by_name
            .insert(Bytes::from_static(C::NAME.as_bytes()), Box::new(wrapped));
        self
    }

    /// True when a responder for `name` is registered.
    pub fn contains(&self, name: &[u8]) -> bool {
        self.by_name.contains_key(name)
    }
}

/// The response or declared error of command `C`, as an answer box or a refusal.
fn refusal_or_box<C: Command>(result: Result<C::Response, C::Error>) -> Result<AmpBox, Refusal> {
    match result {
        Ok(response) => {
            let mut answer = AmpBox::new();
            response.to_box(&mut answer).map_err(|_| Refusal::Unknown)?;
            Ok(answer)
        }
        Err(error) => Err(Refusal::Declared {
            code: error.code(),
            description: error.description(),
            fatal: error.is_fatal(),
        }),
    }
}

/// The box that answers call `ask`, and whether the connection closes after it (a fatal
/// declared error, or Twisted's `UNKNOWN`).
fn reply_box(ask: Bytes, result: Result<AmpBox, Refusal>) -> (AmpBox, bool) {
    let mut reply = AmpBox::new();
    let close = match result {
        Ok(answer) => {
            reply = answer;
            let _ = reply.insert(ANSWER, ask);
            false
        }
        Err(Refusal::Declared {
            code,
            description,
            fatal,
        }) => {
            let _ = reply.insert(ERROR, ask);
            let _ = reply.insert(ERROR_CODE, code);
            // Descriptions are ours; one too long for a value is cut, not refused.
            let mut description = Bytes::from(description);
            description.truncate(crate::amp::MAX_VALUE_LENGTH);
            let _ = reply.insert(ERROR_DESCRIPTION, description);
            fatal
        }
        Err(Refusal::Unknown) => {
            let _ = reply.insert(ERROR, ask);
            let _ = reply.insert(ERROR_CODE, UNKNOWN_ERROR_CODE);
            let _ = reply.insert(ERROR_DESCRIPTION, "Unknown Error");
            true
        }
    };
    (reply, close)
}

/// A promise to answer one call of command `C` later (Twisted's responder returning a
/// `Deferred`), from [`Responders::add_deferred`]; keep it, then hand it to
/// [`AmpTransport::answer`] on the same connection. It can travel (it is `Send`): to another
/// connection inside a message, and back. Answering consumes it, so a call is answered at
/// most once; a call sent without `_ask` takes no answer, and answering it does nothing.
#[must_use = "the peer waits for this answer"]
pub struct Deferred<C: Command> {
    ask: Option<Bytes>,
    command: PhantomData<fn() -> C>,
}

impl<C: Command> Deferred<C> {
    /// The call's tag (`_ask`); `None` for a command sent without one.
    pub fn tag(&self) -> Option<&Bytes> {
        self.ask.as_ref()
    }
}

impl<C: Command> fmt::Debug for Deferred<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deferred")
            .field("command", &C::NAME)
            .field("tag", &self.ask)
            .finish()
    }
}

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
enum Outcome {
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

type OnAnswer<H> = Box<dyn FnOnce(&mut H, Outcome, &mut AmpTransport<'_, '_, H>) + Send>;

enum Pending<H: AmpHandler> {
    /// Awaiting its answer; the callback runs exactly once.
    Waiting {
        on_answer: OnAnswer<H>,
        timer: Option<TimerId>,
    },
    /// Timed out: its callback ran; a late answer is dropped and frees the place.
    Abandoned,
}

/// The calls side of a connection: tags, pending callbacks, their timers.
struct Calls<H: AmpHandler> {
    config: Config,
    counter: u64,
    pending: BTreeMap<u64, Pending<H>>,
    timers: BTreeMap<TimerId, u64>,
    /// Set once the connection is gone: every later call is refused.
    lost: bool,
}

/// What an [`AmpHandler`] acts through: calls to the peer, plus the connection's
/// [`Transport`] while it is up.
pub struct AmpTransport<'t, 'a, H: AmpHandler> {
    tx: Option<&'t mut Transport<'a, H::Message>>,
    calls: &'t mut Calls<H>,
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
        if self.calls.pending.len() >= self.calls.config.max_outstanding {
            return Err(CallRefused::TooManyCalls {
                max: self.calls.config.max_outstanding,
            });
        }
        let tag = self.send_command::<C>(&arguments, true)?;
        let timer = match (self.calls.config.call_timeout, self.tx.as_deref_mut()) {
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

    /// Answers a call promised for later ([`Responders::add_deferred`]) with the response or
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
    fn send_box(&mut self, amp_box: &AmpBox) {
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

fn hex_tag(tag: u64) -> Bytes {
    let mut text = String::new();
    let _ = write!(text, "{tag:x}");
    Bytes::from(text)
}

/// Reads one of our own tags back: lowercase hexadecimal without leading zeros.
fn parse_tag(tag: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(tag).ok()?;
    let value = u64::from_str_radix(text, 16).ok()?;
    (hex_tag(value).as_ref() == tag).then_some(value)
}

/// Python's `repr(bytes)`, for Twisted's `Unhandled Command: b'Name'` description.
fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from("b");
    out.push(quote);
    for &b in bytes {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\'' if quote == '\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out.push(quote);
    out
}

/// An AMP connection as a stream [`Protocol`]: boxes in and out through [`BoxCodec`],
/// answers routed to their callers by tag (in any order), commands to their responders by
/// name. It runs on every runtime, under the policies and inside `Tls<P>` unchanged.
///
/// Semantics follow Twisted's `amp.py`: an unknown command is answered `UNHANDLED`
/// (`Unhandled Command: b'Name'`); a declared error is answered with its code (a fatal one
/// then closes); a responder that cannot run (bad arguments) or whose response cannot be
/// written is answered `UNKNOWN` / `Unknown Error` and the connection closes. A box that
/// is malformed, answers a call never made, or is neither a command nor an answer ends only
/// this connection, with [`Reason::Protocol`] (or `LimitExceeded { limit: FrameLength }`).
/// When the connection ends, every pending call fails exactly once with its reason.
pub struct Amp<H: AmpHandler> {
    handler: H,
    codec: BoxCodec,
    calls: Calls<H>,
    responders: Responders<H>,
    state: State,
}

/// The machine's one state variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Boxes flow both ways.
    Open,
    /// The peer broke the protocol: input is dropped while the connection closes.
    Failed,
    /// `connection_lost` has run.
    Lost,
}

impl<H: AmpHandler> Amp<H> {
    /// An AMP connection with the default [`Config`].
    pub fn new(handler: H) -> Self {
        Amp::with_config(handler, Config::default())
    }

    /// An AMP connection with `config`.
    pub fn with_config(handler: H, config: Config) -> Self {
        let mut responders = Responders::new();
        H::responders(&mut responders);
        Amp {
            handler,
            codec: BoxCodec::new().with_max_length(config.max_box_length),
            calls: Calls {
                config,
                counter: 0,
                pending: BTreeMap::new(),
                timers: BTreeMap::new(),
                lost: false,
            },
            responders,
            state: State::Open,
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// Calls awaiting an answer.
    pub fn outstanding(&self) -> usize {
        self.calls.pending.len()
    }

    fn with_amp(
        &mut self,
        tx: &mut Transport<'_, H::Message>,
        f: impl FnOnce(&mut H, &mut AmpTransport<'_, '_, H>),
    ) {
        let mut amp = AmpTransport {
            tx: Some(tx),
            calls: &mut self.calls,
        };
        f(&mut self.handler, &mut amp);
    }

    fn fail(&mut self, tx: &mut Transport<'_, H::Message>, reason: Reason) {
        self.state = State::Failed;
        tx.lose_connection_with(reason);
    }

    fn box_received(&mut self, amp_box: AmpBox, tx: &mut Transport<'_, H::Message>) {
        if let Some(tag) = amp_box.get(ANSWER.as_bytes()).cloned() {
            self.answer_received(&tag, Outcome::Answer(amp_box), tx);
        } else if let Some(tag) = amp_box.get(ERROR.as_bytes()).cloned() {
            let code = amp_box.get(ERROR_CODE.as_bytes()).cloned();
            let description = amp_box.get(ERROR_DESCRIPTION.as_bytes());
            let (Some(code), Some(description)) = (code, description) else {
                return self.fail(
                    tx,
                    Reason::protocol("amp: error box without code or description"),
                );
            };
            let description = String::from_utf8_lossy(description).into_owned();
            self.answer_received(&tag, Outcome::Error { code, description }, tx);
        } else if let Some(name) = amp_box.get(COMMAND.as_bytes()).cloned() {
            self.command_received(&name, &amp_box, tx);
        } else {
            self.fail(
                tx,
                Reason::protocol("amp: box is neither a command nor an answer"),
            );
        }
    }

    fn answer_received(
        &mut self,
        tag: &[u8],
        outcome: Outcome,
        tx: &mut Transport<'_, H::Message>,
    ) {
        let entry = parse_tag(tag).and_then(|tag| self.calls.pending.remove(&tag));
        match entry {
            Some(Pending::Waiting { on_answer, timer }) => {
                if let Some(timer) = timer {
                    tx.cancel_timer(timer);
                    self.calls.timers.remove(&timer);
                }
                self.with_amp(tx, |handler, amp| on_answer(handler, outcome, amp));
            }
            Some(Pending::Abandoned) => {}
            None => self.fail(
                tx,
                Reason::protocol("amp: answer to a call that was never made"),
            ),
        }
    }

    fn command_received(
        &mut self,
        name: &Bytes,
        amp_box: &AmpBox,
        tx: &mut Transport<'_, H::Message>,
    ) {
        let ask = amp_box.get(ASK.as_bytes()).cloned();
        let result = match self.responders.by_name.get(name) {
            Some(responder) => {
                let mut amp = AmpTransport {
                    tx: Some(&mut *tx),
                    calls: &mut self.calls,
                };
                responder(&mut self.handler, amp_box, &mut amp)
            }
            None => Err(Refusal::Declared {
                code: UNHANDLED_ERROR_CODE,
                description: format!("Unhandled Command: {}", python_bytes_repr(name)),
                fatal: false,
            }),
        };
        let Some(ask) = ask else {
            // Twisted drops the connection when a command sent without `_ask` fails.
            if result.is_err() {
                self.fail(tx, Reason::protocol(NO_ASK_FAILED));
            }
            return;
        };
        let (reply, close) = match result {
            Ok(None) => return, // answered later, through `AmpTransport::answer`
            Ok(Some(answer)) => reply_box(ask, Ok(answer)),
            Err(refusal) => reply_box(ask, Err(refusal)),
        };
        let mut amp = AmpTransport {
            tx: Some(&mut *tx),
            calls: &mut self.calls,
        };
        amp.send_box(&reply);
        if close {
            tx.lose_connection();
        }
    }
}

impl<H: AmpHandler> Protocol for Amp<H> {
    type Message = H::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_amp(tx, |handler, amp| handler.connection_made(amp));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, Self::Message>) {
        loop {
            if self.state != State::Open {
                data.clear();
                return;
            }
            if tx.is_closing() || !tx.is_reading() {
                return;
            }
            match self.codec.decode(data) {
                Ok(Some(pairs)) => {
                    tx.stats_mut().frames_received += 1;
                    match AmpBox::parse(pairs) {
                        Ok(amp_box) => self.box_received(amp_box, tx),
                        Err(_) => self.fail(tx, Reason::protocol("amp: malformed box")),
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    tx.stats_mut().frames_rejected += 1;
                    data.clear();
                    self.fail(tx, Reason::from(error));
                    return;
                }
            }
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_amp(tx, |handler, amp| handler.read_closed(amp));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, Self::Message>) {
        let Some(tag) = self.calls.timers.remove(&timer) else {
            self.with_amp(tx, |handler, amp| handler.timer_fired(timer, amp));
            return;
        };
        let Some(pending) = self.calls.pending.get_mut(&tag) else {
            return;
        };
        if let Pending::Waiting { .. } = pending {
            if let Pending::Waiting { on_answer, .. } =
                core::mem::replace(pending, Pending::Abandoned)
            {
                self.with_amp(tx, |handler, amp| {
                    on_answer(handler, Outcome::TimedOut, amp)
                });
            }
        }
    }

    fn message(&mut self, message: Self::Message, tx: &mut Transport<'_, Self::Message>) {
        self.with_amp(tx, |handler, amp| handler.message(message, amp));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.state = State::Lost;
        self.calls.lost = true;
        self.calls.timers.clear();
        let pending = core::mem::take(&mut self.calls.pending);
        for (_, entry) in pending {
            if let Pending::Waiting { on_answer, .. } = entry {
                let mut amp = AmpTransport {
                    tx: None,
                    calls: &mut self.calls,
                };
                on_answer(&mut self.handler, Outcome::Lost(reason.clone()), &mut amp);
            }
        }
        self.handler.connection_lost(reason);
    }
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

    #[test]
    fn unhandled_command_names_are_python_byte_reprs() {
        assert_eq!(python_bytes_repr(b"Nope"), "b'Nope'");
        assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(python_bytes_repr(b"a'\"\x00\n"), "b'a\\'\"\\x00\\n'");
    }
}
