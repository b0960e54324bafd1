//! A thousand 1-byte writes in one turn, over TLS on a real loopback socket (loomwork-std and
//! loomwork-smol): the bytes on the wire stay within 1.1x of the payload plus one record's
//! overhead (Twisted's TLS sends one record per write: ~23x here).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use loomwork::bytes::BytesMut;
use loomwork::stream::{Protocol, Transport};
use loomwork_tls::rustls::{ClientConnection, ServerConfig};
use loomwork_tls::testing::{fixture_client_config, fixture_server_config, fixture_server_name};
use loomwork_tls::TlsFactory;

const WRITES: usize = 1000;
/// A TLS 1.3 record's overhead: a 5-byte header, the inner content type, a 16-byte tag.
const RECORD_OVERHEAD: usize = 5 + 1 + 16;

/// Writes one byte a thousand times as soon as the handshake is done.
struct Chatty;

impl Protocol for Chatty {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        for _ in 0..WRITES {
            let _ = tx.write_slice(b"x");
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
}

/// No session tickets, so nothing but the burst follows the handshake.
fn config() -> Arc<ServerConfig> {
    let mut config = (*fixture_server_config()).clone();
    config.send_tls13_tickets = 0;
    Arc::new(config)
}

/// Handshakes with the server at `addr`, then counts the ciphertext bytes until the burst's
/// plaintext has all arrived.
fn wire_bytes_for_the_burst(addr: std::net::SocketAddr) -> usize {
    let mut sock = TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut conn = ClientConnection::new(fixture_client_config(), fixture_server_name()).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).unwrap();
    }
    let mut wire = 0;
    let mut plain = 0;
    let mut buf = [0u8; 4096];
    while plain < WRITES {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "EOF after {plain} plaintext bytes");
        wire += n;
        conn.read_tls(&mut &buf[..n]).unwrap();
        conn.process_new_packets().unwrap();
        let mut reader = conn.reader();
        let mut got = [0u8; 4096];
        while let Ok(k @ 1..) = reader.read(&mut got) {
            plain += k;
        }
    }
    conn.send_close_notify();
    let _ = conn.write_tls(&mut sock);
    let _ = sock.flush();
    assert_eq!(plain, WRITES);
    wire
}

fn assert_within_bound(runtime: &str, wire: usize) {
    let bound = ((WRITES + RECORD_OVERHEAD) as f64 * 1.1) as usize;
    eprintln!(
        "{runtime}: {WRITES} one-byte writes: {wire} bytes on the wire ({:.3}x the payload)",
        wire as f64 / WRITES as f64
    );
    assert!(
        wire <= bound,
        "{runtime}: {wire} bytes on the wire > {bound}"
    );
}

#[test]
fn std_a_thousand_one_byte_writes_cost_one_record_on_the_wire() {
    let _guard = loomwork_conformance::shared();
    let server = loomwork_std::listen_tcp(
        "127.0.0.1:0".parse().unwrap(),
        TlsFactory::new(config(), |_| Chatty),
    )
    .unwrap();
    let wire = wire_bytes_for_the_burst(server.local_addr());
    server.shutdown(Duration::from_secs(2));
    assert_within_bound("std", wire);
}

#[test]
fn smol_a_thousand_one_byte_writes_cost_one_record_on_the_wire() {
    let _guard = loomwork_conformance::shared();
    let server = loomwork_smol::listen_tcp(
        "127.0.0.1:0".parse().unwrap(),
        TlsFactory::new(config(), |_| Chatty),
    )
    .unwrap();
    let wire = wire_bytes_for_the_burst(server.local_addr());
    smol::block_on(server.shutdown(Duration::from_secs(2)));
    assert_within_bound("smol", wire);
}
