//! smol runtime for loomwork.
