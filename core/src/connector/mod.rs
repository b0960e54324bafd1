//! The client side: factories that decide about retries, the reconnect backoff, and the
//! `Connector` state machine.

mod backoff;
mod factory;
#[cfg(any(test, feature = "testing"))]
pub mod fuzzing;
mod machine;

pub use backoff::{Backoff, BackoffConfig};
pub use factory::{ClientFactory, ClientMessage, Retry};
pub use machine::{Action, Config, Connector, State};

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn backoff_fuzz_check_holds(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(v) = super::fuzzing::check_backoff(&data) { prop_assert!(false, "{}", v); }
        }

        #[test]
        fn connector_fuzz_check_holds(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Err(v) = super::fuzzing::check_connector(&data) { prop_assert!(false, "{}", v); }
        }
    }
}
