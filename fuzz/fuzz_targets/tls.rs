//! Fuzzes a TLS server (`loomwork_tls::Tls`, fixture certificate, echo inside): arbitrary
//! records and handshake bytes from any number of peers, in any order with time and closes,
//! and every invariant of `StreamCheck` must hold (no panic, bounded memory, one
//! `connection_lost`). The corpus is seeded with real ClientHellos (tls/tests/fuzz_corpus.rs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| loomwork_tls::testing::server_check().fuzz(data));
