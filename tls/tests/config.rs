//! Certificates, keys and CA sets from PEM files (RSA and ECDSA; PKCS#8, PKCS#1 and SEC1
//! keys), the configurations built from them, and the typed errors when a file is wrong.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{localhost, Ask, Echo};
use loomwork::testing::{Pair, PairConfig};
use loomwork::Reason;
use loomwork_tls::{
    client_config, load_certificates, load_private_key, load_roots, server_config, ConfigError,
    Identity, Tls,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// An echo over TLS with the server's certificate and key from `cert` and `key`, the client
/// trusting `cert` alone.
fn echo_with(cert: &str, key: &str) {
    let identity = Identity::from_pem_files(data(cert), data(key)).unwrap();
    let server = server_config(identity.chain, identity.key, None, &[]).unwrap();
    let client = client_config(load_roots(data(cert)).unwrap(), None, &[]).unwrap();
    let client = Tls::client(client, localhost(), |_| Ask::new(b"hello"));
    let server = Tls::server(server, |_| Echo::default());
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)), "{cert} {key}");
    assert_eq!(pair.client.protocol().protocol().unwrap().reply, b"hello");
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

#[test]
fn rsa_keys_load_as_pkcs8_and_pkcs1() {
    echo_with("rsa.crt", "rsa-pkcs8.key");
    echo_with("rsa.crt", "rsa-pkcs1.key");
}

#[test]
fn ecdsa_keys_load_as_pkcs8_and_sec1() {
    echo_with("ec.crt", "ec-pkcs8.key");
    echo_with("ec.crt", "ec-sec1.key");
}

#[test]
fn a_missing_file_is_an_io_error_naming_it() {
    let err = load_certificates(data("nonexistent.crt")).unwrap_err();
    assert!(matches!(&err, ConfigError::Io { path, .. } if path.ends_with("nonexistent.crt")));
    assert!(err.to_string().contains("nonexistent.crt"), "{err}");
}

#[test]
fn a_key_file_given_as_a_certificate_has_no_certificates() {
    let err = load_certificates(data("ec-sec1.key")).unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificates { path: Some(_) }));
    let err = load_roots(data("rsa-pkcs8.key")).unwrap_err();
    assert!(matches!(err, ConfigError::NoCertificates { .. }));
}

#[test]
fn a_certificate_given_as_a_key_has_no_private_key() {
    let err = load_private_key(data("rsa.crt")).unwrap_err();
    assert!(matches!(err, ConfigError::NoPrivateKey { path: Some(_) }));
    assert!(
        err.to_string().starts_with("no private key found in "),
        "{err}"
    );
}

#[test]
fn malformed_pem_is_a_pem_error() {
    let err = loomwork_tls::certificates_from_pem(
        b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        None,
    )
    .unwrap_err();
    assert!(
        matches!(err, ConfigError::Pem { path: None, .. }),
        "{err:?}"
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let chain = load_certificates(data("rsa.crt")).unwrap();
    let key = load_private_key(data("ec-pkcs8.key")).unwrap();
    let err = server_config(chain, key, None, &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Rejected(_)), "{err:?}");
}

#[test]
fn alpn_protocols_are_set_on_both_configurations() {
    let identity = Identity::from_pem_files(data("ec.crt"), data("ec-pkcs8.key")).unwrap();
    let server = server_config(identity.chain, identity.key, None, &[b"loom/1", b"h2"]).unwrap();
    assert_eq!(server.alpn_protocols, [b"loom/1".to_vec(), b"h2".to_vec()]);
    let client = client_config(load_roots(data("ec.crt")).unwrap(), None, &[b"h2"]).unwrap();
    assert_eq!(client.alpn_protocols, [b"h2".to_vec()]);
}

/// rustls 0.23.48's ring provider lists P-384 first; the crate's provider offers X25519 first
/// (a full handshake about 4.7x cheaper), keeping P-256 and P-384 for peers that ask.
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
#[test]
fn the_ring_provider_offers_x25519_first_and_keeps_the_nist_curves() {
    use rustls::NamedGroup;
    let groups: Vec<NamedGroup> = loomwork_tls::provider()
        .kx_groups
        .iter()
        .map(|group| group.name())
        .collect();
    assert_eq!(
        groups,
        [
            NamedGroup::X25519,
            NamedGroup::secp256r1,
            NamedGroup::secp384r1
        ]
    );
}
