//! The conformance suite on `loomwork-tokio` (a multi-thread runtime) over loopback sockets.

loomwork_conformance::conformance_suite!(loomwork_conformance::runtimes::Tokio::new());
