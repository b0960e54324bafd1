//! The conformance scenarios that make sense over TLS, both ends wrapped in `Tls`, on `loomwork-smol` over loopback.

loomwork_conformance::tls_conformance_suite!(loomwork_conformance::runtimes::Smol);
