//! Fuzzes the `Connection` driver with arbitrary event sequences around a protocol that writes,
//! closes, aborts and sets timers; checks the lifecycle invariants listed in
//! `loomwork::stream::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::stream::fuzzing::check_connection(data) {
        panic!("{violation}");
    }
});
