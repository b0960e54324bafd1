//! Properties users want of their protocols, each in one call, and the proptest strategies
//! behind them (feature `proptest`).
//!
//! Each property is a method of [`StreamCheck`]: it runs
//! [`cases`](StreamCheck::cases) generated cases (256 by default) with a fixed seed, so a CI
//! run is reproducible, shrinks a failure to a small case and returns it as a
//! [`PropertyFailure`]; a panic in the protocol is a failure too.
//!
//! - [`same_replies_however_split`](StreamCheck::same_replies_however_split): for a
//!   deterministic protocol, the bytes written and the way the connection ends do not depend
//!   on how the peer's bytes are split into reads, nor on how slowly the peer reads.
//! - [`bounded_while_peer_never_reads`](StreamCheck::bounded_while_peer_never_reads): a peer
//!   sends requests and never reads; the protocol must stop reading (or end the connection)
//!   rather than let memory grow.
//! - [`ends_with_one_reason`](StreamCheck::ends_with_one_reason): under arbitrary schedules
//!   every connection ends, with exactly one reason, as the check's [`Ending`](crate::testing::Ending) says, and every
//!   invariant of [`StreamCheck`] holds throughout.
//!
//! ```
//! use loomwork::bytes::Bytes;
//! use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
//! use loomwork::testing::{properties, StreamCheck};
//!
//! struct Echo;
//! impl FrameHandler for Echo {
//!     type Codec = LineCodec;
//!     type Message = ();
//!     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
//!         let _ = tx.send_frame(line);
//!     }
//! }
//!
//! let check = StreamCheck::protocol(|| Framed::new(Echo, LineCodec::new())).cases(32);
//! let lines = properties::text_lines(8);
//! check.same_replies_however_split(lines.clone()).unwrap();
//! check.bounded_while_peer_never_reads(lines.clone()).unwrap();
//! check.ends_with_one_reason(properties::schedule(lines)).unwrap();
//! ```

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::{self, Debug};
use core::time::Duration;

use proptest::collection;
use proptest::prelude::*;
use proptest::test_runner::{
    Config as RunnerConfig, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

use crate::stream::{Config, ServerFactory, ServerMessage};
use crate::testing::check::session::Session;
use crate::testing::{Op, StreamCheck};

pub use crate::testing::check::datagram::properties::{
    datagram_schedule, datagram_schedule_with_messages,
};

/// Largest input the strategies' chunk splitter cuts into pieces.
const MAX_PIECES: usize = 64;

/// A property that did not hold: what, for the smallest case proptest found.
#[derive(Clone, PartialEq, Eq)]
pub struct PropertyFailure {
    /// Which property.
    pub property: &'static str,
    /// What went wrong, for the smallest failing case, with that case.
    pub what: String,
}

impl fmt::Display for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} does not hold: {}", self.property, self.what)
    }
}

impl Debug for PropertyFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl core::error::Error for PropertyFailure {}

// ----- strategies -------------------------------------------------------------------------

/// `input` cut into reads at arbitrary points (some empty cuts collapse), the whole input
/// among the cases.
pub fn chunked(input: Vec<u8>) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let len = input.len();
    collection::vec(0..=len, 0..=MAX_PIECES.min(len)).prop_map(move |mut cuts| {
        cuts.sort_unstable();
        cuts.dedup();
        let mut pieces = Vec::with_capacity(cuts.len() + 1);
        let mut start = 0;
        for cut in cuts.into_iter().chain([len]) {
            if cut > start {
                pieces.push(input[start..cut].to_vec());
                start = cut;
            }
        }
        pieces
    })
}

/// An input from `inputs` together with one way of cutting it into reads.
pub fn chunkings(
    inputs: impl Strategy<Value = Vec<u8>>,
) -> impl Strategy<Value = (Vec<u8>, Vec<Vec<u8>>)> {
    inputs.prop_flat_map(|input| (Just(input.clone()), chunked(input)))
}

/// Up to `max` short lines of printable ASCII ending in `\r\n`, as one input: a starting
/// point for line protocols.
pub fn text_lines(max: usize) -> BoxedStrategy<Vec<u8>> {
    collection::vec("[ -~]{0,24}", 0..=max)
        .prop_map(|lines| {
            lines
                .iter()
                .flat_map(|l| l.bytes().chain(*b"\r\n"))
                .collect()
        })
        .boxed()
}

/// A schedule of up to 48 operations on up to four connections: sends (of inputs from
/// `inputs`, cut anywhere), partial and stalled reads, time passing and jumps to deadlines,
/// EOFs, closes, aborts and resets through handles and peers. No messages are posted from
/// outside (see [`schedule_with_messages`]).
pub fn schedule<M: Debug + Clone + 'static>(
    inputs: impl Strategy<Value = Vec<u8>> + 'static,
) -> BoxedStrategy<Vec<Op<M>>> {
    collection::vec(op_without_message(inputs.boxed()), 0..48).boxed()
}

/// [`schedule`], with messages from `messages` posted through handles too.
pub fn schedule_with_messages<M: Debug + Clone + 'static>(
    inputs: impl Strategy<Value = Vec<u8>> + 'static,
    messages: impl Strategy<Value = M> + 'static,
) -> BoxedStrategy<Vec<Op<M>>> {
    let post = (0..4usize, messages).prop_map(|(conn, message)| Op::Post { conn, message });
    let op = prop_oneof![6 => op_without_message(inputs.boxed()), 1 => post];
    collection::vec(op, 0..48).boxed()
}

fn op_without_message<M: Debug + Clone + 'static>(
    inputs: BoxedStrategy<Vec<u8>>,
) -> BoxedStrategy<Op<M>> {
    let conn = 0..4usize;
    let send = (conn.clone(), inputs).prop_map(|(conn, data)| Op::Send { conn, data });
    prop_oneof![
        8 => send,
        1 => Just(Op::Connect),
        2 => (conn.clone(), 0..4096usize).prop_map(|(conn, max)| Op::Read { conn, max }),
        2 => (conn.clone(), any::<bool>()).prop_map(|(conn, on)| Op::Reading { conn, on }),
        2 => (0..90_000u64).prop_map(|ms| Op::Advance(Duration::from_millis(ms))),
        1 => Just(Op::NextDeadline),
        1 => conn.clone().prop_map(|conn| Op::SendEof { conn }),
        1 => conn.clone().prop_map(|conn| Op::Close { conn }),
        1 => conn.clone().prop_map(|conn| Op::Abort { conn }),
        1 => conn.prop_map(|conn| Op::Reset { conn }),
    ]
    .boxed()
}

// ----- properties -------------------------------------------------------------------------

/// Runs `property` over `cases` cases of `strategy` with a fixed seed (so a CI run is
/// reproducible) and no failure files; the smallest failure, described, if any. The one
/// runner of every property, stream and datagram.
pub(crate) fn hold<S: Strategy>(
    name: &'static str,
    cases: u32,
    strategy: S,
    property: impl Fn(&S::Value) -> Result<(), String>,
) -> Result<(), PropertyFailure>
where
    S::Value: Debug,
{
    let config = RunnerConfig {
        cases,
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&strategy, |case| {
        property(&case).map_err(TestCaseError::fail)
    }) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(why, case)) => Err(PropertyFailure {
            property: name,
            what: format!("{why}\nsmallest case: {case:?}"),
        }),
        Err(TestError::Abort(why)) => Err(PropertyFailure {
            property: name,
            what: format!("aborted: {why}"),
        }),
    }
}

impl<F> StreamCheck<F>
where
    F: ServerFactory,
    ServerMessage<F>: Send + Debug + Clone + 'static,
{
    /// How many cases each property runs (default 256).
    pub fn cases(mut self, cases: u32) -> Self {
        self.cases = cases;
        self
    }

    fn hold<S: Strategy>(
        &self,
        name: &'static str,
        cases: u32,
        strategy: S,
        property: impl Fn(&S::Value) -> Result<(), String>,
    ) -> Result<(), PropertyFailure>
    where
        S::Value: Debug,
    {
        hold(name, cases, strategy, property)
    }

    /// The replies are the same however the input is split: `inputs` sent as one read to a
    /// peer that reads everything, then cut into reads at arbitrary points and sent to a
    /// peer that reads a little between them, must give the same bytes written and the same
    /// end (after the check's [`Ending`](crate::testing::Ending)). For deterministic protocols (replies that depend
    /// on the clock or on randomness differ legitimately). Every invariant of the check holds
    /// in both runs.
    pub fn same_replies_however_split(
        &self,
        inputs: impl Strategy<Value = Vec<u8>>,
    ) -> Result<(), PropertyFailure> {
        let strategy = (
            chunkings(inputs),
            collection::vec(0..2048usize, MAX_PIECES + 1),
        );
        self.hold(
            "same replies however the input is split",
            self.cases,
            strategy,
            |((input, pieces), reads)| {
                let whole = self
                    .run([Op::Send {
                        conn: 0,
                        data: input.clone(),
                    }])
                    .map_err(|v| format!("with the input in one read: {v}"))?;
                let mut ops = vec![Op::Reading { conn: 0, on: false }];
                for (piece, &max) in pieces.iter().zip(reads.iter()) {
                    ops.push(Op::Send {
                        conn: 0,
                        data: piece.clone(),
                    });
                    ops.push(Op::Read { conn: 0, max });
                }
                ops.push(Op::Reading { conn: 0, on: true });
                let split = self
                    .run(ops)
                    .map_err(|v| format!("with the input split as the case says: {v}"))?;
                let (a, b) = (&whole.connections[0], &split.connections[0]);
                if a.written != b.written || a.reason != b.reason {
                    return Err(format!(
                        "in one read the protocol wrote {:?} and ended with {:?}; split, it \
                         wrote {:?} and ended with {:?}",
                        a.written, a.reason, b.written, b.reason
                    ));
                }
                Ok(())
            },
        )
    }

    /// Memory stays bounded while the peer never reads: a peer sends input from `inputs` over
    /// and over (in reads of about 4 KiB, up to 2 MiB) and reads nothing. With the write
    /// queue's marks scaled down (high water at most 16 KiB, cap at most 256 KiB) so a case
    /// takes milliseconds, the protocol must stop consuming input, by pausing reading (the
    /// default `pause_producing` does) or by ending the connection, before its writes are
    /// refused; every invariant of the check holds throughout, your own included (make one
    /// of what your protocol holds, if it buffers anything itself). Runs an eighth of
    /// [`cases`](Self::cases) (at least 8), as each case moves megabytes.
    pub fn bounded_while_peer_never_reads(
        &self,
        inputs: impl Strategy<Value = Vec<u8>>,
    ) -> Result<(), PropertyFailure> {
        let config = self.connection_config();
        let scaled = Config {
            high_water: config.high_water.min(16 * 1024),
            low_water: config.low_water.min(4 * 1024),
            max_queued: Some(config.max_queued.unwrap_or(usize::MAX).min(256 * 1024)),
            ..config.clone()
        };
        let inputs = inputs.prop_filter("an empty input sends nothing", |i| !i.is_empty());
        self.hold(
            "memory bounded while the peer never reads",
            (self.cases / 8).max(8),
            inputs,
            |unit| {
                let mut read = Vec::with_capacity(4096 + unit.len());
                while read.len() < 4096 {
                    read.extend_from_slice(unit);
                }
                let mut session = Session::with_config(self, scaled.clone());
                let mut sent = 0;
                session.apply(Op::Connect).map_err(|v| v.to_string())?;
                session
                    .apply(Op::Reading { conn: 0, on: false })
                    .map_err(|v| v.to_string())?;
                // Until the "kernel" holds 256 KiB the connection has not read (the peer is
                // blocked too), the connection has ended, or 2 MiB went in.
                while sent < 2 << 20 && session.unread_bytes(0) < 256 * 1024 {
                    if session.all_ended() {
                        return Ok(());
                    }
                    session
                        .apply(Op::Send {
                            conn: 0,
                            data: read.clone(),
                        })
                        .map_err(|v| v.to_string())?;
                    sent += read.len();
                }
                // Stopped reading, or consumed all of it without a write refused (a sink, or
                // replies small enough to fit): bounded as far as the queues show.
                let _ = sent;
                Ok(())
            },
        )
    }

    /// Every connection ends with exactly one reason: each of `schedules` (see [`schedule`])
    /// is run, then ended as the check's [`Ending`](crate::testing::Ending) says; every invariant of the check holds
    /// throughout and every connection has ended, once, with its reason, by the end.
    pub fn ends_with_one_reason(
        &self,
        schedules: impl Strategy<Value = Vec<Op<ServerMessage<F>>>>,
    ) -> Result<(), PropertyFailure> {
        self.hold(
            "every connection ends with exactly one reason",
            self.cases,
            schedules,
            |ops| {
                self.run(ops.iter().cloned())
                    .map(drop)
                    .map_err(|v| v.to_string())
            },
        )
    }
}
