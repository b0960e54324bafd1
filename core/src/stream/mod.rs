//! Byte-stream connections (TCP): the protocol trait, its transport, and the sans-IO driver.

mod action;
mod config;
mod connection;
mod factory;
#[cfg(feature = "fuzz")]
pub mod fuzzing;
mod handle;
mod protocol;
mod state;
mod stats;
mod transport;
mod write_queue;

pub use action::Action;
pub use config::Config;
pub use connection::Connection;
pub use factory::{ServerFactory, ServerMessage};
pub use handle::{Control, Handle, Mailbox};
pub use protocol::Protocol;
pub use stats::Stats;
pub use transport::{Transport, WriteError};

#[cfg(test)]
mod tests;

/// True when [`Transport::write`] copies `data` into the queue's current block rather than
/// queuing it as an entry of its own (framers use it to price a frame's parts exactly).
pub(crate) fn copies(data: &bytes::Bytes) -> bool {
    write_queue::WriteQueue::coalesces(data.len())
}
