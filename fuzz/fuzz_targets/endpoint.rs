//! Fuzzes the datagram `Endpoint` through the test kit's `DatagramCheck` (datagrams, failed
//! sends and commands, a blocked socket, time, messages, closes) around a protocol that sends,
//! connects, joins and sets timers; see `loomwork::datagram::fuzzing`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(violation) = loomwork::datagram::fuzzing::check_endpoint(data) {
        panic!("{violation}");
    }
});
