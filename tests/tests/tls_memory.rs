//! The conformance scenarios that make sense over TLS, both ends wrapped in `Tls`, on the in-memory network.

loomwork_conformance::tls_conformance_suite!(virtual_time: loomwork_conformance::memory::Memory::new());
