//! TLS end to end in memory: a client `Tls` and a server `Tls` on the core's test kit, with
//! certificates made at test time.

mod common;

use std::time::Duration;

use common::*;
use loomwork::bytes::BytesMut;
use loomwork::stream::Action;
use loomwork::stream::{Protocol, Transport};
use loomwork::testing::Pair;
use loomwork::testing::{properties, PairConfig, PeerReads, Recorder, StreamCheck};
use loomwork::{Reason, Timeout, TlsError, TlsErrorKind};
use loomwork_tls::{Tls, TlsFactory, TlsInfo};
use proptest::prelude::*;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, ProtocolVersion};

fn tls_reason(kind: TlsErrorKind, by_peer: bool) -> Reason {
    Reason::Tls(TlsError { kind, by_peer })
}

/// An echo exchange over TLS with `versions`: the client's reply, the pair afterwards.
fn echo(
    payload: &[u8],
    versions: &[&'static rustls::SupportedProtocolVersion],
    max_read: usize,
) -> Pair<Tls<Ask>, Tls<Echo>> {
    let ca = Ca::new("test CA");
    let leaf = ca.server_leaf("localhost");
    let payload = payload.to_vec();
    let client = Tls::client(client_config(&ca, None, versions), localhost(), move |_| {
        Ask::new(&payload)
    });
    let server = Tls::server(server_config(&leaf, None, versions), |_| Echo::default());
    let config = PairConfig {
        max_read,
        ..PairConfig::default()
    };
    let mut pair = Pair::new(client, server, config);
    assert!(pair.run(Duration::from_secs(30)), "both sides close");
    pair
}

#[test]
fn echo_works_over_tls13_and_both_sides_close_cleanly() {
    let pair = echo(b"hello over TLS", TLS13, 64 * 1024);
    let client = pair.client.protocol();
    assert_eq!(client.protocol().unwrap().reply, b"hello over TLS");
    assert_eq!(pair.client.reason(), Some(&Reason::Done));
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
    let info = pair.server.protocol().info().unwrap();
    assert_eq!(info.protocol_version, Some(ProtocolVersion::TLSv1_3));
    assert_eq!(info.server_name.as_deref(), Some("localhost"), "SNI seen");
    assert!(
        info.peer_certificates.is_empty(),
        "no client certificate asked"
    );
    let client_info = client.info().unwrap();
    assert_eq!(client_info.server_name.as_deref(), Some("localhost"));
    assert_eq!(client_info.peer_certificates.len(), 1);
    // The server's protocol heard the client's close_notify as the end of its input.
    assert!(pair.server.protocol().protocol().unwrap().read_closed);
}

#[test]
fn echo_works_over_tls12() {
    let pair = echo(b"hello over TLS 1.2", TLS12, 64 * 1024);
    let client = pair.client.protocol();
    assert_eq!(client.protocol().unwrap().reply, b"hello over TLS 1.2");
    assert_eq!(
        client.info().unwrap().protocol_version,
        Some(ProtocolVersion::TLSv1_2)
    );
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

#[test]
fn one_byte_per_read_gives_the_same_plaintext() {
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let pair = echo(&payload, TLS13, 1);
    assert_eq!(pair.client.protocol().protocol().unwrap().reply, payload);
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_gives_the_same_plaintext(
        payload in proptest::collection::vec(any::<u8>(), 0..40_000),
        max_read in 1usize..700,
        tls12 in any::<bool>(),
    ) {
        let versions = if tls12 { TLS12 } else { TLS13 };
        let pair = echo(&payload, versions, max_read);
        prop_assert_eq!(&pair.client.protocol().protocol().unwrap().reply, &payload);
        prop_assert_eq!(pair.client.reason(), Some(&Reason::Done));
        prop_assert_eq!(pair.server.reason(), Some(&Reason::Done));
    }
}

#[test]
fn a_server_from_an_unknown_ca_is_refused_with_typed_reasons_on_both_sides() {
    let ca = Ca::new("real CA");
    let other = Ca::new("some other CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&other, None, TLS13), localhost(), |_| {
        Ask::new(b"secret")
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Echo::default());
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)));
    assert_eq!(
        pair.client.reason(),
        Some(&tls_reason(TlsErrorKind::UnknownIssuer, false))
    );
    assert_eq!(
        pair.server.reason(),
        Some(&tls_reason(TlsErrorKind::UnknownIssuer, true)),
        "the client's alert reached the server"
    );
    let client = pair.client.protocol();
    assert!(
        client.protocol().is_none(),
        "no protocol for an unverified server"
    );
    assert!(matches!(
        client.error(),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    ));
    assert!(pair.server.protocol().protocol().is_none());
}

#[test]
fn a_certificate_for_another_name_is_refused_as_a_name_mismatch() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("elsewhere.example");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Ask::new(b"x")
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Echo::default());
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.run(Duration::from_secs(30));
    assert_eq!(
        pair.client.reason(),
        Some(&tls_reason(TlsErrorKind::CertificateNameMismatch, false))
    );
}

/// A server protocol that knows its client from the handshake, before any byte.
struct Identified {
    chain: Vec<CertificateDer<'static>>,
    chain_len_at_connection_made: Option<usize>,
    received: Vec<u8>,
}

impl Identified {
    fn new(info: &TlsInfo) -> Self {
        Identified {
            chain: info.peer_certificates.clone(),
            chain_len_at_connection_made: None,
            received: Vec::new(),
        }
    }
}

impl Protocol for Identified {
    type Message = ();
    fn connection_made(&mut self, _: &mut Transport<'_>) {
        self.chain_len_at_connection_made = Some(self.chain.len());
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.received.extend_from_slice(data);
        let _ = tx.write(data.split().freeze());
    }
}

#[test]
fn mutual_tls_gives_the_server_the_clients_identity_before_its_first_byte() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let alice = ca.client_leaf("alice");
    let client = Tls::client(client_config(&ca, Some(&alice), TLS13), localhost(), |_| {
        Ask::new(b"it is me")
    });
    let server = Tls::server(server_config(&leaf, Some(&ca), TLS13), Identified::new);
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)));
    let server = pair.server.protocol().protocol().unwrap();
    assert_eq!(server.chain_len_at_connection_made, Some(1));
    assert_eq!(
        server.chain.first(),
        Some(&alice.cert),
        "the client's own certificate"
    );
    assert_eq!(server.received, b"it is me");
    assert_eq!(
        pair.client.protocol().protocol().unwrap().reply,
        b"it is me"
    );
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

#[test]
fn mutual_tls_refuses_a_client_without_a_certificate() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Ask::new(b"hi")
    });
    let server = Tls::server(server_config(&leaf, Some(&ca), TLS13), Identified::new);
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.run(Duration::from_secs(30));
    assert_eq!(
        pair.server.reason(),
        Some(&tls_reason(TlsErrorKind::CertificateRequired, false))
    );
    assert!(pair.server.protocol().protocol().is_none(), "never built");
    assert_eq!(
        pair.client.reason(),
        Some(&tls_reason(TlsErrorKind::CertificateRequired, true))
    );
}

#[test]
fn mutual_tls_refuses_a_client_certificate_from_another_ca() {
    let ca = Ca::new("CA");
    let rogue = Ca::new("rogue CA");
    let leaf = ca.server_leaf("localhost");
    let mallory = rogue.client_leaf("mallory");
    let client = Tls::client(
        client_config(&ca, Some(&mallory), TLS13),
        localhost(),
        |_| Ask::new(b"hi"),
    );
    let server = Tls::server(server_config(&leaf, Some(&ca), TLS13), Identified::new);
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.run(Duration::from_secs(30));
    assert_eq!(
        pair.server.reason(),
        Some(&tls_reason(TlsErrorKind::UnknownIssuer, false))
    );
    assert!(pair.server.protocol().protocol().is_none());
    assert_eq!(
        pair.client.reason(),
        Some(&tls_reason(TlsErrorKind::UnknownIssuer, true))
    );
}

fn lone_server(timeout: Option<Option<Duration>>) -> Recorder<Tls<Echo>> {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut server = Tls::server(server_config(&leaf, None, TLS13), |_| Echo::default());
    if let Some(timeout) = timeout {
        server = server.handshake_timeout(timeout);
    }
    Recorder::new(server)
}

#[test]
fn the_handshake_timeout_evicts_a_peer_that_sends_nothing() {
    let mut server = lone_server(None);
    server.advance(Duration::from_millis(9_999));
    assert!(!server.is_ended());
    server.advance(Duration::from_millis(1));
    assert_eq!(server.reason(), Some(&Reason::TimedOut(Timeout::Handshake)));
    assert_eq!(server.actions(), &[Action::Abort]);
}

#[test]
fn the_handshake_timeout_evicts_a_peer_that_stalls_mid_client_hello() {
    let mut server = lone_server(Some(Some(Duration::from_secs(2))));
    server.receive(&[22, 3, 1, 0, 200, 1, 0]);
    server.advance(Duration::from_secs(2));
    assert_eq!(server.reason(), Some(&Reason::TimedOut(Timeout::Handshake)));
}

#[test]
fn without_a_handshake_timeout_a_silent_peer_is_kept() {
    let mut server = lone_server(Some(None));
    assert_eq!(server.next_timeout(), None);
    server.advance(Duration::from_secs(3600));
    assert!(!server.is_ended());
}

/// Writes what it is told to on connection, then waits; counts what comes back.
#[derive(Default)]
struct Hold {
    greeting: Vec<u8>,
    received: usize,
    lost: Option<Reason>,
}

impl Protocol for Hold {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write(self.greeting.clone());
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.received += data.split().len();
    }
    fn message(&mut self, (): (), tx: &mut Transport<'_>) {
        // A thousand tiny writes in one turn.
        for _ in 0..1000 {
            let _ = tx.write_slice(b"x");
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost = Some(reason.clone());
    }
}

fn linked(versions: &[&'static rustls::SupportedProtocolVersion]) -> Link<Tls<Hold>, Tls<Echo>> {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, versions), localhost(), |_| Hold {
        greeting: b"hi".to_vec(),
        ..Hold::default()
    });
    let server = Tls::server(server_config(&leaf, None, versions), |_| Echo::default());
    let link = Link::new(client, server);
    assert_eq!(
        link.client.protocol().protocol().unwrap().received,
        2,
        "echoed"
    );
    link
}

#[test]
fn an_eof_without_close_notify_is_a_truncation_not_a_clean_end() {
    let mut link = linked(TLS13);
    link.server.receive_eof();
    let truncated = tls_reason(TlsErrorKind::Truncated, false);
    assert_eq!(link.server.reason(), Some(&truncated));
    let echo = link.server.protocol().protocol().unwrap();
    assert!(
        !echo.read_closed,
        "a truncated stream is no clean end of input"
    );
    assert_eq!(echo.lost, Some(truncated));
}

#[test]
fn a_graceful_close_sends_close_notify_before_closing() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS12), localhost(), |_| {
        Ask::new(b"bye")
    });
    let server = Tls::server(server_config(&leaf, None, TLS12), |_| Echo::default());
    let mut link = Link::new(client, server);
    // TLS 1.2 shows the record type: the client's last record is an alert (close_notify),
    // sent once its protocol closed, and it is its only alert.
    let up = records(&link.to_server);
    assert_eq!(up.last().map(|r| r.0), Some(21), "{up:?}");
    assert_eq!(up.iter().filter(|r| r.0 == 21).count(), 1);
    assert!(link.client.actions().contains(&Action::ShutdownWrite));
    // The server heard it as the end of input (not a truncation) and answered in kind.
    let echo = link.server.protocol().protocol().unwrap();
    assert!(echo.read_closed);
    assert_eq!(link.server.reason(), Some(&Reason::Done));
    let down = records(&link.to_client);
    assert_eq!(down.last().map(|r| r.0), Some(21));
    // Then the TCP EOF after close_notify is a clean end.
    link.client.receive_eof();
    assert_eq!(link.client.reason(), Some(&Reason::Done));
}

#[test]
fn a_thousand_one_byte_writes_in_one_turn_leave_as_one_record() {
    let mut link = linked(TLS13);
    let (up, down) = (link.to_server.len(), link.to_client.len());
    link.client.post(()).unwrap();
    link.pump();
    let burst = records(&link.to_server[up..]);
    // TLS 1.3 record: 1000 bytes + content type + 16-byte tag.
    assert_eq!(burst, vec![(23, 1000 + 1 + 16)]);
    let echoed = records(&link.to_client[down..]);
    assert_eq!(echoed, vec![(23, 1000 + 1 + 16)]);
    assert_eq!(link.client.protocol().protocol().unwrap().received, 1002);
}

/// Sends `total` bytes when told, as fast as the connection lets it, honouring backpressure.
struct Flood {
    total: usize,
    sent: usize,
    paused_at_least_once: bool,
}

impl Flood {
    fn fill(&mut self, tx: &mut Transport<'_>) {
        while self.sent < self.total && tx.queued_memory() <= tx.config().high_water {
            let n = (self.total - self.sent).min(16 * 1024);
            tx.write(vec![7u8; n]).unwrap();
            self.sent += n;
        }
    }
}

impl Protocol for Flood {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn message(&mut self, (): (), tx: &mut Transport<'_>) {
        self.fill(tx);
    }
    fn pause_producing(&mut self, _: &mut Transport<'_>) {
        self.paused_at_least_once = true;
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_>) {
        self.fill(tx);
    }
}

/// Counts what arrives.
#[derive(Default)]
struct Sink(usize);

impl Protocol for Sink {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.0 += data.split().len();
    }
}

#[test]
fn backpressure_passes_through_the_layer_and_memory_stays_bounded() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let total = 4 * 1024 * 1024;
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), move |_| {
        Flood {
            total,
            sent: 0,
            paused_at_least_once: false,
        }
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Sink::default());
    let mut link = Link::new(client, server);
    link.client.set_peer_reads(PeerReads::Nothing);
    link.client.post(()).unwrap();
    link.client.run_until_idle();
    let flood = link.client.protocol();
    let plaintext = flood.plaintext().unwrap();
    assert!(plaintext.protocol().paused_at_least_once);
    assert!(
        plaintext.protocol().sent < total,
        "the producer was held back"
    );
    // Ciphertext queued: the high-water mark plus one batch and its record overhead.
    assert!(
        link.client.queued_bytes() <= 64 * 1024 + 64 * 1024 + 1024,
        "{}",
        link.client.queued_bytes()
    );
    assert!(plaintext.queued_bytes() <= 64 * 1024 + 16 * 1024 + 1024);
    // The peer reads again: everything arrives.
    link.client.set_peer_reads(PeerReads::All);
    for _ in 0..10_000 {
        link.client.step();
        link.pump();
        if link.server.protocol().protocol().unwrap().0 == total {
            break;
        }
    }
    assert_eq!(link.server.protocol().protocol().unwrap().0, total);
}

#[test]
fn a_tls_factory_wraps_every_accepted_connection_and_keeps_refusals() {
    use loomwork::stream::ServerFactory;
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    // Refuses every other peer, as a connection limit would.
    let mut accepted = 0;
    let limited = move |_peer| {
        accepted += 1;
        (accepted % 2 == 1).then(Echo::default)
    };
    let mut factory = TlsFactory::new(server_config(&leaf, None, TLS13), Limited(limited))
        .handshake_timeout(Some(Duration::from_secs(1)));
    let peer = "127.0.0.1:1".parse().unwrap();
    let server = factory.build_protocol(peer).unwrap();
    assert!(
        factory.build_protocol(peer).is_none(),
        "the refusal is kept"
    );
    let mut recorder = Recorder::new(server);
    recorder.advance(Duration::from_secs(1));
    assert_eq!(
        recorder.reason(),
        Some(&Reason::TimedOut(Timeout::Handshake))
    );
}

/// A factory from a closure that may refuse.
struct Limited<F>(F);

impl<F: FnMut(std::net::SocketAddr) -> Option<Echo>> loomwork::stream::ServerFactory
    for Limited<F>
{
    type Protocol = Echo;
    fn build_protocol(&mut self, peer: std::net::SocketAddr) -> Option<Echo> {
        (self.0)(peer)
    }
}

/// A real ClientHello, to seed the garbage with something that gets past the first record.
fn client_hello() -> Vec<u8> {
    let ca = Ca::new("CA");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Echo::default()
    });
    let mut recorder = Recorder::new(client);
    recorder.take_written().to_vec()
}

fn hostile_inputs() -> BoxedStrategy<Vec<u8>> {
    let hello = client_hello();
    let mutated = hello.clone();
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => Just(hello.clone()),
        2 => (0..hello.len(), any::<u8>()).prop_map(move |(at, byte)| {
            let mut bytes = mutated.clone();
            bytes[at] = byte;
            bytes
        }),
        1 => (0..hello.len()).prop_map(move |len| hello[..len].to_vec()),
    ]
    .boxed()
}

#[test]
fn a_tls_server_fed_hostile_input_never_panics_and_ends_with_one_reason() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let config = server_config(&leaf, None, TLS13);
    let check =
        StreamCheck::protocol(move || Tls::server(config.clone(), |_| Echo::default())).cases(64);
    check
        .ends_with_one_reason(properties::schedule::<()>(hostile_inputs()))
        .unwrap();
}

#[test]
fn a_tls_client_fed_hostile_input_never_panics_and_ends_with_one_reason() {
    let ca = Ca::new("CA");
    let config = client_config(&ca, None, TLS13);
    let check = StreamCheck::protocol(move || {
        Tls::client(config.clone(), localhost(), |_| Echo::default())
    })
    .cases(32);
    check
        .ends_with_one_reason(properties::schedule::<()>(proptest::collection::vec(
            any::<u8>(),
            0..300,
        )))
        .unwrap();
}

#[test]
fn no_shared_protocol_version_is_refused_as_no_shared_parameters_on_both_sides() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS12), localhost(), |_| {
        Ask::new(b"x")
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Echo::default());
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.run(Duration::from_secs(30));
    assert_eq!(
        pair.server.reason(),
        Some(&tls_reason(TlsErrorKind::NoSharedParameters, false))
    );
    assert_eq!(
        pair.client.reason(),
        Some(&tls_reason(TlsErrorKind::NoSharedParameters, true))
    );
}

#[test]
fn the_agreed_alpn_protocol_is_in_the_info_on_both_sides() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut server_config = (*server_config(&leaf, None, TLS13)).clone();
    server_config.alpn_protocols = vec![b"loom/1".to_vec(), b"http/1.1".to_vec()];
    let mut client_config = (*client_config(&ca, None, TLS13)).clone();
    client_config.alpn_protocols = vec![b"loom/1".to_vec()];
    let client = Tls::client(std::sync::Arc::new(client_config), localhost(), |_| {
        Ask::new(b"x")
    });
    let server = Tls::server(std::sync::Arc::new(server_config), |_| Echo::default());
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)));
    let server_info = pair.server.protocol().info().unwrap();
    assert_eq!(server_info.alpn_protocol.as_deref(), Some(&b"loom/1"[..]));
    let client_info = pair.client.protocol().info().unwrap();
    assert_eq!(client_info.alpn_protocol.as_deref(), Some(&b"loom/1"[..]));
    assert!(client_info.cipher_suite.is_some());
}

#[test]
fn a_tls_connection_can_move_between_threads() {
    fn send<T: Send>(_: &T) {}
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    send(&Tls::server(server_config(&leaf, None, TLS13), |_| {
        Echo::default()
    }));
}

/// Retries refused attempts with the backoff; records every end.
#[derive(Default)]
struct Patient {
    failures: Vec<Reason>,
    ends: Vec<Reason>,
}

impl loomwork::connector::ClientFactory for Patient {
    type Protocol = Ask;
    fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<Ask> {
        Some(Ask::new(b"ping"))
    }
    fn connection_failed(&mut self, reason: &Reason) -> loomwork::connector::Retry {
        self.failures.push(reason.clone());
        loomwork::connector::Retry::Backoff
    }
    fn connection_lost(&mut self, reason: &Reason) -> loomwork::connector::Retry {
        self.ends.push(reason.clone());
        loomwork::connector::Retry::Stop
    }
}

#[test]
fn a_reconnecting_connector_works_over_tls() {
    use loomwork::connector;
    use loomwork::stream::Config;
    use loomwork::testing::{NetworkConfig, StreamNetwork};
    use loomwork_tls::TlsClientFactory;

    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut net = StreamNetwork::new(NetworkConfig::default());
    let server = net.listen(
        "10.0.0.1:443".parse().unwrap(),
        TlsFactory::new(server_config(&leaf, None, TLS13), |_| Echo::default()),
        Config::default(),
    );
    let addr = net.listener_addr(server).unwrap();
    net.set_refusing(server, true);
    let factory = TlsClientFactory::new(
        client_config(&ca, None, TLS13),
        localhost(),
        Patient::default(),
    );
    let client = net.connect(addr, factory, connector::Config::default());
    net.run_for(Duration::from_millis(10));
    net.set_refusing(server, false);
    net.run_until_idle();

    let connector = net.connector::<TlsClientFactory<Patient>>(client).unwrap();
    assert_eq!(connector.factory().inner().failures, [Reason::Refused]);
    assert_eq!(connector.attempts(), 2);
    assert_eq!(connector.factory().inner().ends, [Reason::Done]);
    let tls = net.client_protocol::<Tls<Ask>>(client).unwrap();
    assert_eq!(tls.protocol().unwrap().reply, b"ping");
}

/// Says "tick" five seconds after it starts, through a timer; notes whether it had a handle.
#[derive(Default)]
struct Ticker {
    had_handle: bool,
    messages: usize,
}

impl Protocol for Ticker {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.had_handle = tx.handle().is_some();
        tx.call_later(Duration::from_secs(5));
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn timer_fired(&mut self, _: loomwork::TimerId, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(b"tick");
    }
    fn message(&mut self, (): (), _: &mut Transport<'_>) {
        self.messages += 1;
    }
}

#[test]
fn the_wrapped_protocol_gets_its_timers_messages_and_handle_through_the_layer() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Hold::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Ticker::default());
    let mut link = Link::new(client, server);
    let ticker = link.server.protocol().protocol().unwrap();
    assert!(ticker.had_handle);
    link.server.post(()).unwrap();
    assert_eq!(link.server.protocol().protocol().unwrap().messages, 1);
    link.server.advance(Duration::from_millis(4_999));
    link.pump();
    assert_eq!(link.client.protocol().protocol().unwrap().received, 0);
    link.server.advance(Duration::from_millis(1));
    link.pump();
    assert_eq!(link.client.protocol().protocol().unwrap().received, 4);
}

#[test]
fn policies_and_framed_handlers_run_inside_the_layer() {
    use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
    use loomwork::policy::IdleTimeout;

    struct Shout;
    impl FrameHandler for Shout {
        type Codec = LineCodec;
        type Message = ();
        fn frame_received(
            &mut self,
            line: loomwork::bytes::Bytes,
            tx: &mut FrameTransport<'_, '_, LineCodec>,
        ) {
            let _ = tx.send_frame(line.to_ascii_uppercase());
        }
    }

    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| Hold {
        greeting: b"hello\r\nworld\r\n".to_vec(),
        ..Hold::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| {
        IdleTimeout::new(
            Framed::new(Shout, LineCodec::new()),
            Duration::from_secs(30),
        )
    });
    let mut link = Link::new(client, server);
    assert_eq!(link.client.protocol().protocol().unwrap().received, 14);
    // The idle timeout inside the layer ends the connection, with its own reason.
    link.server.advance(Duration::from_secs(30));
    link.pump();
    assert_eq!(link.server.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
    // It closed gracefully: close_notify reached the client, whose protocol heard the end.
    let client = link.client.protocol().plaintext().unwrap();
    assert_eq!(client.reason(), Some(&Reason::Done));
}

#[test]
fn a_paused_outer_connection_gets_no_new_records_until_it_resumes() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let total = 4 * 1024 * 1024;
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), move |_| {
        Flood {
            total,
            sent: 0,
            paused_at_least_once: false,
        }
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Sink::default());
    let mut link = Link::new(client, server);
    link.client.set_peer_reads(PeerReads::Nothing);
    link.client.post(()).unwrap();
    link.client.run_until_idle();
    let full = link.client.queued_bytes();
    assert!(full > 64 * 1024, "paused above the high-water mark: {full}");
    // The peer takes some: the queue is below the high-water mark but above the low one,
    // so the outer connection stays paused, and a turn of the wrapped protocol (a message)
    // adds nothing to it.
    link.client
        .set_peer_reads(PeerReads::AtMost(full - 40 * 1024));
    link.client.step();
    link.client.set_peer_reads(PeerReads::Nothing);
    assert_eq!(link.client.queued_bytes(), 40 * 1024);
    link.client.post(()).unwrap();
    assert_eq!(link.client.queued_bytes(), 40 * 1024);
    // Below the low-water mark (the queue's account counts a buffer until all of it is
    // written) the outer connection resumes, and records flow again.
    let sent = link.client.protocol().protocol().unwrap().sent;
    link.client.set_peer_reads(PeerReads::AtMost(40 * 1024));
    link.client.step();
    assert!(link.client.queued_bytes() > 0);
    assert!(link.client.protocol().protocol().unwrap().sent > sent);
}

/// A server protocol with last words for a shutdown.
#[derive(Default)]
struct Farewell {
    asked: bool,
}

impl Protocol for Farewell {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn close_requested(&mut self, tx: &mut Transport<'_>) {
        self.asked = true;
        let _ = tx.write_slice(b"server going down\n");
        tx.lose_connection();
    }
}

/// Collects what arrives; closes at the end of input.
#[derive(Default)]
struct Collect {
    got: Vec<u8>,
    read_closed: bool,
}

impl Protocol for Collect {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.got.extend_from_slice(&data.split());
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        self.read_closed = true;
        tx.lose_connection();
    }
}

#[test]
fn a_close_asked_through_the_handle_sends_the_last_words_then_close_notify() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS12), localhost(), |_| {
        Collect::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS12), |_| Farewell::default());
    let mut link = Link::new(client, server);
    let before = link.to_client.len();
    // A server shutdown: a graceful close through the connection's handle.
    assert!(link.server.close());
    link.pump();
    assert!(link.server.protocol().protocol().unwrap().asked);
    // TLS 1.2 shows record types: application data (the last words), then one alert, the
    // close_notify, last.
    let down = records(&link.to_client[before..]);
    assert_eq!(
        down.iter().map(|r| r.0).collect::<Vec<_>>(),
        [23, 21],
        "{down:?}"
    );
    let client = link.client.protocol().protocol().unwrap();
    assert_eq!(client.got, b"server going down\n");
    assert!(client.read_closed, "a clean end of input, not a truncation");
    assert_eq!(link.client.reason(), Some(&Reason::Done));
}

/// On a message, writes `len` bytes and closes.
struct DumpAndClose {
    len: usize,
}

impl Protocol for DumpAndClose {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn message(&mut self, (): (), tx: &mut Transport<'_>) {
        let _ = tx.write(vec![b'x'; self.len]);
        tx.lose_connection();
    }
}

/// The whole graceful close, both sides of the layer, fits in one close deadline. Here the
/// peer reads slowly enough that `P`'s own queue is through just before 30 s while records
/// are still queued outside; with a deadline per layer the close would end cleanly at 32 s
/// (measured), with one it is aborted at 30 s.
#[test]
fn a_graceful_close_fits_in_one_close_deadline_across_the_layer() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Collect::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| DumpAndClose {
        len: 262_000,
    });
    let mut link = Link::new(client, server);
    let start = link.server.now();
    // The peer takes 4 KiB per step from now on.
    link.server.set_peer_reads(PeerReads::AtMost(4096));
    link.server.post(()).unwrap();
    let mut ended_at = None;
    for second in 1..=60 {
        link.server.advance(Duration::from_secs(1));
        if ended_at.is_none() && link.server.is_ended() {
            ended_at = Some(second);
        }
    }
    assert_eq!(
        link.server.reason(),
        Some(&Reason::TimedOut(Timeout::Close))
    );
    let ended_at = ended_at.expect("the close ended");
    assert!(
        ended_at <= 30,
        "ended {ended_at} s after the close began (start {start:?})"
    );
}

/// A TLS 1.3 client counts itself connected once it has the server's flight, a round trip
/// before the server does. A server shutdown in between waits for the client's Finished, then
/// sends `close_notify`: the client sees a clean end, never a truncation.
#[test]
fn a_close_between_the_servers_flight_and_the_clients_finished_ends_cleanly() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Collect::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Farewell::default());
    let mut client = Recorder::new(client);
    let mut server = Recorder::new(server);
    // ClientHello up, the server's whole flight down.
    server.receive(&client.take_written());
    client.receive(&server.take_written());
    assert!(!client.protocol().is_handshaking(), "the client is through");
    assert!(
        server.protocol().is_handshaking(),
        "the server waits for Finished"
    );
    // The shutdown lands now: nothing is closed yet, nothing more is written.
    assert!(server.close());
    assert!(!server.is_closed(), "the close waits for the handshake");
    assert!(server.take_written().is_empty());
    // The client's Finished arrives: the server finishes, says its last words, and closes.
    server.receive(&client.take_written());
    assert!(server.protocol().protocol().unwrap().asked);
    client.receive(&server.take_written());
    let collected = client.protocol().protocol().unwrap();
    assert_eq!(collected.got, b"server going down\n");
    assert!(
        collected.read_closed,
        "a clean end of input, not a truncation"
    );
    server.receive(&client.take_written());
    client.receive_eof();
    assert_eq!(client.reason(), Some(&Reason::Done));
    server.receive_eof();
    assert_eq!(server.reason(), Some(&Reason::Done));
}

/// The wait for the handshake is bounded by the close deadline: a client that never sends its
/// Finished is aborted when it passes.
#[test]
fn a_close_waiting_for_the_handshake_ends_at_the_close_deadline() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = Tls::client(client_config(&ca, None, TLS13), localhost(), |_| {
        Collect::default()
    });
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Farewell::default())
        .handshake_timeout(None);
    let mut client = Recorder::new(client);
    let mut server = Recorder::new(server);
    server.receive(&client.take_written());
    assert!(server.close());
    server.advance(Duration::from_secs(29));
    assert!(!server.is_ended());
    server.advance(Duration::from_secs(1));
    assert_eq!(server.reason(), Some(&Reason::TimedOut(Timeout::Close)));
    assert!(!server.protocol().protocol().is_some_and(|p| p.asked));
}

/// A server whose peer has not even sent its ClientHello waits for the handshake as well: a
/// graceful shutdown lets every handshake under way finish cleanly, and a silent peer is
/// evicted by the handshake timeout.
#[test]
fn a_close_before_the_client_hello_waits_for_the_handshake_timeout_at_most() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let server = Tls::server(server_config(&leaf, None, TLS13), |_| Farewell::default())
        .handshake_timeout(Some(Duration::from_secs(5)));
    let mut server = Recorder::new(server);
    assert!(server.close());
    assert!(!server.is_ended());
    server.advance(Duration::from_secs(5));
    assert_eq!(server.reason(), Some(&Reason::TimedOut(Timeout::Handshake)));
}
