//! Script-style tests of the `Connection` driver, with explicit times.
