//! Byte-stream connections (TCP): the protocol trait, its transport, and the sans-IO driver.

mod action;
mod config;
mod connection;
mod factory;
#[cfg(any(test, feature = "testing"))]
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
