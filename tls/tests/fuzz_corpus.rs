//! The `tls` and `tls_client` fuzz targets' corpora (fuzz/corpus/tls, fuzz/corpus/tls_client),
//! replayed under the same checks the targets run, and the hand-made seeds they start from:
//! real handshake flights recorded from a `Tls` client and server in memory, encoded as
//! schedules.

use std::path::PathBuf;
use std::time::Duration;

use loomwork::testing::{EachConnection, Op, Recorder, StreamCheck};
use std::sync::Arc;

use loomwork_tls::testing::{
    client_check, client_hello, fixture_server_name, server_check, Echo, CA_PEM, SERVER_CERT_PEM,
    SERVER_KEY_PEM,
};
use loomwork_tls::Tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig, SupportedProtocolVersion};

type Check = StreamCheck<EachConnection<Tls<Echo>>>;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../fuzz/corpus/{target}"))
}

fn replay(check: &Check, target: &str) {
    let mut count = 0;
    for entry in std::fs::read_dir(corpus(target)).expect("the fuzz corpus") {
        let path = entry.unwrap().path();
        count += 1;
        if let Err(violation) = check.fuzz_checked(&std::fs::read(&path).unwrap()) {
            panic!("{}: {violation}", path.display());
        }
    }
    assert!(count > 0, "the {target} corpus is empty");
}

#[test]
fn the_tls_server_fuzz_corpus_replays_clean() {
    replay(&server_check(), "tls");
}

#[test]
fn the_tls_client_fuzz_corpus_replays_clean() {
    replay(&client_check(), "tls_client");
}

/// One direction's writes, flight by flight.
#[derive(Default)]
struct Flights {
    to_server: Vec<Vec<u8>>,
    to_client: Vec<Vec<u8>>,
}

/// A full exchange between a fixture client and server with `versions`: the client says
/// "ping", the server echoes it, the client closes.
fn exchange(versions: &[&'static SupportedProtocolVersion]) -> Flights {
    let chain = CertificateDer::pem_slice_iter(SERVER_CERT_PEM)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM).unwrap();
    let server_config = ServerConfig::builder_with_protocol_versions(versions)
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(CA_PEM).unwrap())
        .unwrap();
    let client_config = ClientConfig::builder_with_protocol_versions(versions)
        .with_root_certificates(roots)
        .with_no_client_auth();
    let (server_config, client_config) = (Arc::new(server_config), Arc::new(client_config));
    let mut client = Recorder::new(Tls::client(client_config, fixture_server_name(), |_| Ping));
    let mut server = Recorder::new(Tls::server(server_config, |_| Echo));
    let mut flights = Flights::default();
    for _ in 0..100 {
        let up = client.take_written();
        let down = server.take_written();
        if up.is_empty() && down.is_empty() {
            break;
        }
        if !up.is_empty() {
            flights.to_server.push(up.to_vec());
            server.receive(&up);
        }
        if !down.is_empty() {
            flights.to_client.push(down.to_vec());
            client.receive(&down);
        }
    }
    flights
}

/// Says "ping", closes once it is echoed.
struct Ping;

impl loomwork::stream::Protocol for Ping {
    type Message = ();
    fn connection_made(&mut self, tx: &mut loomwork::stream::Transport<'_>) {
        let _ = tx.write_slice(b"ping");
    }
    fn data_received(
        &mut self,
        data: &mut loomwork::bytes::BytesMut,
        tx: &mut loomwork::stream::Transport<'_>,
    ) {
        data.clear();
        tx.lose_connection();
    }
}

const TLS13: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&SupportedProtocolVersion] = &[&rustls::version::TLS12];

fn send(conn: usize, data: &[u8]) -> Op<()> {
    Op::Send {
        conn,
        data: data.to_vec(),
    }
}

/// Every flight of `flights` in order, each as one send on connection 0.
fn flights(flights: &[Vec<u8>]) -> Vec<Op<()>> {
    flights.iter().map(|flight| send(0, flight)).collect()
}

fn write_seeds(check: &Check, target: &str, seeds: Vec<(String, Vec<Op<()>>)>) {
    std::fs::create_dir_all(corpus(target)).unwrap();
    for (name, ops) in seeds {
        check.run(ops.clone()).unwrap();
        let bytes = check.encode_schedule(&ops[..]);
        assert_eq!(check.decode_schedule(&bytes), ops, "{name} encodes whole");
        std::fs::write(corpus(target).join(format!("seed-{name}")), bytes).unwrap();
    }
}

/// Writes the hand-made seeds of both TLS corpora from recorded handshakes (run once with
/// `cargo test -p loomwork-tls --test fuzz_corpus -- --ignored`; the fuzzer's finds sit
/// beside them).
#[test]
#[ignore = "writes fuzz/corpus/tls*/seed-*"]
fn write_tls_seeds() {
    let hello = client_hello();
    let (v13, v12) = (exchange(TLS13), exchange(TLS12));
    let mut server_seeds: Vec<(String, Vec<Op<()>>)> = vec![
        ("client-hello".into(), vec![send(0, &hello)]),
        (
            "client-hello-bytewise".into(),
            hello.iter().map(|b| send(0, &[*b])).collect(),
        ),
        (
            "client-hello-then-eof".into(),
            vec![send(0, &hello), Op::SendEof { conn: 0 }],
        ),
        (
            "half-a-client-hello-stalls".into(),
            vec![
                send(0, &hello[..hello.len() / 2]),
                Op::Advance(Duration::from_secs(11)),
            ],
        ),
        (
            "two-peers-one-resets".into(),
            vec![
                Op::Connect,
                send(0, &hello),
                send(1, &hello),
                Op::Reset { conn: 0 },
            ],
        ),
        (
            "client-hello-close-requested".into(),
            vec![send(0, &hello), Op::Close { conn: 0 }],
        ),
        (
            "client-hello-not-reading".into(),
            vec![
                Op::Reading { conn: 0, on: false },
                send(0, &hello),
                Op::NextDeadline,
            ],
        ),
    ];
    server_seeds.push(("tls13-client-flights".into(), flights(&v13.to_server)));
    server_seeds.push(("tls12-client-flights".into(), flights(&v12.to_server)));
    write_seeds(&server_check(), "tls", server_seeds);

    let mut client_seeds: Vec<(String, Vec<Op<()>>)> = vec![
        ("tls13-server-flights".into(), flights(&v13.to_client)),
        ("tls12-server-flights".into(), flights(&v12.to_client)),
        (
            "tls12-server-flight-bytewise".into(),
            v12.to_client[0].iter().map(|b| send(0, &[*b])).collect(),
        ),
        (
            "tls12-server-flight-then-eof".into(),
            vec![send(0, &v12.to_client[0]), Op::SendEof { conn: 0 }],
        ),
    ];
    client_seeds.push((
        "tls13-server-hello-stalls".into(),
        vec![send(0, &v13.to_client[0][..40]), Op::NextDeadline],
    ));
    write_seeds(&client_check(), "tls_client", client_seeds);
}

/// Found by the `tls` fuzz target (fuzz/corpus/tls/regress-split-handshake-then-failure): a
/// handshake message split over two records, then a record rustls refuses (application data in between). rustls's deframer
/// keeps positions into the input buffer for the partial message, and sending the alert after
/// the failure with an empty buffer in its place made rustls panic.
#[test]
fn a_failure_after_a_handshake_message_split_over_records_sends_its_alert_without_panicking() {
    let hello = client_hello();
    let body = &hello[5..];
    let record = |kind: u8, payload: &[u8]| {
        let mut out = vec![kind, 3, 3];
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        out.extend_from_slice(payload);
        out
    };
    let mut server = Recorder::new(Tls::server(
        loomwork_tls::testing::fixture_server_config(),
        |_| Echo,
    ));
    server.receive(&record(22, &body[..body.len() / 2]));
    assert!(!server.is_ended(), "half a ClientHello: waits for the rest");
    // Application data in the middle of a handshake message.
    server.receive(&record(23, b"interleaved"));
    assert_eq!(
        server.reason(),
        Some(&loomwork::Reason::Tls(loomwork::TlsError::local(
            loomwork::TlsErrorKind::PeerMisbehaved
        )))
    );
    assert!(matches!(
        server.protocol().error(),
        Some(rustls::Error::PeerMisbehaved(_))
    ));
    // rustls queues no alert for this one; the connection closes all the same.
    assert!(server.is_ended());
}
