//! Fuzzes the length decoder: same frames and errors for every chunking (and as the reference
//! oracle in close mode), bounded buffering, no panics. Input layout: see
//! `loomwork::framing::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::framing::fuzzing::check_length_prefixed(data) {
        panic!("{violation}");
    }
});
