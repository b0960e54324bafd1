//! [`Responders`]: commands answered by name, now or later ([`Deferred`]), as Twisted words
//! its answers and errors.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::string::String;
use core::fmt::{self, Write as _};
use core::marker::PhantomData;

use bytes::Bytes;

use crate::amp::box_codec::AmpBox;
use crate::amp::command::{Command, DeclaredError, Fields};
use crate::amp::handler::AmpHandler;
use crate::amp::transport::AmpTransport;
use crate::amp::{ANSWER, ASK, ERROR, ERROR_CODE, ERROR_DESCRIPTION, UNKNOWN_ERROR_CODE};

/// The responders of an [`AmpHandler`], by command name.
pub struct Responders<H: AmpHandler> {
    pub(crate) by_name: BTreeMap<Bytes, Responder<H>>,
}

/// A registered responder: the answer box now, `None` for an answer promised for later
/// ([`Deferred`]), or why there is none.
pub(crate) type Responder<H> = Box<
    dyn Fn(&mut H, &AmpBox, &mut AmpTransport<'_, '_, H>) -> Result<Option<AmpBox>, Refusal> + Send,
>;

/// Why a responder produced no answer box.
pub(crate) enum Refusal {
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
    pub(crate) fn new() -> Self {
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
pub(crate) fn refusal_or_box<C: Command>(
    result: Result<C::Response, C::Error>,
) -> Result<AmpBox, Refusal> {
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
pub(crate) fn reply_box(ask: Bytes, result: Result<AmpBox, Refusal>) -> (AmpBox, bool) {
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
    pub(crate) ask: Option<Bytes>,
    pub(crate) command: PhantomData<fn() -> C>,
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

/// Python's `repr(bytes)`, for Twisted's `Unhandled Command: b'Name'` description.
pub(crate) fn python_bytes_repr(bytes: &[u8]) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unhandled_command_names_are_python_byte_reprs() {
        assert_eq!(python_bytes_repr(b"Nope"), "b'Nope'");
        assert_eq!(python_bytes_repr(b"it's"), "b\"it's\"");
        assert_eq!(python_bytes_repr(b"a'\"\x00\n"), "b'a\\'\"\\x00\\n'");
    }
}
