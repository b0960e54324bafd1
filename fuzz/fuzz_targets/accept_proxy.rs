//! Fuzzes the PROXY protocol wrapper (`AcceptProxy`) with arbitrary event schedules; checks
//! the invariants listed in `loomwork::proxy::fuzzing::check_accept_proxy`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::proxy::fuzzing::check_accept_proxy(data) {
        panic!("{violation}");
    }
});
