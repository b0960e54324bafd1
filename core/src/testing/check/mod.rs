//! `StreamCheck`: runs a user's protocol or server factory through schedules of operations
//! (peers connecting, sending in any chunking, reading slowly or not at all, shutting down,
//! resetting; time passing; messages, closes and aborts through handles) and checks, after
//! every operation, what every loomwork protocol must keep to. One description of the server
//! serves the fuzz driver ([`StreamCheck::fuzz`], feature `fuzz`), the one-call properties
//! (feature `proptest`, [`crate::testing::properties`]) and hand-written schedules
//! ([`StreamCheck::run`]).
//!
//! # What is checked
//! After every operation, for every connection:
//! - `connection_made` ran once, before anything else; `connection_lost` at most once, after
//!   everything else, and exactly when the connection has ended, with the reason it ended with;
//! - no write was refused because the protocol had already closed, aborted or shut down
//!   writing (those bytes would be lost; a runtime cannot tell the protocol). Writes made while
//!   handling a message are exempt: a message races with the close by nature;
//! - no input consumed after a write was refused as over the queue's cap unless the protocol
//!   paused reading or closed in between: its replies are being dropped or kept without bound
//!   (see [`WriteError::QueueFull`](crate::stream::WriteError::QueueFull)); a test protocol
//!   that loses writes on purpose opts out of these two with
//!   [`allow_lost_writes`](StreamCheck::allow_lost_writes);
//! - at most one close or abort of the socket, none before the protocol's end, no half-close
//!   after it; nothing queued after the end; the write queue within its cap and the receive
//!   buffer within its limit (plus one read); a closed connection wants no I/O and no time;
//! - a deadline that keeps coming due without time moving (a timer storm) is reported;
//! - your own invariants ([`invariant`](StreamCheck::invariant),
//!   [`factory_invariant`](StreamCheck::factory_invariant)).
//!
//! At the end of each run every connection must end with exactly one reason, as
//! [`Ending`] says. A panic in the protocol is the fuzzer's (or proptest's) to catch and
//! shrink.
//!
//! What the checks cannot see is a protocol's own heap: one that stops reading, or closes,
//! is bounded; one that keeps reading while its writes are refused is reported; one that
//! holds its output back in a buffer of its own while reading on is found only through an
//! invariant that looks at that buffer.

pub(crate) mod datagram;
mod op;
pub(crate) mod session;
mod trace;
mod watched;

#[cfg(feature = "fuzz")]
mod fuzz;

pub use datagram::{DatagramCheck, DatagramOp, DatagramOutcome};
pub use op::Op;

use alloc::boxed::Box;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Debug};
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::reason::Reason;
use crate::stream::{Config, Protocol, ServerFactory, ServerMessage};

use session::Session;

/// How a run ends, after its operations: what the protocol must do to end every connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A graceful close is asked through every handle, as a server shutdown does, and the
    /// peers read everything: every connection must end within the close deadline and linger.
    /// Every protocol passes this unless the driver itself is broken; it is the default.
    Shutdown,
    /// Every peer shuts down its sending side and reads everything: every connection must end
    /// within `within` (the default `read_closed` closes).
    PeerEof {
        /// How long the protocol may take.
        within: Duration,
    },
    /// Every peer goes silent (sending nothing, reading everything): every connection must
    /// end within `within`, by an idle timeout of the protocol's own.
    Idle {
        /// How long the protocol may take.
        within: Duration,
    },
}

/// What a run left: every accepted connection's output and end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The connections, in the order they were accepted.
    pub connections: Vec<Served>,
    /// Connections the factory refused.
    pub refused: usize,
}

/// One connection of an [`Outcome`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Served {
    /// The peer's address (`192.168.1.1`, port 50,000 plus its ordinal).
    pub peer: SocketAddr,
    /// Everything its peer read.
    pub written: Bytes,
    /// Why it ended, if it has.
    pub reason: Option<Reason>,
}

/// A broken invariant: which connection, what, and the operations that led there.
#[derive(Clone, PartialEq, Eq)]
pub struct Violation {
    /// The connection's ordinal (1 for the first accepted), when one connection broke it.
    pub connection: Option<usize>,
    /// Its peer's address.
    pub peer: Option<SocketAddr>,
    /// What went wrong.
    pub what: String,
    /// The latest operations run, oldest first.
    pub trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.connection, self.peer) {
            (Some(n), Some(peer)) => write!(f, "connection {n} (peer {peer}): ")?,
            _ => f.write_str("server: ")?,
        }
        writeln!(f, "{}", self.what)?;
        f.write_str("operations, latest last:")?;
        for op in &self.trace {
            write!(f, "\n  {op}")?;
        }
        Ok(())
    }
}

impl Debug for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::error::Error for Violation {}

/// A user's invariant over one protocol.
type Invariant<T> = Box<dyn Fn(&T) -> Result<(), String>>;

/// A server under check: how to build it fresh for every run, its connection settings, the
/// invariants to hold and how runs end. Build it once; run it many times.
///
/// ```
/// use loomwork::bytes::Bytes;
/// use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
/// use loomwork::testing::{Op, StreamCheck};
///
/// struct Shout;
/// impl FrameHandler for Shout {
///     type Codec = LineCodec;
///     type Message = ();
///     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
///         let _ = tx.send_frame(line.to_ascii_uppercase());
///     }
/// }
///
/// let check = StreamCheck::protocol(|| Framed::new(Shout, LineCodec::new()));
/// let outcome = check
///     .run(vec![
///         Op::Send { conn: 0, data: b"he".to_vec() },
///         Op::Send { conn: 0, data: b"y\r\n".to_vec() },
///     ])
///     .unwrap();
/// assert_eq!(outcome.connections[0].written, "HEY\r\n");
/// ```
pub struct StreamCheck<F: ServerFactory> {
    make_factory: Box<dyn Fn() -> F>,
    config: Config,
    invariant: Option<Invariant<F::Protocol>>,
    factory_invariant: Option<Invariant<F>>,
    ending: Ending,
    max_connections: usize,
    lost_writes_allowed: bool,
    #[cfg(feature = "fuzz")]
    messages: Option<fuzz::MessageMaker<ServerMessage<F>>>,
    #[cfg(feature = "proptest")]
    pub(crate) cases: u32,
}

impl<F> StreamCheck<F>
where
    F: ServerFactory,
    ServerMessage<F>: Send + Debug + 'static,
{
    /// A check of the server that `make` builds, fresh for every run (so shared state, a chat
    /// room say, starts empty each time).
    pub fn server(make: impl Fn() -> F + 'static) -> Self {
        StreamCheck {
            make_factory: Box::new(make),
            config: Config::default(),
            invariant: None,
            factory_invariant: None,
            ending: Ending::Shutdown,
            max_connections: 8,
            lost_writes_allowed: false,
            #[cfg(feature = "fuzz")]
            messages: None,
            #[cfg(feature = "proptest")]
            cases: 256,
        }
    }

    /// The connection settings the server runs with (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// An invariant of your protocol, checked on every connection after every operation:
    /// `Err` with what is wrong fails the run.
    pub fn invariant(
        mut self,
        check: impl Fn(&F::Protocol) -> Result<(), String> + 'static,
    ) -> Self {
        self.invariant = Some(Box::new(check));
        self
    }

    /// An invariant of the factory (shared state, such as a room's members), checked after
    /// every operation.
    pub fn factory_invariant(mut self, check: impl Fn(&F) -> Result<(), String> + 'static) -> Self {
        self.factory_invariant = Some(Box::new(check));
        self
    }

    /// How each run ends (default [`Ending::Shutdown`]).
    pub fn ending(mut self, ending: Ending) -> Self {
        self.ending = ending;
        self
    }

    /// How many connections a run accepts at most (default 8); later connects are ignored.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Does not report writes the protocol loses: refused because it had already closed,
    /// aborted or shut down writing, or refused as over the queue's cap while it reads on. For
    /// a protocol that makes them on purpose, to put the connection's refusals under test
    /// (loomwork's own chaotic test protocols do); a real protocol should not need it.
    pub fn allow_lost_writes(mut self) -> Self {
        self.lost_writes_allowed = true;
        self
    }

    /// The connection settings in use.
    pub fn connection_config(&self) -> &Config {
        &self.config
    }

    /// Runs `ops` against a fresh server, one connection already accepted, then ends the run
    /// as [`Ending`] says: the first broken invariant, or what every connection wrote and why
    /// it ended.
    pub fn run(
        &self,
        ops: impl IntoIterator<Item = Op<ServerMessage<F>>>,
    ) -> Result<Outcome, Violation> {
        let mut session = Session::new(self);
        session.apply(Op::Connect)?;
        for op in ops {
            session.apply(op)?;
        }
        session.finish()?;
        Ok(session.outcome())
    }
}

impl<P> StreamCheck<EachConnection<P>>
where
    P: Protocol + 'static,
    P::Message: Send + Debug + 'static,
{
    /// A check of a protocol: `make` builds one per connection, with no shared state.
    pub fn protocol(make: impl Fn() -> P + 'static) -> Self {
        let make: Rc<dyn Fn() -> P> = Rc::new(make);
        StreamCheck::server(move || EachConnection(Rc::clone(&make)))
    }
}

/// The factory behind [`StreamCheck::protocol`]: a fresh protocol for every connection.
pub struct EachConnection<P>(Rc<dyn Fn() -> P>);

impl<P: Protocol> ServerFactory for EachConnection<P> {
    type Protocol = P;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<P> {
        Some((self.0)())
    }
}
