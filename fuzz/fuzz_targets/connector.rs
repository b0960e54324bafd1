//! Fuzzes the client `Connector` with arbitrary (and out-of-place) runtime reports.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::connector::fuzzing::check_connector(data) {
        panic!("{violation}");
    }
});
