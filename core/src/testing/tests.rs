//! Tests of the recorders.
