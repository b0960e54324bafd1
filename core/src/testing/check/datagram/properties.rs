//! The datagram properties (feature `proptest`): [`DatagramCheck::stops_exactly_once`] and
//! [`DatagramCheck::same_replies_however_interleaved`], and the schedule strategies behind
//! them, re-exported from [`crate::testing::properties`].

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::time::Duration;

use proptest::collection;
use proptest::prelude::*;

use super::session::DatagramSession;
use super::{DatagramCheck, DatagramOp, DatagramOutcome};
use crate::datagram::{Config, DatagramProtocol};
use crate::reason::{IoKind, Reason, Timeout};
use crate::testing::properties::PropertyFailure;

/// Most datagrams one case of
/// [`same_replies_however_interleaved`](DatagramCheck::same_replies_however_interleaved)
/// sends.
const MAX_DATAGRAMS: usize = 24;

// ----- strategies -------------------------------------------------------------------------

/// A schedule of up to 48 operations on an endpoint: datagrams (from `inputs`, some
/// truncated) from four peers, a socket that stops taking sends and drains a few at a time,
/// failed sends (ICMP refusals among them) and commands, time passing and jumps to deadlines,
/// closes, aborts and fatal socket errors. No messages are posted (see
/// [`datagram_schedule_with_messages`]).
///
/// ```
/// use loomwork::testing::properties::{datagram_schedule, text_lines};
/// let schedules = datagram_schedule::<()>(text_lines(2));
/// # let _ = schedules;
/// ```
pub fn datagram_schedule<M: Debug + Clone + 'static>(
    inputs: impl Strategy<Value = Vec<u8>> + 'static,
) -> BoxedStrategy<Vec<DatagramOp<M>>> {
    collection::vec(op_without_message(inputs.boxed()), 0..48).boxed()
}

/// [`datagram_schedule`], with messages from `messages` posted through the handle too.
pub fn datagram_schedule_with_messages<M: Debug + Clone + 'static>(
    inputs: impl Strategy<Value = Vec<u8>> + 'static,
    messages: impl Strategy<Value = M> + 'static,
) -> BoxedStrategy<Vec<DatagramOp<M>>> {
    let post = messages.prop_map(|message| DatagramOp::Post { message });
    let op = prop_oneof![6 => op_without_message(inputs.boxed()), 1 => post];
    collection::vec(op, 0..48).boxed()
}

fn op_without_message<M: Debug + Clone + 'static>(
    inputs: BoxedStrategy<Vec<u8>>,
) -> BoxedStrategy<DatagramOp<M>> {
    let peer = 0..4usize;
    let send =
        (peer.clone(), inputs, prop::bool::weighted(0.1)).prop_map(|(peer, data, truncated)| {
            DatagramOp::Send {
                peer,
                data,
                truncated,
            }
        });
    prop_oneof![
        8 => send,
        2 => (0..8usize).prop_map(|max| DatagramOp::Drain { max }),
        2 => any::<bool>().prop_map(|on| DatagramOp::Writable { on }),
        2 => (0..20_000u64).prop_map(|ms| DatagramOp::Advance(Duration::from_millis(ms))),
        1 => Just(DatagramOp::NextDeadline),
        1 => Just(DatagramOp::SendFailed { to: None, reason: Reason::Refused }),
        1 => (proptest::option::of(peer), reason())
            .prop_map(|(to, reason)| DatagramOp::SendFailed { to, reason }),
        1 => reason().prop_map(|reason| DatagramOp::CommandFailed { reason }),
        1 => Just(DatagramOp::Close),
        1 => Just(DatagramOp::Abort),
        1 => reason().prop_map(|reason| DatagramOp::SocketFailed { reason }),
    ]
    .boxed()
}

/// A reason the operating system gives for a failed send, command or socket.
fn reason() -> impl Strategy<Value = Reason> {
    let io = |kind| Reason::Io { kind, code: None };
    prop_oneof![
        Just(Reason::Refused),
        Just(Reason::Unreachable),
        Just(io(IoKind::MessageTooLong)),
        Just(io(IoKind::OutOfResources)),
        Just(Reason::TimedOut(Timeout::Os)),
        Just(Reason::Lost),
    ]
}

// ----- properties -------------------------------------------------------------------------

impl<P> DatagramCheck<P>
where
    P: DatagramProtocol + 'static,
    P::Message: Debug + Clone + 'static,
{
    /// How many cases each property runs (default 256).
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases;
        self
    }

    /// Runs `property` over [`cases`](Self::cases) cases of `strategy`.
    fn hold<S: Strategy>(
        &self,
        name: &'static str,
        strategy: S,
        property: impl Fn(&S::Value) -> Result<(), String>,
    ) -> Result<(), PropertyFailure>
    where
        S::Value: Debug,
    {
        crate::testing::properties::hold(name, self.cases, strategy, property)
    }

    /// The endpoint stops exactly once: each of `schedules` (see [`datagram_schedule`]) is
    /// run, then closed from outside; every invariant of the check holds throughout and
    /// `stop_protocol` has run once, last, by the end, with one final close. The twin of
    /// [`StreamCheck::ends_with_one_reason`](crate::testing::StreamCheck::ends_with_one_reason).
    ///
    /// ```
    /// # use loomwork::bytes::Bytes;
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// use loomwork::testing::{properties, DatagramCheck};
    /// # struct Echo;
    /// # impl DatagramProtocol for Echo {
    /// #     type Message = ();
    /// #     fn datagram_received(&mut self, data: Bytes, from: std::net::SocketAddr, _: bool,
    /// #                          tx: &mut DatagramTransport<'_>) {
    /// #         let _ = tx.send_to(data, from);
    /// #     }
    /// # }
    /// let check = DatagramCheck::protocol(|| Echo).cases(32);
    /// let datagrams = proptest::collection::vec(proptest::num::u8::ANY, 0..64);
    /// check.stops_exactly_once(properties::datagram_schedule(datagrams)).unwrap();
    /// ```
    pub fn stops_exactly_once(
        &self,
        schedules: impl Strategy<Value = Vec<DatagramOp<P::Message>>>,
    ) -> Result<(), PropertyFailure> {
        self.hold("the endpoint stops exactly once", schedules, |ops| {
            self.run(ops.iter().cloned())
                .map(drop)
                .map_err(|v| v.to_string())
        })
    }

    /// The same datagrams in, the same datagrams out, however the peers' datagrams
    /// interleave: up to 24 datagrams from `inputs`, each from one of three peers, are sent
    /// once peer by peer (all of the first peer's, then the second's, ...) to a socket that
    /// takes every send, and once interleaved as the case says (each peer's own in order)
    /// to a socket that stops taking sends and drains one at a time at arbitrary points. Each
    /// peer must be sent the same datagrams, in the same order, and the endpoint must stop
    /// with the same reason.
    ///
    /// For protocols that serve each peer on its own and deterministically: state shared
    /// between peers (one reassembly buffer, one "current client", a sequence number for all)
    /// is what this finds; a protocol whose replies to one peer rightly depend on another's
    /// datagrams (a relay, a chat room) does not have the property. Both runs lift the output
    /// queue's limits, so holding sends back drops none; every invariant of the check holds
    /// in both runs.
    ///
    /// ```
    /// # use loomwork::bytes::Bytes;
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// use loomwork::testing::{properties, DatagramCheck};
    /// # struct Echo;
    /// # impl DatagramProtocol for Echo {
    /// #     type Message = ();
    /// #     fn datagram_received(&mut self, data: Bytes, from: std::net::SocketAddr, _: bool,
    /// #                          tx: &mut DatagramTransport<'_>) {
    /// #         let _ = tx.send_to(data, from);
    /// #     }
    /// # }
    /// let check = DatagramCheck::protocol(|| Echo).cases(32);
    /// check.same_replies_however_interleaved(properties::text_lines(1)).unwrap();
    /// ```
    pub fn same_replies_however_interleaved(
        &self,
        inputs: impl Strategy<Value = Vec<u8>>,
    ) -> Result<(), PropertyFailure> {
        let unbounded = Config {
            max_queued: None,
            max_queued_bytes: None,
            ..self.config.clone()
        };
        let strategy = (
            collection::vec((0..3usize, inputs), 0..=MAX_DATAGRAMS),
            collection::vec(0..4u8, MAX_DATAGRAMS),
        );
        self.hold(
            "same replies however the peers' datagrams interleave",
            strategy,
            |(datagrams, socket)| {
                let send = |peer: usize, data: &Vec<u8>| DatagramOp::Send {
                    peer,
                    data: data.clone(),
                    truncated: false,
                };
                let mut in_turn = Vec::new();
                for peer in 0..3 {
                    for (_, data) in datagrams.iter().filter(|(p, _)| *p == peer) {
                        in_turn.push(send(peer, data));
                    }
                }
                let mut interleaved = Vec::new();
                for ((peer, data), &what) in datagrams.iter().zip(socket.iter()) {
                    match what {
                        0 => interleaved.push(DatagramOp::Writable { on: false }),
                        1 => interleaved.push(DatagramOp::Writable { on: true }),
                        2 => interleaved.push(DatagramOp::Drain { max: 1 }),
                        _ => {}
                    }
                    interleaved.push(send(*peer, data));
                }
                interleaved.push(DatagramOp::Writable { on: true });
                let a = self
                    .run_with(&unbounded, in_turn)
                    .map_err(|v| format!("peer by peer: {v}"))?;
                let b = self
                    .run_with(&unbounded, interleaved)
                    .map_err(|v| format!("interleaved: {v}"))?;
                for peer in 0..3 {
                    let addr = self.peer_address(peer);
                    let (to_a, to_b) = (a.sent_to(addr), b.sent_to(addr));
                    if to_a != to_b {
                        return Err(format!(
                            "peer by peer, {addr} was sent {to_a:?}; interleaved, {to_b:?}"
                        ));
                    }
                }
                if a.reason != b.reason {
                    return Err(format!(
                        "peer by peer the endpoint stopped with {:?}; interleaved, with {:?}",
                        a.reason, b.reason
                    ));
                }
                Ok(())
            },
        )
    }

    /// [`run`](Self::run) with `config` for the endpoint rather than the check's.
    fn run_with(
        &self,
        config: &Config,
        ops: Vec<DatagramOp<P::Message>>,
    ) -> Result<DatagramOutcome, crate::testing::Violation> {
        let mut session = DatagramSession::with_config(self, config.clone());
        session.start()?;
        for op in ops {
            session.apply(op)?;
        }
        session.finish()?;
        Ok(session.outcome())
    }
}
