//! Conformance suite support.

pub mod udp;
