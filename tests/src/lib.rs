//! Conformance suite support.
