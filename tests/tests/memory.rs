//! The conformance suite on the in-memory network (virtual time, deterministic).

loomwork_conformance::conformance_suite!(loomwork_conformance::memory::Memory::new());
