//! The test kit users get too (feature `testing`), all in virtual time and `no_std`:
//!
//! - [`Recorder`]: one stream protocol and no peer, Twisted's `StringTransport` with a clock
//!   (TH-1, TH-4). Feed it reads, EOF or a reset, post messages through its working
//!   [`Handle`](crate::stream::Handle), advance the clock; read back what it wrote, the socket
//!   actions, whether and why it ended, its next deadline. The peer takes everything written,
//!   nothing, or a few bytes per step ([`PeerReads`]), so backpressure can be tested too.
//! - [`DatagramRecorder`]: the same for one [`DatagramProtocol`](crate::datagram::DatagramProtocol):
//!   datagrams in, sends and socket commands out.
//! - [`Pair`] (with [`Wire`]): a client and a server joined in memory, in the spirit of Twisted's
//!   `loopbackAsync` and `iosim` (LB-1, LB-2, TH-5).

mod check;
mod datagram_recorder;
mod mailbox;
mod pair;
#[cfg(feature = "proptest")]
pub mod properties;
mod recorder;
#[cfg(test)]
mod tests;
mod virtual_time;
mod wire;

pub use check::{DatagramCheck, DatagramOp, DatagramOutcome};
pub use check::{EachConnection, Ending, Op, Outcome, Served, StreamCheck, Violation};
pub use datagram_recorder::{DatagramRecorder, DatagramRecorderConfig};
pub use mailbox::{Delivery, MemoryMailbox};
pub use pair::{Pair, PairConfig};
pub use recorder::{PeerReads, Recorder, RecorderConfig};
pub use wire::{StreamEnd, Wire};
