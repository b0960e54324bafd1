//! Fuzzes the PROXY protocol parser (v1 and v2) with arbitrary bytes in arbitrary chunks;
//! checks the properties listed in `loomwork::proxy::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::proxy::fuzzing::check_proxy(data) {
        panic!("{violation}");
    }
});
