//! STARTTLS in memory: a line protocol that switches its connection to TLS mid-stream, the
//! bytes after the upgrade command handed to the TLS layer exactly.

mod common;

use std::time::Duration;

use common::*;
use loomwork::bytes::Bytes;
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork::testing::{Pair, PairConfig, Recorder};
use loomwork::{Reason, TlsError, TlsErrorKind};
use loomwork_tls::{StartTls, StartTlsProtocol, Tls, TlsInfo, UpgradeRequest};

/// Twisted's `starttls_server.py`: echoes lines; `STARTTLS` gets `READY`, then TLS.
#[derive(Default)]
struct LineServer {
    lines: Vec<String>,
    upgrade: Option<UpgradeRequest>,
    upgraded: bool,
    client_name: Option<String>,
    tls_started_at_line: Option<usize>,
    lost: Vec<Reason>,
}

impl FrameHandler for LineServer {
    type Codec = LineCodec;
    type Message = ();
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        self.lines.push(String::from_utf8_lossy(&line).into_owned());
        if line == "STARTTLS" && !self.upgraded {
            self.upgraded = true;
            let _ = tx.send_frame("READY");
            let rest = tx.clear_buffer();
            self.upgrade = Some(UpgradeRequest::new(tx, rest));
        } else {
            let _ = tx.send_frame(line);
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost.push(reason.clone());
    }
}

impl StartTlsProtocol for LineServer {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.upgrade.take()
    }
    fn tls_started(&mut self, info: &TlsInfo) {
        self.client_name = info.peer_common_name();
        self.tls_started_at_line = Some(self.lines.len());
    }
}

/// Twisted's `starttls_client.py`: `plain text`, `STARTTLS`; on `READY` switches, sends
/// `secure text`, closes once it is echoed.
#[derive(Default)]
struct LineClient {
    /// Stays connected after the last echo (the server's idle timeout ends it).
    stays: bool,
    echoes: Vec<String>,
    upgrade: Option<UpgradeRequest>,
    tls_started: bool,
    lost: Vec<Reason>,
}

impl FrameHandler for LineClient {
    type Codec = LineCodec;
    type Message = ();
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame("plain text");
        let _ = tx.send_frame("STARTTLS");
    }
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if line == "READY" {
            let rest = tx.clear_buffer();
            self.upgrade = Some(UpgradeRequest::new(tx, rest));
            let _ = tx.send_frame("secure text"); // written after the request: encrypted
            return;
        }
        self.echoes
            .push(String::from_utf8_lossy(&line).into_owned());
        if line == "secure text" && !self.stays {
            tx.lose_connection();
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.lost.push(reason.clone());
    }
}

impl StartTlsProtocol for LineClient {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.upgrade.take()
    }
    fn tls_started(&mut self, _: &TlsInfo) {
        self.tls_started = true;
    }
}

type Server = StartTls<Framed<LineServer>>;
type Client = StartTls<Framed<LineClient>>;

fn line_server(config: std::sync::Arc<rustls::ServerConfig>) -> Server {
    StartTls::server(config, Framed::new(LineServer::default(), LineCodec::new()))
}

fn line_client(config: std::sync::Arc<rustls::ClientConfig>) -> Client {
    StartTls::client(
        config,
        localhost(),
        Framed::new(LineClient::default(), LineCodec::new()),
    )
}

fn server_of(server: &Server) -> &LineServer {
    server.protocol().unwrap().handler()
}

fn client_of(client: &Client) -> &LineClient {
    client.protocol().unwrap().handler()
}

fn exchange(max_read: usize) {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let client = line_client(client_config(&ca, None, TLS13));
    let server = line_server(server_config(&leaf, None, TLS13));
    let config = PairConfig {
        max_read,
        ..PairConfig::default()
    };
    let mut pair = Pair::new(client, server, config);
    assert!(pair.run(Duration::from_secs(30)), "both sides close");
    let client = client_of(pair.client.protocol());
    assert_eq!(client.echoes, ["plain text", "secure text"]);
    assert!(client.tls_started);
    assert_eq!(client.lost, [Reason::Done], "connection_lost once");
    let server = server_of(pair.server.protocol());
    assert_eq!(server.lines, ["plain text", "STARTTLS", "secure text"]);
    assert_eq!(server.tls_started_at_line, Some(2));
    assert_eq!(server.lost, [Reason::Done]);
    assert!(pair.client.protocol().is_upgraded());
    assert!(pair.server.protocol().tls().unwrap().info().is_some());
    assert_eq!(pair.client.reason(), Some(&Reason::Done));
    assert_eq!(pair.server.reason(), Some(&Reason::Done));
}

#[test]
fn a_line_protocol_switches_to_tls_and_keeps_its_state() {
    exchange(64 * 1024);
}

#[test]
fn one_byte_per_read_switches_the_same_way() {
    exchange(1);
}

#[test]
fn only_the_lines_before_the_switch_cross_the_wire_in_plaintext() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let link = Link::new(
        line_client(client_config(&ca, None, TLS12)),
        line_server(server_config(&leaf, None, TLS12)),
    );
    let up = &link.to_server;
    let down = &link.to_client;
    assert!(up.starts_with(b"plain text\r\nSTARTTLS\r\n"));
    assert!(down.starts_with(b"plain text\r\nREADY\r\n"));
    // After the plaintext come TLS records only (handshake first), and no plaintext line.
    let up_records = records(&up[22..]);
    assert_eq!(up_records.first().map(|r| r.0), Some(22), "a ClientHello");
    let down_records = records(&down[19..]);
    assert_eq!(down_records.first().map(|r| r.0), Some(22), "a ServerHello");
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(!find(up, b"secure text"));
    assert!(!find(down, b"secure text"));
    assert_eq!(
        client_of(link.client.protocol()).echoes,
        ["plain text", "secure text"]
    );
}

/// The server fed `before` (plaintext lines) and a real ClientHello in one read, or one byte
/// per read: the TLS client on the other end completes its exchange.
fn client_hello_right_behind_the_command(one_byte_per_read: bool) {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut client = Recorder::new(Tls::client(
        client_config(&ca, None, TLS13),
        localhost(),
        |_| Ask::new(b"secure text\r\n"),
    ));
    let mut server = Recorder::new(line_server(server_config(&leaf, None, TLS13)));
    let mut first = b"plain text\r\nSTARTTLS\r\n".to_vec();
    first.extend_from_slice(&client.take_written());
    if one_byte_per_read {
        for byte in &first {
            server.receive(&[*byte]);
        }
    } else {
        server.receive(&first);
    }
    let written = server.take_written();
    let plaintext = b"plain text\r\nREADY\r\n";
    assert!(written.starts_with(plaintext), "{written:?}");
    client.receive(&written[plaintext.len()..]);
    for _ in 0..1000 {
        let up = client.take_written();
        let down = server.take_written();
        if up.is_empty() && down.is_empty() {
            break;
        }
        if one_byte_per_read {
            for byte in up.iter() {
                server.receive(&[*byte]);
            }
        } else if !up.is_empty() {
            server.receive(&up);
        }
        if !down.is_empty() {
            client.receive(&down);
        }
    }
    assert_eq!(
        client.protocol().protocol().unwrap().reply,
        b"secure text\r\n"
    );
    let lines = &server_of(server.protocol()).lines;
    assert_eq!(lines, &["plain text", "STARTTLS", "secure text"]);
    assert_eq!(server.reason(), Some(&Reason::Done));
}

#[test]
fn a_client_hello_in_the_same_read_as_starttls_reaches_the_tls_layer_whole() {
    client_hello_right_behind_the_command(false);
}

#[test]
fn a_client_hello_one_byte_per_read_behind_starttls_reaches_the_tls_layer_whole() {
    client_hello_right_behind_the_command(true);
}

#[test]
fn mutual_tls_after_starttls_names_the_client_before_its_first_secure_line() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let alice = ca.client_leaf("alice");
    let client = line_client(client_config(&ca, Some(&alice), TLS13));
    let server = line_server(server_config(&leaf, Some(&ca), TLS13));
    let mut pair = Pair::new(client, server, PairConfig::default());
    assert!(pair.run(Duration::from_secs(30)));
    let server = server_of(pair.server.protocol());
    assert_eq!(server.client_name.as_deref(), Some("alice"));
    assert_eq!(server.tls_started_at_line, Some(2));
    assert_eq!(server.lines.len(), 3);
}

#[test]
fn a_failed_handshake_after_starttls_ends_the_protocol_once_with_the_typed_reason() {
    let ca = Ca::new("CA");
    let other = Ca::new("other CA");
    let leaf = ca.server_leaf("localhost");
    let client = line_client(client_config(&other, None, TLS13));
    let server = line_server(server_config(&leaf, None, TLS13));
    let mut pair = Pair::new(client, server, PairConfig::default());
    pair.run(Duration::from_secs(30));
    let unknown = Reason::Tls(TlsError {
        kind: TlsErrorKind::UnknownIssuer,
        by_peer: false,
    });
    assert_eq!(pair.client.reason(), Some(&unknown));
    let client = client_of(pair.client.protocol());
    assert_eq!(client.lost, [unknown]);
    assert!(!client.tls_started);
    assert_eq!(client.echoes, ["plain text"]);
    let server = server_of(pair.server.protocol());
    assert_eq!(server.lost.len(), 1);
    assert!(server.tls_started_at_line.is_none());
}

#[test]
fn a_stalled_handshake_after_starttls_times_out() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let server = line_server(server_config(&leaf, None, TLS13))
        .handshake_timeout(Some(Duration::from_secs(2)));
    let mut server = Recorder::new(server);
    server.receive(b"STARTTLS\r\n");
    assert_eq!(server.take_written(), "READY\r\n");
    server.advance(Duration::from_secs(2));
    assert_eq!(
        server.reason(),
        Some(&Reason::TimedOut(loomwork::Timeout::Handshake))
    );
    assert_eq!(
        server_of(server.protocol()).lost,
        [Reason::TimedOut(loomwork::Timeout::Handshake)]
    );
}

#[test]
fn without_an_upgrade_it_is_a_plain_line_protocol() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut server = Recorder::new(line_server(server_config(&leaf, None, TLS13)));
    server.receive(b"hel");
    server.receive(b"lo\r\nworld\r\n");
    assert_eq!(server.take_written(), "hello\r\nworld\r\n");
    server.receive_eof();
    assert_eq!(server.reason(), Some(&Reason::Done));
    assert!(!server.protocol().is_upgraded());
    assert_eq!(server_of(server.protocol()).lost, [Reason::Done]);
}

/// A plain protocol (no framing) that reads the command itself and hands on the rest of its
/// receive buffer.
#[derive(Default)]
struct RawServer {
    upgrade: Option<UpgradeRequest>,
    switched: bool,
    secure: Vec<u8>,
}

impl loomwork::stream::Protocol for RawServer {
    type Message = ();
    fn data_received(
        &mut self,
        data: &mut loomwork::bytes::BytesMut,
        tx: &mut loomwork::stream::Transport<'_>,
    ) {
        if self.switched {
            self.secure.extend_from_slice(&data.split());
            let _ = tx.write_slice(b"secure text\r\n");
            return;
        }
        let command = b"STARTTLS\r\n";
        if data.len() < command.len() {
            return;
        }
        assert_eq!(&data[..command.len()], command);
        let _ = data.split_to(command.len());
        let _ = tx.write_slice(b"READY\r\n");
        self.switched = true;
        self.upgrade = Some(UpgradeRequest::new(tx, data.split()));
    }
}

impl StartTlsProtocol for RawServer {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.upgrade.take()
    }
}

/// Sends only `STARTTLS` in plaintext, then `secure text`; closes on its echo.
#[derive(Default)]
struct ShortClient(LineClient);

impl FrameHandler for ShortClient {
    type Codec = LineCodec;
    type Message = ();
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame("STARTTLS");
    }
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        self.0.frame_received(line, tx);
    }
}

impl StartTlsProtocol for ShortClient {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.0.take_upgrade()
    }
}

#[test]
fn a_plain_protocol_hands_on_the_rest_of_its_buffer_one_byte_per_read_too() {
    for max_read in [1, 64 * 1024] {
        let ca = Ca::new("CA");
        let leaf = ca.server_leaf("localhost");
        let client = StartTls::client(
            client_config(&ca, None, TLS12),
            localhost(),
            Framed::new(ShortClient::default(), LineCodec::new()),
        );
        let server = StartTls::server(server_config(&leaf, None, TLS12), RawServer::default());
        let config = PairConfig {
            max_read,
            ..PairConfig::default()
        };
        let mut pair = Pair::new(client, server, config);
        assert!(pair.run(Duration::from_secs(30)));
        let client = pair.client.protocol().protocol().unwrap().handler();
        assert_eq!(client.0.echoes, ["secure text"]);
        let server = pair.server.protocol().protocol().unwrap();
        assert_eq!(server.secure, b"secure text\r\n");
        assert_eq!(pair.server.reason(), Some(&Reason::Done));
    }
}

#[test]
fn a_close_asked_from_outside_in_the_plaintext_phase_reaches_the_protocol() {
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let mut server = Recorder::new(line_server(server_config(&leaf, None, TLS13)));
    server.receive(b"hello\r\n");
    assert_eq!(server.take_written(), "hello\r\n");
    assert!(server.close());
    server.receive_eof();
    assert_eq!(server.reason(), Some(&Reason::Done));
    assert_eq!(server_of(server.protocol()).lost, [Reason::Done]);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    #[test]
    fn any_chunking_switches_the_same_way(max_read in 1usize..600) {
        exchange(max_read);
    }
}

/// The policy wrappers pass STARTTLS through: a line server inside an idle timeout, a traffic
/// log and a connection limit switches the same way, one byte per read, and its idle timer,
/// armed in plaintext, goes on over TLS and ends the connection with a clean `close_notify`.
#[test]
fn starttls_passes_through_the_policy_wrappers_and_their_timers_go_on_over_tls() {
    use loomwork::policy::{IdleTimeout, Limited, TrafficLog};
    use loomwork::Timeout;
    let ca = Ca::new("CA");
    let leaf = ca.server_leaf("localhost");
    let idle = Duration::from_secs(10);
    let server = StartTls::server(
        server_config(&leaf, None, TLS13),
        IdleTimeout::new(
            TrafficLog::new(
                Limited::Admitted(Framed::new(LineServer::default(), LineCodec::new())),
                "starttls",
            ),
            idle,
        ),
    );
    let client = StartTls::client(
        client_config(&ca, None, TLS13),
        localhost(),
        Framed::new(
            LineClient {
                stays: true,
                ..LineClient::default()
            },
            LineCodec::new(),
        ),
    );
    let config = PairConfig {
        max_read: 1,
        ..PairConfig::default()
    };
    let mut pair = Pair::new(client, server, config);
    assert!(pair.run(Duration::from_secs(60)), "both sides close");
    let Some(Limited::Admitted(framed)) = pair
        .server
        .protocol()
        .protocol()
        .map(|idle| idle.inner().inner())
    else {
        panic!("admitted");
    };
    let server = framed.handler();
    assert_eq!(server.lines, ["plain text", "STARTTLS", "secure text"]);
    assert_eq!(
        server.tls_started_at_line,
        Some(2),
        "tls_started reached it"
    );
    assert_eq!(server.lost, [Reason::TimedOut(Timeout::Idle)]);
    assert!(
        pair.now().since_epoch() >= idle,
        "idle for the whole period"
    );
    let client = client_of(pair.client.protocol());
    assert_eq!(client.echoes, ["plain text", "secure text"]);
    assert_eq!(client.lost, [Reason::Done], "a clean end over TLS");
}
