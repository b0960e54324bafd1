//! [`Amp`]: the AMP protocol machine (Twisted's `amp.AMP`), boxes in and out.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;

use bytes::{Bytes, BytesMut};

use crate::amp::box_codec::{AmpBox, BoxCodec};
use crate::amp::handler::{AmpHandler, Config};
use crate::amp::responders::{python_bytes_repr, reply_box, Refusal, Responders};
use crate::amp::transport::{parse_tag, AmpTransport, Calls, Outcome, Pending, NO_ASK_FAILED};
use crate::amp::UNHANDLED_ERROR_CODE;
use crate::amp::{ANSWER, ASK, COMMAND, ERROR, ERROR_CODE, ERROR_DESCRIPTION};
use crate::framing::Decoder;
use crate::reason::Reason;
use crate::stream::{Protocol, Transport};
use crate::timer::TimerId;

/// An AMP connection as a stream [`Protocol`]: boxes in and out through [`BoxCodec`],
/// answers routed to their callers by tag (in any order), commands to their responders by
/// name. It runs on every runtime, under the policies and inside `Tls<P>` unchanged.
///
/// Semantics follow Twisted's `amp.py` (docs/twisted-behaviour.md §14): an unknown command
/// is answered `UNHANDLED` (`Unhandled Command: b'Name'`, AM-5); a declared error is answered
/// with its code (a fatal one then closes); a responder that cannot run (bad arguments) or
/// whose response cannot be written is answered `UNKNOWN` / `Unknown Error` and the
/// connection closes (AM-6). A box that is malformed, answers a call never made, or is
/// neither a command nor an answer ends only this connection, with [`Reason::Protocol`] (or
/// `LimitExceeded { limit: FrameLength }`). When the connection ends, every pending call
/// fails exactly once with its reason (AM-9).
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
        // An answer cancels its call's timer, so the call still waits; checked, not trusted.
        let Some(Pending::Waiting { .. }) = self.calls.pending.get(&tag) else {
            return;
        };
        // The call keeps its place, abandoned, until its late answer arrives.
        if let Some(Pending::Waiting { on_answer, .. }) =
            self.calls.pending.insert(tag, Pending::Abandoned)
        {
            self.with_amp(tx, |handler, amp| {
                on_answer(handler, Outcome::TimedOut, amp)
            });
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
