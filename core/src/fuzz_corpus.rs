//! Replays the committed fuzz corpora (`fuzz/corpus/<target>/`) through the fuzz targets'
//! checks, so that stable CI exercises every input the fuzzer found interesting.

extern crate std;

use alloc::string::String;
use alloc::vec::Vec;
use std::{fs, path::PathBuf};

use crate::connector;
use crate::framing::fuzzing;

fn replay(target: &str, check: fn(&[u8]) -> Result<(), String>) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let entries = fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut failures = Vec::new();
    let mut count = 0;
    for entry in entries {
        let path = entry.expect("readable corpus directory").path();
        let data = fs::read(&path).expect("readable corpus file");
        count += 1;
        if let Err(violation) = check(&data) {
            failures.push(alloc::format!("{}: {violation}", path.display()));
        }
    }
    assert!(count > 0, "no corpus for {target} in {}", dir.display());
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn line_corpus_replays_clean() {
    replay("line", fuzzing::check_lines);
}

#[test]
fn netstring_corpus_replays_clean() {
    replay("netstring", fuzzing::check_netstrings);
}

#[test]
fn length_corpus_replays_clean() {
    replay("length", fuzzing::check_length_prefixed);
}

#[cfg(feature = "fuzz")]
#[test]
fn connection_corpus_replays_clean() {
    replay("connection", crate::stream::fuzzing::check_connection);
}

#[test]
fn connector_corpus_replays_clean() {
    replay("connector", connector::fuzzing::check_connector);
}

#[test]
fn backoff_corpus_replays_clean() {
    replay("backoff", connector::fuzzing::check_backoff);
}

#[cfg(feature = "fuzz")]
#[test]
fn policy_corpus_replays_clean() {
    replay("policy", crate::policy::fuzzing::check_policies);
}

#[cfg(feature = "fuzz")]
#[test]
fn endpoint_corpus_replays_clean() {
    replay("endpoint", crate::datagram::fuzzing::check_endpoint);
}

#[test]
fn amp_corpus_replays_clean() {
    replay("amp", crate::amp::fuzzing::check_amp);
}

#[test]
fn proxy_corpus_replays_clean() {
    replay("proxy", crate::proxy::fuzzing::check_proxy);
}

#[cfg(feature = "fuzz")]
#[test]
fn amp_server_corpus_replays_clean() {
    replay("amp_server", crate::amp::fuzzing::check_amp_server);
}

#[cfg(feature = "fuzz")]
#[test]
fn accept_proxy_corpus_replays_clean() {
    replay("accept_proxy", crate::proxy::fuzzing::check_accept_proxy);
}
