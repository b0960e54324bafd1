//! Blocking std-socket runtime for loomwork.
