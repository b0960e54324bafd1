//! The conformance suite on `loomwork-smol` over loopback sockets.

loomwork_conformance::conformance_suite!(loomwork_conformance::runtimes::Smol);
