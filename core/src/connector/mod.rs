//! The client side: factories that decide about retries, the reconnect backoff, and the
//! `Connector` state machine.

mod backoff;
mod machine;
mod factory;

pub use backoff::{Backoff, BackoffConfig};
pub use machine::{Connector, ConnectorAction, ConnectorConfig, ConnectorState};
pub use factory::{ClientFactory, Retry};
