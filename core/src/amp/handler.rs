//! [`AmpHandler`]: what a user writes for an AMP connection, and the connection's [`Config`].

use core::time::Duration;

use crate::amp::box_codec::DEFAULT_MAX_BOX_LENGTH;
use crate::amp::responders::Responders;
use crate::amp::transport::AmpTransport;
use crate::reason::Reason;
use crate::timer::TimerId;

/// The default bound on calls awaiting an answer on one connection.
pub const DEFAULT_MAX_OUTSTANDING: usize = 4096;

/// How an [`Amp`](crate::amp::Amp) connection is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Calls awaiting an answer at most; another call is refused with
    /// [`CallRefused::TooManyCalls`](crate::amp::CallRefused::TooManyCalls). A call that timed out keeps its place until its late
    /// answer arrives, so a peer that never answers cannot make us remember without bound.
    pub max_outstanding: usize,
    /// How long a call waits for its answer before it fails with [`CallError::TimedOut`](crate::amp::CallError::TimedOut)
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
