//! Fuzzes a TLS client (`loomwork_tls::Tls`, trusting the fixture CA): each connection sends
//! its ClientHello and the schedule plays the server with arbitrary records, and every
//! invariant of `StreamCheck` must hold. The corpus is seeded with real server flights
//! (tls/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loomwork_tls::testing::client_check().fuzz(data));
