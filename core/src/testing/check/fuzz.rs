//! The fuzz driver (feature `fuzz`): the fuzzer's bytes, read as a schedule of [`Op`]s.
//!
//! The encoding is the driver's business, not the user's: each operation starts with one
//! byte that picks it (sends weigh most, since that is where protocols go wrong), followed by
//! its operands, all through [`arbitrary::Unstructured`] so that libFuzzer's comparison
//! feedback reaches the bytes a protocol compares its input with.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::time::Duration;

use arbitrary::Unstructured;

use super::session::Session;
use super::{Op, StreamCheck, Violation};
use crate::stream::{ServerFactory, ServerMessage};

/// Makes a message for [`Op::Post`] from the fuzzer's bytes.
pub(super) type MessageMaker<M> = Box<dyn Fn(&mut Unstructured<'_>) -> arbitrary::Result<M>>;

/// Largest read one `Send` carries: runtimes read at most 64 KiB, and small reads find more.
const MAX_SEND: usize = 4096;

/// Largest clock step one `Advance` takes: a minute covers idle timeouts and close deadlines;
/// [`Op::NextDeadline`] reaches any later one.
const MAX_ADVANCE_MS: u32 = 60_000;

impl<F> StreamCheck<F>
where
    F: ServerFactory,
    ServerMessage<F>: Send + Debug + 'static,
{
    /// How the fuzz driver makes messages to post through handles; without it, no messages
    /// are posted from outside (connections may still post to each other).
    ///
    /// ```
    /// # use loomwork::testing::StreamCheck;
    /// # use loomwork::stream::{Protocol, Transport};
    /// # use loomwork::bytes::BytesMut;
    /// # struct Counter;
    /// # impl Protocol for Counter {
    /// #     type Message = u32;
    /// #     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_, u32>) {}
    /// # }
    /// let check = StreamCheck::protocol(|| Counter).messages(|u| u.arbitrary::<u32>());
    /// check.fuzz(&[1, 2, 3, 4]);
    /// ```
    pub fn messages(
        mut self,
        make: impl Fn(&mut Unstructured<'_>) -> arbitrary::Result<ServerMessage<F>> + 'static,
    ) -> Self {
        self.messages = Some(Box::new(make));
        self
    }

    /// The fuzz target's body: reads `data` as a schedule, runs it against a fresh server
    /// and panics with the [`Violation`] (and the operations that led to it) if any
    /// invariant breaks.
    ///
    /// ```ignore
    /// fuzz_target!(|data: &[u8]| StreamCheck::protocol(MyProtocol::new).fuzz(data));
    /// ```
    pub fn fuzz(&self, data: &[u8]) {
        if let Err(violation) = self.fuzz_checked(data) {
            panic!("{violation}");
        }
    }

    /// [`fuzz`](Self::fuzz), returning the violation instead of panicking (to replay a
    /// corpus in a test, say).
    pub fn fuzz_checked(&self, data: &[u8]) -> Result<(), Violation> {
        let mut u = Unstructured::new(data);
        let mut session = Session::new(self);
        session.apply(Op::Connect)?;
        while !u.is_empty() {
            let Ok(op) = self.decode(&mut u) else { break };
            session.apply(op)?;
        }
        session.finish()
    }

    /// Decodes all of `data` as the fuzz driver would: the schedule a crash input stands for.
    pub fn decode_schedule(&self, data: &[u8]) -> Vec<Op<ServerMessage<F>>> {
        let mut u = Unstructured::new(data);
        let mut ops = Vec::new();
        while !u.is_empty() {
            let Ok(op) = self.decode(&mut u) else { break };
            ops.push(op);
        }
        ops
    }

    fn decode(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Op<ServerMessage<F>>> {
        let pick: u8 = u.arbitrary()?;
        let conn = || -> usize { usize::from(pick >> 5) };
        Ok(match pick % 32 {
            0..=13 => {
                let len = u.int_in_range(0..=MAX_SEND)?;
                let data = u.bytes(len.min(u.len()))?.to_vec();
                Op::Send { conn: conn(), data }
            }
            14 | 15 => Op::Read {
                conn: conn(),
                max: usize::from(u.arbitrary::<u16>()?),
            },
            16 | 17 => Op::Reading {
                conn: conn(),
                on: u.arbitrary()?,
            },
            18 | 19 => Op::Advance(Duration::from_millis(u64::from(
                u.int_in_range(0..=MAX_ADVANCE_MS)?,
            ))),
            20 => Op::NextDeadline,
            21 | 22 => Op::Connect,
            23 => Op::SendEof { conn: conn() },
            24 | 25 => match &self.messages {
                Some(make) => Op::Post {
                    conn: conn(),
                    message: make(u)?,
                },
                None => Op::NextDeadline,
            },
            26 | 27 => Op::Close { conn: conn() },
            28 | 29 => Op::Abort { conn: conn() },
            _ => Op::Reset { conn: conn() },
        })
    }
}
