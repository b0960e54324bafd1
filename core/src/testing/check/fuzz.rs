//! The fuzz driver (feature `fuzz`): the fuzzer's bytes, read as a schedule of [`Op`]s.
//!
//! The encoding is the driver's business, not the user's: each operation starts with one
//! byte that picks it (sends weigh most, since that is where protocols go wrong), followed by
//! its operands as plain integers and raw bytes, so that libFuzzer's comparison feedback
//! reaches the bytes a protocol compares its input with. An advance is at most 65.535 s;
//! [`Op::NextDeadline`] reaches any later deadline.

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

    /// The fuzzer's bytes for `ops`, as [`fuzz`](Self::fuzz) reads them: to seed a corpus
    /// with the schedules of your own tests. A [`Op::Post`] is left out (its message is
    /// encoded by your [`messages`](Self::messages) function, which has no inverse); a send
    /// longer than 4,096 bytes is cut there, an advance over 65.535 s is cut there.
    ///
    /// ```
    /// # use loomwork::testing::{Op, StreamCheck};
    /// # use loomwork::stream::{Protocol, Transport};
    /// # use loomwork::bytes::BytesMut;
    /// # struct Sink;
    /// # impl Protocol for Sink {
    /// #     type Message = ();
    /// #     fn data_received(&mut self, d: &mut BytesMut, _: &mut Transport<'_>) { d.clear(); }
    /// # }
    /// let check = StreamCheck::protocol(|| Sink);
    /// let ops = vec![Op::Send { conn: 0, data: b"hello".to_vec() }, Op::SendEof { conn: 0 }];
    /// let bytes = check.encode_schedule(&ops);
    /// assert_eq!(check.decode_schedule(&bytes), ops);
    /// ```
    pub fn encode_schedule(&self, ops: &[Op<ServerMessage<F>>]) -> Vec<u8> {
        let mut out = Vec::new();
        for op in ops {
            let pick = |kind: u8, conn: usize| kind | (((conn % 8) as u8) << 5);
            match op {
                Op::Send { conn, data } => {
                    let data = &data[..data.len().min(MAX_SEND)];
                    out.push(pick(KIND_SEND, *conn));
                    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
                    out.extend_from_slice(data);
                }
                Op::Read { conn, max } => {
                    out.push(pick(KIND_READ, *conn));
                    out.extend_from_slice(&((*max).min(0xffff) as u16).to_be_bytes());
                }
                Op::Reading { conn, on } => {
                    out.push(pick(KIND_READING, *conn));
                    out.push(u8::from(*on));
                }
                Op::Advance(by) => {
                    let ms = by.as_millis().min(0xffff) as u16;
                    let kind = if ms < SHORT_ADVANCE_MS {
                        KIND_SHORT_ADVANCE
                    } else {
                        KIND_LONG_ADVANCE
                    };
                    out.push(kind);
                    out.extend_from_slice(&ms.to_be_bytes());
                }
                Op::NextDeadline => out.push(KIND_NEXT_DEADLINE),
                Op::Connect => out.push(KIND_CONNECT),
                Op::SendEof { conn } => out.push(pick(KIND_SEND_EOF, *conn)),
                Op::Post { .. } => {}
                Op::Close { conn } => out.push(pick(KIND_CLOSE, *conn)),
                Op::Abort { conn } => out.push(pick(KIND_ABORT, *conn)),
                Op::Reset { conn } => out.push(pick(KIND_RESET, *conn)),
            }
        }
        out
    }

    /// One operation: a byte whose low five bits pick the kind (several values per kind,
    /// weighting sends most) and whose high three bits pick the connection, then operands as
    /// plain big-endian integers and raw bytes ([`encode_schedule`](Self::encode_schedule)
    /// is the inverse).
    fn decode(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<Op<ServerMessage<F>>> {
        let pick = take::<1>(u)?[0];
        let conn = usize::from(pick >> 5);
        Ok(match pick % 32 {
            KIND_SEND..=13 => {
                let len = usize::from(u16::from_be_bytes(take(u)?)) % (MAX_SEND + 1);
                let data = u.bytes(len.min(u.len()))?.to_vec();
                Op::Send { conn, data }
            }
            KIND_READ | 15 => Op::Read {
                conn,
                max: usize::from(u16::from_be_bytes(take(u)?)),
            },
            KIND_READING | 17 => Op::Reading {
                conn,
                on: take::<1>(u)?[0] & 1 == 1,
            },
            // Half the advances stay under a second: a protocol with a fast periodic timer
            // then costs a few firings per step, not tens of thousands, and the fuzzer keeps
            // its pace; long ones (and `NextDeadline`) reach idle timeouts and close deadlines.
            KIND_SHORT_ADVANCE => {
                let ms = u16::from_be_bytes(take(u)?) % SHORT_ADVANCE_MS;
                Op::Advance(Duration::from_millis(u64::from(ms)))
            }
            KIND_LONG_ADVANCE => {
                let ms = u16::from_be_bytes(take(u)?);
                Op::Advance(Duration::from_millis(u64::from(ms)))
            }
            KIND_NEXT_DEADLINE => Op::NextDeadline,
            KIND_CONNECT | 22 => Op::Connect,
            KIND_SEND_EOF => Op::SendEof { conn },
            KIND_POST | 25 => match &self.messages {
                Some(make) => Op::Post {
                    conn,
                    message: make(u)?,
                },
                None => Op::NextDeadline,
            },
            KIND_CLOSE | 27 => Op::Close { conn },
            KIND_ABORT | 29 => Op::Abort { conn },
            _ => Op::Reset { conn },
        })
    }
}

/// The next `N` bytes, or the end of the schedule.
fn take<const N: usize>(u: &mut Unstructured<'_>) -> arbitrary::Result<[u8; N]> {
    let bytes = u.bytes(N)?;
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

const KIND_SEND: u8 = 0;
const KIND_READ: u8 = 14;
const KIND_READING: u8 = 16;
const KIND_SHORT_ADVANCE: u8 = 18;
const KIND_LONG_ADVANCE: u8 = 19;
/// Advances shorter than this (in milliseconds) are encoded as short ones.
const SHORT_ADVANCE_MS: u16 = 1000;
const KIND_NEXT_DEADLINE: u8 = 20;
const KIND_CONNECT: u8 = 21;
const KIND_SEND_EOF: u8 = 23;
const KIND_POST: u8 = 24;
const KIND_CLOSE: u8 = 26;
const KIND_ABORT: u8 = 28;
const KIND_RESET: u8 = 30;
