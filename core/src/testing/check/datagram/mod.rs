//! `DatagramCheck`: runs a user's [`DatagramProtocol`] through schedules of operations
//! (datagrams from a few peers, whole or truncated; sends and socket commands failing, ICMP
//! refusals among them; a socket that stops taking sends; time passing; messages, closes,
//! aborts and fatal socket errors) and checks, after every operation, what every loomwork
//! endpoint must keep to. The twin of [`StreamCheck`](crate::testing::StreamCheck): one
//! description of the protocol serves the fuzz driver ([`DatagramCheck::fuzz`], feature
//! `fuzz`), the one-call properties (feature `proptest`, [`crate::testing::properties`]) and
//! hand-written schedules ([`DatagramCheck::run`]).
//!
//! # What is checked
//! After every operation:
//! - `start_protocol` ran once, before anything else; `stop_protocol` at most once, after
//!   everything else, and exactly when the endpoint has stopped, with the reason it stopped
//!   with;
//! - no send was refused because the protocol had already closed the endpoint (the datagram
//!   is lost, and nobody tells the protocol but the error it ignored);
//! - the output queue within its limits (outputs and bytes); every send within its
//!   destination family's payload limit and [`Config::max_send_size`]; nothing output after
//!   the final close, and at most one final close, none before `stop_protocol`;
//! - a deadline only while open or closing; a close's deadline no later than
//!   [`Config::close_timeout`] after the close was asked, and never outlived;
//! - a deadline that keeps coming due without time moving (a timer storm) is reported;
//! - your own invariant ([`invariant`](DatagramCheck::invariant)).
//!
//! At the end of each run a close is asked from outside with the socket taking everything:
//! the endpoint must stop within its close deadline, with exactly one final close and
//! `stop_protocol` exactly once. A panic in the protocol is the fuzzer's (or proptest's) to
//! catch and shrink.

mod op;
pub(crate) mod session;
mod watched;

#[cfg(feature = "fuzz")]
mod fuzz;
#[cfg(feature = "proptest")]
pub(crate) mod properties;
#[cfg(all(test, feature = "fuzz", feature = "proptest"))]
mod tests;

pub use op::DatagramOp;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::datagram::{Command, Config, DatagramProtocol};
use crate::reason::Reason;
use crate::testing::Violation;

use session::DatagramSession;

/// What a run left: what the endpoint sent, the socket commands it gave and why it stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatagramOutcome {
    /// Every datagram the socket sent, in order, with where it went (a plain send on the
    /// connected socket carries the peer's address; `None` only for a send on a socket
    /// connected to nobody).
    pub sent: Vec<(Bytes, Option<SocketAddr>)>,
    /// Every socket command carried out (or failed), in order.
    pub commands: Vec<Command>,
    /// Why the endpoint stopped, if it has.
    pub reason: Option<Reason>,
}

impl DatagramOutcome {
    /// The datagrams sent to `peer`, in order.
    pub fn sent_to(&self, peer: SocketAddr) -> Vec<Bytes> {
        self.sent
            .iter()
            .filter(|(_, to)| *to == Some(peer))
            .map(|(data, _)| data.clone())
            .collect()
    }
}

/// A user's invariant over one protocol.
type Invariant<P> = Box<dyn Fn(&P) -> Result<(), String>>;

/// A datagram protocol under check: how to build it fresh for every run, its endpoint's
/// settings and address, and the invariant to hold. Build it once; run it many times.
///
/// The endpoint is bound to [`local`](Self::local) (`10.0.0.1:12345` by default) and hears
/// from four peers, [`peer_address`](Self::peer_address) `0` to `3`.
///
/// ```
/// use loomwork::bytes::Bytes;
/// use loomwork::datagram::{DatagramProtocol, DatagramTransport};
/// use loomwork::testing::{DatagramCheck, DatagramOp};
/// # use std::net::SocketAddr;
///
/// struct Echo;
/// impl DatagramProtocol for Echo {
///     type Message = ();
///     fn datagram_received(&mut self, data: Bytes, from: SocketAddr, _: bool,
///                          tx: &mut DatagramTransport<'_>) {
///         let _ = tx.send_to(data, from);
///     }
/// }
///
/// let check = DatagramCheck::protocol(|| Echo);
/// let outcome = check
///     .run(vec![
///         DatagramOp::Writable { on: false },
///         DatagramOp::Send { peer: 0, data: b"ping".to_vec(), truncated: false },
///         DatagramOp::Send { peer: 1, data: b"pong".to_vec(), truncated: false },
///         DatagramOp::Writable { on: true },
///     ])
///     .unwrap();
/// assert_eq!(outcome.sent_to(check.peer_address(0)), ["ping"]);
/// assert_eq!(outcome.sent_to(check.peer_address(1)), ["pong"]);
/// assert_eq!(outcome.reason, Some(loomwork::Reason::Done));
/// ```
pub struct DatagramCheck<P: DatagramProtocol> {
    make: Box<dyn Fn() -> P>,
    config: Config,
    local: SocketAddr,
    invariant: Option<Invariant<P>>,
    #[cfg(feature = "fuzz")]
    messages: Option<fuzz::MessageMaker<P::Message>>,
    #[cfg(feature = "proptest")]
    pub(crate) cases: u32,
}

impl<P> DatagramCheck<P>
where
    P: DatagramProtocol + 'static,
    P::Message: Debug + 'static,
{
    /// A check of the protocol that `make` builds, fresh for every run.
    pub fn protocol(make: impl Fn() -> P + 'static) -> Self {
        DatagramCheck {
            make: Box::new(make),
            config: Config::default(),
            local: SocketAddr::from(([10, 0, 0, 1], 12_345)),
            invariant: None,
            #[cfg(feature = "fuzz")]
            messages: None,
            #[cfg(feature = "proptest")]
            cases: 256,
        }
    }

    /// The endpoint's settings (default [`Config::default`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The address the endpoint is bound to (default `10.0.0.1:12345`); an IPv6 address makes
    /// the peers IPv6 too.
    pub fn local(mut self, local: SocketAddr) -> Self {
        self.local = local;
        self
    }

    /// An invariant of your protocol, checked after every operation: `Err` with what is wrong
    /// fails the run.
    ///
    /// ```
    /// # use loomwork::bytes::Bytes;
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// # use loomwork::testing::{DatagramCheck, DatagramOp};
    /// # use std::net::SocketAddr;
    /// /// Remembers every peer it has heard from: one entry per source address, forever.
    /// #[derive(Default)]
    /// struct Registry { peers: Vec<SocketAddr> }
    /// impl DatagramProtocol for Registry {
    ///     type Message = ();
    ///     fn datagram_received(&mut self, _: Bytes, from: SocketAddr, _: bool,
    ///                          _: &mut DatagramTransport<'_>) {
    ///         if !self.peers.contains(&from) {
    ///             self.peers.push(from);
    ///         }
    ///     }
    /// }
    ///
    /// let check = DatagramCheck::protocol(Registry::default)
    ///     .invariant(|r| match r.peers.len() {
    ///         n if n > 2 => Err(format!("{n} peers remembered")),
    ///         _ => Ok(()),
    ///     });
    /// let ops = (0..3).map(|peer| DatagramOp::Send { peer, data: vec![], truncated: false });
    /// let violation = check.run(ops).unwrap_err();
    /// assert!(violation.what.contains("3 peers remembered"));
    /// ```
    pub fn invariant(mut self, check: impl Fn(&P) -> Result<(), String> + 'static) -> Self {
        self.invariant = Some(Box::new(check));
        self
    }

    /// The endpoint settings in use.
    pub fn endpoint_config(&self) -> &Config {
        &self.config
    }

    /// The address of peer `n` (modulo four): `192.168.1.1`, port 50,001 + `n % 4`, or
    /// `[fd00::1]` on the same ports when the endpoint is bound to an IPv6 address.
    ///
    /// ```
    /// # use loomwork::testing::DatagramCheck;
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// # struct Sink;
    /// # impl DatagramProtocol for Sink {
    /// #     type Message = ();
    /// #     fn datagram_received(&mut self, _: loomwork::bytes::Bytes, _: std::net::SocketAddr,
    /// #                          _: bool, _: &mut DatagramTransport<'_>) {}
    /// # }
    /// let check = DatagramCheck::protocol(|| Sink);
    /// assert_eq!(check.peer_address(5), "192.168.1.1:50002".parse().unwrap());
    /// ```
    pub fn peer_address(&self, n: usize) -> SocketAddr {
        let port = 50_001 + (n % 4) as u16;
        if self.local.is_ipv6() {
            SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 1], port))
        } else {
            SocketAddr::from(([192, 168, 1, 1], port))
        }
    }

    /// Runs `ops` against a fresh endpoint (started, with what `start_protocol` asked for
    /// carried out), then closes it from outside: the first broken invariant, or what the
    /// endpoint sent and why it stopped.
    pub fn run(
        &self,
        ops: impl IntoIterator<Item = DatagramOp<P::Message>>,
    ) -> Result<DatagramOutcome, Violation> {
        let mut session = DatagramSession::new(self);
        session.start()?;
        for op in ops {
            session.apply(op)?;
        }
        session.finish()?;
        Ok(session.outcome())
    }
}
