//! Fuzzes an idle timeout around a read- and write-throttled protocol with arbitrary event
//! sequences; checks the invariants listed in `loomwork::policy::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::policy::fuzzing::check_policies(data) {
        panic!("{violation}");
    }
});
