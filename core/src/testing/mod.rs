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
//! - [`StreamCheck`]: a server (a protocol, or a factory with shared state) described once and
//!   run through schedules of [`Op`]s, every invariant a protocol must keep checked after every
//!   step ([`DatagramCheck`] and [`DatagramOp`] are its datagram twin). It is the generic fuzz driver ([`StreamCheck::fuzz`], feature `fuzz`: a fuzz target
//!   is one call) and the engine of the one-call properties in [`properties`] (feature
//!   `proptest`: the replies do not depend on the chunking, memory stays bounded while the peer
//!   never reads, every connection ends with exactly one reason).
//! - [`StreamNetwork`]: many stream connections in memory: listeners with their
//!   [`ServerFactory`](crate::stream::ServerFactory), reconnecting
//!   [`Connector`](crate::connector::Connector)s and single dialed clients, every connection
//!   with a working handle, in virtual time, with seeded faults ([`Faults`]: refused connects,
//!   resets, stalls) and on-demand ones; the stream twin of the datagram
//!   [`Network`](crate::datagram::network::Network). The conformance suite's memory runtime
//!   is this network.
//! - [`ScriptedPeer`]: a peer that plays a [`Script`] (send bytes or frames; wait for bytes, a
//!   delimiter, EOF or time; half-close, close, abort) and records what comes back in a
//!   [`Transcript`]; [`ScriptedFactory`] hands every connection of a listener or connector
//!   the same script.

mod check;
mod datagram_recorder;
mod mailbox;
mod pair;
#[cfg(feature = "proptest")]
pub mod properties;
mod recorder;
mod scripted;
mod stream_network;
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
pub use scripted::{Script, ScriptedFactory, ScriptedPeer, Step, Transcript};
pub use stream_network::{
    ClientId, ConnId, Direction, Faults, ListenerId, NetworkConfig, StreamNetwork,
    StreamNetworkStats,
};
pub use wire::{StreamEnd, Wire};
