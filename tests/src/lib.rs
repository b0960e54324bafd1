//! Conformance suite support.

pub mod netns;
pub mod udp;
