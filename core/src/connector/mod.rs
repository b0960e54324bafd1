//! The client side: factories that decide about retries, the reconnect backoff, and the
//! `Connector` state machine.

mod backoff;
mod factory;
mod machine;

pub use backoff::{Backoff, BackoffConfig};
pub use factory::{ClientFactory, Retry};
pub use machine::{Connector, ConnectorAction, ConnectorConfig, ConnectorState};
