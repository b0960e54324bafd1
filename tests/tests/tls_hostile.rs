//! Hostile peers against a TLS server on real loopback sockets, on every runtime: a thousand
//! stalled handshakes, malformed ClientHellos.

use std::time::Duration;

use loomwork_conformance::runtimes::{Smol, Std, Tokio};
use loomwork_conformance::tls::{
    a_malformed_client_hello_ends_only_its_own_connection,
    stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout, OverTls,
};

/// Stalled connections per run: each costs two descriptors (ours and the server's).
const STALLED: usize = 1000;
/// Short, so the eviction is seen quickly; long enough for the crowd to be opened first.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

fn enough_descriptors() {
    let want = (3 * STALLED + 256) as u64;
    let got = loomwork_net::testing::raise_descriptor_limit(want).expect("raise RLIMIT_NOFILE");
    assert!(
        got >= want,
        "need {want} descriptors, the hard limit allows {got}"
    );
}

#[test]
fn std_stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout() {
    let _guard = loomwork_conformance::shared();
    enough_descriptors();
    let h = OverTls::new(Std).handshake_timeout(HANDSHAKE_TIMEOUT);
    let took = stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout(&h, STALLED);
    eprintln!("std: a new client's TLS exchange beside {STALLED} stalled handshakes: {took:?}");
}

#[test]
fn smol_stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout() {
    let _guard = loomwork_conformance::shared();
    enough_descriptors();
    let h = OverTls::new(Smol).handshake_timeout(HANDSHAKE_TIMEOUT);
    let took = stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout(&h, STALLED);
    eprintln!("smol: a new client's TLS exchange beside {STALLED} stalled handshakes: {took:?}");
}

#[test]
fn tokio_stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout() {
    let _guard = loomwork_conformance::shared();
    enough_descriptors();
    let h = OverTls::new(Tokio::new()).handshake_timeout(HANDSHAKE_TIMEOUT);
    let took = stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout(&h, STALLED);
    eprintln!("tokio: a new client's TLS exchange beside {STALLED} stalled handshakes: {took:?}");
}

#[test]
fn std_a_malformed_client_hello_ends_only_its_own_connection() {
    let _guard = loomwork_conformance::shared();
    a_malformed_client_hello_ends_only_its_own_connection(&OverTls::new(Std), 50);
}

#[test]
fn smol_a_malformed_client_hello_ends_only_its_own_connection() {
    let _guard = loomwork_conformance::shared();
    a_malformed_client_hello_ends_only_its_own_connection(&OverTls::new(Smol), 50);
}

#[test]
fn tokio_a_malformed_client_hello_ends_only_its_own_connection() {
    let _guard = loomwork_conformance::shared();
    a_malformed_client_hello_ends_only_its_own_connection(&OverTls::new(Tokio::new()), 50);
}
