//! Fuzzes the reconnect `Backoff` with arbitrary settings and call sequences.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::connector::fuzzing::check_backoff(data) {
        panic!("{violation}");
    }
});
