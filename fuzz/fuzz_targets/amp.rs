//! Fuzzes AMP: the box decoder (same boxes and error for every chunking, bounded, buffer
//! untouched on "need more") and the AMP machine (arbitrary boxes, answers in any order,
//! timeouts, the connection's end: never a panic, every call answered or failed exactly once).
//! Input layout: see `loomwork::amp::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::amp::fuzzing::check_amp(data) {
        panic!("{violation}");
    }
});
