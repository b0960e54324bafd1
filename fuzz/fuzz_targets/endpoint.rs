//! Fuzzes the datagram `Endpoint` with arbitrary runtime inputs around a protocol that sends,
//! connects, joins and sets timers; checks the invariants in `loomwork::datagram::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::datagram::fuzzing::check_endpoint(data) {
        panic!("{violation}");
    }
});
