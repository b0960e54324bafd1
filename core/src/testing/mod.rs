//! The test kit users get too (feature `testing`): two machines joined in memory with a virtual
//! clock, in the spirit of Twisted's `loopbackAsync` and `iosim` (LB-1, LB-2, TH-5).

mod pair;
mod wire;

pub use pair::{Pair, PairConfig};
pub use wire::{StreamEnd, Wire};
