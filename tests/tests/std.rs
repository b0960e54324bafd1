//! The conformance suite on `loomwork-std` over loopback sockets.

loomwork_conformance::conformance_suite!(loomwork_conformance::runtimes::Std);
