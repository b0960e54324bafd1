//! The datagram fuzz driver (feature `fuzz`): the fuzzer's bytes, read as a schedule of
//! [`DatagramOp`]s.
//!
//! The encoding is the driver's business, not the user's: each operation starts with one
//! byte that picks it (datagrams weigh most, since that is where protocols go wrong) and the
//! peer, followed by its operands, all through [`arbitrary::Unstructured`] so that libFuzzer's
//! comparison feedback reaches the bytes a protocol compares its input with.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt::Debug;
use core::time::Duration;

use arbitrary::Unstructured;

use super::session::DatagramSession;
use super::{DatagramCheck, DatagramOp};
use crate::datagram::DatagramProtocol;
use crate::reason::{IoKind, Reason, Timeout};
use crate::testing::Violation;

/// Makes a message for [`DatagramOp::Post`] from the fuzzer's bytes.
pub(super) type MessageMaker<M> = Box<dyn Fn(&mut Unstructured<'_>) -> arbitrary::Result<M>>;

/// Largest datagram one `Send` carries: small datagrams find more, and a fuzz input is a few
/// KiB.
const MAX_DATAGRAM: usize = 2048;

/// Short datagrams, most of them, are shorter than this.
const SHORT_DATAGRAM: u8 = 48;

/// Largest clock step one `Advance` takes: a minute covers close deadlines and most protocol
/// timers; [`DatagramOp::NextDeadline`] reaches any later one.
const MAX_ADVANCE_MS: u32 = 60_000;

impl<P> DatagramCheck<P>
where
    P: DatagramProtocol + 'static,
    P::Message: Debug + 'static,
{
    /// How the fuzz driver makes messages to post through the endpoint's handle; without it,
    /// no messages are posted.
    ///
    /// ```
    /// # use loomwork::testing::DatagramCheck;
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// # struct Counter;
    /// # impl DatagramProtocol for Counter {
    /// #     type Message = u32;
    /// #     fn datagram_received(&mut self, _: loomwork::bytes::Bytes, _: std::net::SocketAddr,
    /// #                          _: bool, _: &mut DatagramTransport<'_>) {}
    /// # }
    /// let check = DatagramCheck::protocol(|| Counter).messages(|u| u.arbitrary::<u32>());
    /// check.fuzz(&[22, 1, 2, 3, 4]);
    /// ```
    pub fn messages(
        mut self,
        make: impl Fn(&mut Unstructured<'_>) -> arbitrary::Result<P::Message> + 'static,
    ) -> Self {
        self.messages = Some(Box::new(make));
        self
    }

    /// The fuzz target's body: reads `data` as a schedule, runs it against a fresh endpoint
    /// and panics with the [`Violation`] (and the operations that led to it) if any invariant
    /// breaks.
    ///
    /// ```ignore
    /// fuzz_target!(|data: &[u8]| DatagramCheck::protocol(MyProtocol::new).fuzz(data));
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
        let mut session = DatagramSession::new(self);
        session.start()?;
        while !u.is_empty() {
            let Ok(op) = self.decode(&mut u) else { break };
            session.apply(op)?;
        }
        session.finish()
    }

    /// Decodes all of `data` as the fuzz driver would: the schedule a crash input stands for.
    ///
    /// ```
    /// # use loomwork::testing::{DatagramCheck, DatagramOp};
    /// # use loomwork::datagram::{DatagramProtocol, DatagramTransport};
    /// # struct Sink;
    /// # impl DatagramProtocol for Sink {
    /// #     type Message = ();
    /// #     fn datagram_received(&mut self, _: loomwork::bytes::Bytes, _: std::net::SocketAddr,
    /// #                          _: bool, _: &mut DatagramTransport<'_>) {}
    /// # }
    /// let check = DatagramCheck::protocol(|| Sink);
    /// for op in check.decode_schedule(b"\x00\x03abc\x18") {
    ///     println!("{op:?}");
    /// }
    /// ```
    pub fn decode_schedule(&self, data: &[u8]) -> Vec<DatagramOp<P::Message>> {
        let mut u = Unstructured::new(data);
        let mut ops = Vec::new();
        while !u.is_empty() {
            let Ok(op) = self.decode(&mut u) else { break };
            ops.push(op);
        }
        ops
    }

    fn decode(&self, u: &mut Unstructured<'_>) -> arbitrary::Result<DatagramOp<P::Message>> {
        let pick: u8 = u.arbitrary()?;
        let peer = usize::from(pick >> 6);
        Ok(match pick % 32 {
            0..=11 => {
                // Mostly short datagrams, so an input holds many operations; one in thirty-two
                // of any length up to the largest.
                let len = match u.arbitrary::<u8>()? {
                    short @ 0..=247 => usize::from(short % SHORT_DATAGRAM),
                    _ => u.int_in_range(0..=MAX_DATAGRAM)?,
                };
                let data = u.bytes(len.min(u.len()))?.to_vec();
                DatagramOp::Send {
                    peer,
                    data,
                    // One datagram in six was longer than the receive size.
                    truncated: pick % 32 >= 10,
                }
            }
            12 | 13 => DatagramOp::Drain {
                max: usize::from(u.arbitrary::<u8>()?),
            },
            14 | 15 => DatagramOp::Writable { on: u.arbitrary()? },
            16 | 17 => DatagramOp::Advance(Duration::from_millis(u64::from(
                u.int_in_range(0..=MAX_ADVANCE_MS)?,
            ))),
            18 => DatagramOp::NextDeadline,
            19 => DatagramOp::SendFailed {
                to: None,
                reason: Reason::Refused,
            },
            20 => DatagramOp::SendFailed {
                to: (pick & 0x20 != 0).then_some(peer),
                reason: reason(u)?,
            },
            21 => DatagramOp::CommandFailed { reason: reason(u)? },
            22 | 23 => match &self.messages {
                Some(make) => DatagramOp::Post { message: make(u)? },
                None => DatagramOp::NextDeadline,
            },
            24 => DatagramOp::Close,
            25 => DatagramOp::Abort,
            26 => DatagramOp::SocketFailed { reason: reason(u)? },
            _ => DatagramOp::Advance(Duration::from_millis(1)),
        })
    }
}

/// A reason the operating system gives for a failed send, command or socket.
fn reason(u: &mut Unstructured<'_>) -> arbitrary::Result<Reason> {
    let io = |kind| Reason::Io { kind, code: None };
    Ok(match u.int_in_range(0..=6u8)? {
        0 => Reason::Refused,
        1 => Reason::Unreachable,
        2 => io(IoKind::MessageTooLong),
        3 => io(IoKind::OutOfResources),
        4 => io(IoKind::PermissionDenied),
        5 => Reason::TimedOut(Timeout::Os),
        _ => Reason::Lost,
    })
}
