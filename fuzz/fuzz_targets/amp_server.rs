//! Fuzzes the AMP machine as a server through the test kit (`StreamCheck`): peers connect,
//! send arbitrary bytes in any chunking, stall and leave; handle messages make calls to the
//! peer. Every lifecycle invariant must hold and no call is answered twice (nor, once its
//! connection ends, fewer than once). See `loomwork::amp::fuzzing::check_amp_server`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::amp::fuzzing::check_amp_server(data) {
        panic!("{violation}");
    }
});
