//! The parser against the specification's examples, the wrapper on in-memory connections, and
//! chunking invariance under proptest.

use alloc::string::String;
use alloc::vec::Vec;
use alloc::{format, vec};
use core::net::SocketAddr;
use core::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use super::*;
use crate::reason::{Reason, Timeout};
use crate::stream::{Config, Connection, Protocol, ServerFactory, Transport};
use crate::time::Instant;

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn decode_all(bytes: &[u8]) -> (Result<Option<Header>, ParseError>, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    (decode(&mut buf, MAX_V2_LEN), buf)
}

/// A v2 header for TCP over IPv4 from 192.0.2.7:50000 to 10.0.0.1:80, with `tlvs` appended.
fn v2_inet(tlvs: &[u8]) -> Vec<u8> {
    let mut out = SIGNATURE.to_vec();
    out.extend_from_slice(&[0x21, 0x11]);
    out.extend_from_slice(&(12 + tlvs.len() as u16).to_be_bytes());
    out.extend_from_slice(&[192, 0, 2, 7, 10, 0, 0, 1]);
    out.extend_from_slice(&50000u16.to_be_bytes());
    out.extend_from_slice(&80u16.to_be_bytes());
    out.extend_from_slice(tlvs);
    out
}

// ----- v1 ------------------------------------------------------------------------------------

#[test]
fn v1_tcp4_from_the_specification_parses_and_leaves_the_payload() {
    let (header, rest) =
        decode_all(b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\nGET");
    let header = header.unwrap().unwrap();
    assert_eq!(header.version(), Version::V1);
    assert_eq!(header.source(), Some(addr("255.255.255.255:65535")));
    assert_eq!(header.destination(), Some(addr("255.255.255.255:65535")));
    assert_eq!(&rest[..], b"GET");
}

#[test]
fn v1_at_the_107_byte_maximum_parses() {
    // The specification's worst case: UNKNOWN followed by the longest TCP6 fields.
    let full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    let text = format!("PROXY UNKNOWN {full} {full} 65535 65535\r\n");
    assert_eq!(text.len(), MAX_V1_LEN);
    let (header, rest) = decode_all(text.as_bytes());
    assert_eq!(header.unwrap().unwrap().addresses(), &Addresses::Unknown);
    assert!(rest.is_empty());
    let text = format!("PROXY TCP6 {full} {full} 65535 65535\r\n");
    let header = decode_all(text.as_bytes()).0.unwrap().unwrap();
    assert_eq!(header.source().map(|a| a.port()), Some(65535));
    assert!(header.source().unwrap().is_ipv6());
}

#[test]
fn v1_unknown_ignores_the_rest_of_its_line_and_keeps_real_addresses() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n",
    ] {
        let header = decode_all(line).0.unwrap().unwrap();
        assert_eq!(header.addresses(), &Addresses::Unknown);
        assert_eq!(header.source(), None);
    }
}

#[test]
fn v1_without_crlf_in_107_bytes_is_too_long() {
    let mut text = b"PROXY TCP4 ".to_vec();
    text.resize(MAX_V1_LEN, b'1');
    assert_eq!(decode_all(&text[..106]).0, Ok(None));
    assert_eq!(decode_all(&text).0, Err(ParseError::V1TooLong));
}

#[test]
fn v1_malformed_lines_are_refused() {
    for bad in [
        &b"PROXY TCP4 192.0.2.1 10.0.0.1 1 2\n"[..], // LF without CR
        b"PROXY TCP4 192.0.2.1  10.0.0.1 1 2\r\n",   // double space
        b"PROXY TCP4 192.0.2.1 10.0.0.1 1\r\n",      // missing port
        b"PROXY TCP4 192.0.2.1 10.0.0.1 1 2 3\r\n",  // extra field
        b"PROXY TCP4 ::1 ::1 1 2\r\n",               // wrong family
        b"PROXY TCP6 192.0.2.1 10.0.0.1 1 2\r\n",    // wrong family
        b"PROXY TCP4 192.0.2.1 10.0.0.1 65536 2\r\n", // port out of range
        b"PROXY TCP4 192.0.2.1 10.0.0.1 01 2\r\n",   // leading zero
        b"PROXY TCP4 192.0.2.1 10.0.0.1 +1 2\r\n",   // sign
        b"PROXY UDP4 192.0.2.1 10.0.0.1 1 2\r\n",    // no such protocol
        b"PROXY TCP4 192.0.2.1 10.0.0.1 1 2\x00\r\n", // binary byte
    ] {
        assert_eq!(
            decode_all(bad).0,
            Err(ParseError::V1Malformed),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn other_protocols_are_refused_from_their_first_byte() {
    assert_eq!(decode_all(b"G").0, Err(ParseError::NotProxy));
    assert_eq!(decode_all(b"PROXX").0, Err(ParseError::NotProxy));
    assert_eq!(
        decode_all(b"\r\n\r\n\0\r\nQUIX").0,
        Err(ParseError::NotProxy)
    );
    assert_eq!(detect(b"PRO"), Detected::NeedMore);
    assert_eq!(detect(b"\r\n"), Detected::NeedMore);
    assert_eq!(detect(b"SSH-2.0"), Detected::NotProxy);
}

// ----- v2 ------------------------------------------------------------------------------------

#[test]
fn v2_inet_with_tlvs_parses_zero_copy() {
    let mut tlvs = vec![kind::ALPN, 0, 2, b'h', b'2'];
    tlvs.extend_from_slice(&[kind::AUTHORITY, 0, 11]);
    tlvs.extend_from_slice(b"example.com");
    tlvs.extend_from_slice(&[kind::UNIQUE_ID, 0, 3, 1, 2, 3]);
    // SSL: client flags, verify = 0, sub-TLV version.
    tlvs.extend_from_slice(&[kind::SSL, 0, 5 + 3 + 7, Ssl::CLIENT_SSL, 0, 0, 0, 0]);
    tlvs.extend_from_slice(&[kind::SSL_VERSION, 0, 7]);
    tlvs.extend_from_slice(b"TLSv1.3");
    let mut bytes = v2_inet(&tlvs);
    bytes.extend_from_slice(b"payload");
    let (header, rest) = decode_all(&bytes);
    let header = header.unwrap().unwrap();
    assert_eq!(header.command(), Command::Proxy);
    assert_eq!(header.source(), Some(addr("192.0.2.7:50000")));
    assert_eq!(header.destination(), Some(addr("10.0.0.1:80")));
    assert_eq!(header.alpn(), Some(&b"h2"[..]));
    assert_eq!(header.authority(), Some(&b"example.com"[..]));
    assert_eq!(header.unique_id(), Some(&[1, 2, 3][..]));
    let ssl = header.ssl().unwrap();
    assert_eq!(ssl.client, Ssl::CLIENT_SSL);
    assert_eq!(ssl.verify, 0);
    assert_eq!(ssl.version().as_deref(), Some(&b"TLSv1.3"[..]));
    assert_eq!(header.tlvs().count(), 4);
    assert_eq!(&rest[..], b"payload");
}

#[test]
fn v2_local_ignores_its_addresses() {
    let mut bytes = v2_inet(&[]);
    bytes[12] = 0x20;
    let header = decode_all(&bytes).0.unwrap().unwrap();
    assert_eq!(header.command(), Command::Local);
    assert_eq!(header.addresses(), &Addresses::Unknown);
    assert_eq!(header.source(), None);
}

#[test]
fn v2_unspec_family_keeps_real_addresses_and_skips_its_block() {
    let mut bytes = SIGNATURE.to_vec();
    bytes.extend_from_slice(&[0x21, 0x00, 0, 4, 9, 9, 9, 9, b'x']);
    let (header, rest) = decode_all(&bytes);
    assert_eq!(header.unwrap().unwrap().addresses(), &Addresses::Unknown);
    assert_eq!(&rest[..], b"x");
}

#[test]
fn v2_ipv6_and_unix_parse() {
    let header = Header::proxy(addr("[2001:db8::7]:1"), addr("[2001:db8::1]:2"));
    let mut out = BytesMut::new();
    encode_v2(&header, &mut out).unwrap();
    assert_eq!(out.len(), 16 + 36);
    assert_eq!(decode(&mut out, MAX_V2_LEN), Ok(Some(header)));

    let mut bytes = SIGNATURE.to_vec();
    bytes.extend_from_slice(&[0x21, 0x31, 0, 216]);
    let mut paths = [0u8; 216];
    paths[..4].copy_from_slice(b"/a.s");
    paths[108..111].copy_from_slice(b"/b\0");
    bytes.extend_from_slice(&paths);
    match decode_all(&bytes).0.unwrap().unwrap().addresses() {
        Addresses::Unix {
            source,
            destination,
            kind,
        } => {
            assert_eq!((&source[..], &destination[..]), (&b"/a.s"[..], &b"/b"[..]));
            assert_eq!(*kind, SocketKind::Stream);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn v2_invalid_fields_are_refused_as_soon_as_seen() {
    let good = v2_inet(&[]);
    let with = |at: usize, value: u8| {
        let mut bytes = good.clone();
        bytes[at] = value;
        bytes
    };
    // Refused with only the bytes up to the bad field: no waiting for the rest.
    assert_eq!(
        decode_all(&with(12, 0x11)[..13]).0,
        Err(ParseError::V2Version)
    );
    assert_eq!(
        decode_all(&with(12, 0x22)[..13]).0,
        Err(ParseError::V2Command)
    );
    assert_eq!(
        decode_all(&with(13, 0x41)[..14]).0,
        Err(ParseError::V2Family)
    );
    assert_eq!(
        decode_all(&with(13, 0x13)[..14]).0,
        Err(ParseError::V2Family)
    );
    // An INET header of 11 address bytes.
    assert_eq!(
        decode_all(&with(15, 11)[..16]).0,
        Err(ParseError::V2AddressLength)
    );
    // A TLV running past the end.
    assert_eq!(
        decode_all(&v2_inet(&[kind::NOOP, 0, 5, 0])).0,
        Err(ParseError::V2Tlv)
    );
    assert_eq!(
        decode_all(&v2_inet(&[kind::NOOP])).0,
        Err(ParseError::V2Tlv)
    );
    // A unique id over 128 bytes.
    let mut long = vec![kind::UNIQUE_ID, 0, 129];
    long.resize(3 + 129, 7);
    assert_eq!(decode_all(&v2_inet(&long)).0, Err(ParseError::V2Tlv));
    // A limit below the header's length, known from the fixed part.
    let mut buf = BytesMut::from(&good[..16]);
    assert_eq!(decode(&mut buf, 27), Err(ParseError::TooLong));
}

#[test]
fn v2_crc32c_is_checked() {
    let header = Header::proxy(addr("192.0.2.7:50000"), addr("10.0.0.1:80"))
        .with_tlv(kind::CRC32C, [0u8; 4])
        .unwrap();
    let mut bytes = BytesMut::new();
    encode_v2(&header, &mut bytes).unwrap();
    let crc = v2::crc32c_zeroed(&bytes, 16 + 12 + 3);
    bytes[16 + 12 + 3..].copy_from_slice(&crc.to_be_bytes());
    assert!(decode_all(&bytes).0.unwrap().is_some());
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(decode_all(&bytes).0, Err(ParseError::V2Checksum));
    // The standard check value of CRC-32C.
    assert_eq!(v2::crc32c_zeroed(b"123456789", 100), 0xe306_9283);
}

#[test]
fn every_split_of_a_header_parses_the_same_as_the_whole() {
    let mut tlvs = vec![kind::AUTHORITY, 0, 3];
    tlvs.extend_from_slice(b"a.b");
    let inputs: [Vec<u8>; 2] = [
        b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 80\r\nhello".to_vec(),
        [v2_inet(&tlvs), b"hello".to_vec()].concat(),
    ];
    for input in inputs {
        let whole = decode_all(&input).0.unwrap().unwrap();
        // One byte per read, as a slow-loris or a tiny MSS delivers it.
        let mut buf = BytesMut::new();
        let mut parsed = None;
        for &byte in &input {
            buf.extend_from_slice(&[byte]);
            if parsed.is_none() {
                parsed = decode(&mut buf, MAX_V2_LEN).unwrap();
            }
        }
        assert_eq!(parsed, Some(whole));
        assert_eq!(&buf[..], b"hello");
    }
}

#[test]
fn v1_encoding_refuses_what_v1_cannot_say() {
    let mut out = BytesMut::new();
    let with_tlv = Header::proxy(addr("192.0.2.7:1"), addr("10.0.0.1:2"))
        .with_tlv(kind::NOOP, b"")
        .unwrap();
    assert_eq!(encode_v1(&with_tlv, &mut out), Err(EncodeError::NotInV1));
    encode_v1(&Header::local(), &mut out).unwrap();
    assert_eq!(&out[..], b"PROXY UNKNOWN\r\n");
    out.clear();
    let mixed = Header::proxy(addr("192.0.2.7:1"), addr("[::1]:2"));
    encode_v1(&mixed, &mut out).unwrap();
    assert_eq!(&out[..], b"PROXY TCP6 ::ffff:192.0.2.7 ::1 1 2\r\n");
}

#[test]
fn trusted_ranges_match_by_prefix() {
    let range: Cidr = "10.0.0.0/8".parse().unwrap();
    assert!(range.contains("10.200.0.1".parse().unwrap()));
    assert!(range.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(!range.contains("11.0.0.1".parse().unwrap()));
    let any: Cidr = "::/0".parse().unwrap();
    assert!(any.contains("2001:db8::1".parse().unwrap()));
    assert!(!any.contains("10.0.0.1".parse().unwrap()));
    let one: Cidr = "127.0.0.1".parse().unwrap();
    assert!(one.contains("127.0.0.1".parse().unwrap()));
    assert!(!one.contains("127.0.0.2".parse().unwrap()));
    assert!("10.0.0.0/33".parse::<Cidr>().is_err());
    assert!("nonsense".parse::<Cidr>().is_err());
}

// ----- the wrapper ---------------------------------------------------------------------------

/// Records what the wrapped protocol sees.
#[derive(Default)]
struct Witness {
    events: Vec<String>,
}

impl Protocol for Witness {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let alpn = tx.proxy_header().and_then(|h| h.alpn().map(<[u8]>::to_vec));
        self.events.push(format!(
            "made {} {} {:?}",
            tx.peer().unwrap(),
            tx.local().unwrap(),
            alpn
        ));
        let _ = tx.write(format!("you are {}\r\n", tx.peer().unwrap()));
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.events.push(format!(
            "data {} from {}",
            String::from_utf8_lossy(data),
            tx.peer().unwrap()
        ));
        data.clear();
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        self.events.push("eof".into());
        tx.lose_connection();
    }
    fn connection_lost(&mut self, reason: &Reason) {
        self.events.push(format!("lost {reason}"));
    }
}

const BALANCER: &str = "10.0.0.2:40000";
const LISTENER: &str = "10.0.0.1:80";

fn connection(expect: Expect) -> Connection<AcceptProxy<Witness>> {
    let mut conn = Connection::new(
        AcceptProxy::new(Witness::default(), expect),
        Config::default(),
    );
    conn.handle_connected(Instant::ZERO, addr(LISTENER), addr(BALANCER));
    conn
}

fn events(conn: &Connection<AcceptProxy<Witness>>) -> Vec<String> {
    conn.protocol().inner().events.clone()
}

fn written(conn: &Connection<AcceptProxy<Witness>>) -> Vec<u8> {
    conn.poll_write().flatten().copied().collect()
}

#[test]
fn the_wrapped_protocol_sees_the_real_client_from_connection_made_on() {
    let mut alpn = vec![kind::ALPN, 0, 2];
    alpn.extend_from_slice(b"h2");
    let mut input = v2_inet(&alpn);
    input.extend_from_slice(b"hi");
    let mut conn = connection(Expect::Required);
    assert!(events(&conn).is_empty(), "nothing before the header");
    conn.handle_data(Instant::ZERO, &input);
    assert_eq!(
        events(&conn),
        [
            "made 192.0.2.7:50000 10.0.0.1:80 Some([104, 50])",
            "data hi from 192.0.2.7:50000"
        ]
    );
    assert_eq!(written(&conn), b"you are 192.0.2.7:50000\r\n");
    assert_eq!(conn.peer(), Some(addr("192.0.2.7:50000")));
}

#[test]
fn a_header_one_byte_per_read_starts_the_protocol_once() {
    let input = b"PROXY TCP6 2001:db8::7 2001:db8::1 50000 443\r\nabc";
    let mut conn = connection(Expect::Required);
    for (i, byte) in input.iter().enumerate() {
        conn.handle_data(Instant::from_millis(i as u64), &[*byte]);
    }
    let events = events(&conn);
    assert_eq!(events[0], "made [2001:db8::7]:50000 [2001:db8::1]:443 None");
    assert_eq!(events[1..].len(), 3, "{events:?}");
    assert!(events[1..]
        .iter()
        .all(|e| e.ends_with("from [2001:db8::7]:50000")));
}

#[test]
fn a_local_header_keeps_the_socket_addresses() {
    let mut input = v2_inet(&[]);
    input[12] = 0x20;
    let mut conn = connection(Expect::Required);
    conn.handle_data(Instant::ZERO, &input);
    assert_eq!(events(&conn), [format!("made {BALANCER} {LISTENER} None")]);
}

#[test]
fn a_malformed_header_ends_only_that_connection_with_a_typed_reason() {
    let mut conn = connection(Expect::Required);
    conn.handle_data(Instant::ZERO, b"GET / HTTP/1.1\r\n");
    assert_eq!(conn.reason(), Some(&ParseError::NotProxy.reason()));
    assert_eq!(conn.protocol().error(), Some(ParseError::NotProxy));
    assert!(
        events(&conn).is_empty(),
        "the wrapped protocol never started"
    );
    assert!(written(&conn).is_empty());
}

#[test]
fn a_header_that_never_finishes_is_evicted_by_the_default_timeout() {
    let mut conn = connection(Expect::Required);
    conn.handle_data(Instant::ZERO, b"PROXY TCP4 1.2.3.4");
    assert_eq!(
        conn.next_timeout(),
        Some(Instant::ZERO + DEFAULT_HEADER_TIMEOUT)
    );
    conn.handle_timeout(Instant::from_secs(4));
    assert!(!conn.is_closed());
    conn.handle_timeout(Instant::from_secs(5));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::ProxyHeader)));
    assert!(events(&conn).is_empty());
}

#[test]
fn the_header_timer_is_cancelled_once_the_header_is_in() {
    let mut conn = connection(Expect::Required);
    conn.handle_data(Instant::ZERO, b"PROXY UNKNOWN\r\n");
    conn.handle_timeout(Instant::from_secs(60));
    assert!(!conn.is_closed());
    assert_eq!(events(&conn).len(), 1);
}

#[test]
fn eof_inside_the_header_is_truncated() {
    let mut conn = connection(Expect::Required);
    conn.handle_data(Instant::ZERO, b"PROXY TCP4");
    conn.handle_read_closed(Instant::ZERO);
    assert_eq!(conn.reason(), Some(&ParseError::Truncated.reason()));
    assert!(events(&conn).is_empty());
}

#[test]
fn if_present_passes_other_protocols_through_untouched() {
    let mut conn = connection(Expect::IfPresent);
    conn.handle_data(Instant::ZERO, b"hello");
    assert_eq!(
        events(&conn),
        [
            format!("made {BALANCER} {LISTENER} None"),
            format!("data hello from {BALANCER}")
        ]
    );
    let mut conn = connection(Expect::IfPresent);
    conn.handle_data(Instant::ZERO, b"PROXY TCP4 192.0.2.7 10.0.0.1 1 2\r\n");
    assert_eq!(events(&conn)[0], "made 192.0.2.7:1 10.0.0.1:2 None");
    // Too short to tell, then EOF: the bytes were the protocol's.
    let mut conn = connection(Expect::IfPresent);
    conn.handle_data(Instant::ZERO, b"PRO");
    conn.handle_read_closed(Instant::ZERO);
    assert_eq!(
        events(&conn),
        [
            format!("made {BALANCER} {LISTENER} None"),
            format!("data PRO from {BALANCER}"),
            "eof".into(),
        ]
    );
}

#[test]
fn if_present_starts_a_silent_connection_at_the_timeout_and_evicts_half_a_header() {
    let mut conn = connection(Expect::IfPresent);
    conn.handle_timeout(Instant::ZERO + DEFAULT_HEADER_TIMEOUT);
    assert_eq!(events(&conn), [format!("made {BALANCER} {LISTENER} None")]);
    assert_eq!(written(&conn), format!("you are {BALANCER}\r\n").as_bytes());
    conn.handle_data(Instant::from_secs(6), b"late");
    assert_eq!(events(&conn)[1], format!("data late from {BALANCER}"));

    let mut conn = connection(Expect::IfPresent);
    conn.handle_data(Instant::ZERO, b"PROXY TC");
    conn.handle_timeout(Instant::ZERO + DEFAULT_HEADER_TIMEOUT);
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::ProxyHeader)));
    assert!(events(&conn).is_empty());
}

#[test]
fn never_treats_a_header_as_data() {
    let mut conn = connection(Expect::Never);
    conn.handle_data(Instant::ZERO, b"PROXY UNKNOWN\r\n");
    assert_eq!(
        events(&conn),
        [
            format!("made {BALANCER} {LISTENER} None"),
            format!("data PROXY UNKNOWN\r\n from {BALANCER}")
        ]
    );
}

#[test]
fn the_factory_applies_required_and_trusted_ranges() {
    let ranges = vec!["10.0.0.0/8".parse().unwrap()];
    let mut required = AcceptProxyFactory::new(
        |_peer| Witness::default(),
        AcceptConfig {
            required: true,
            ..AcceptConfig::if_present_from(ranges.clone())
        },
    );
    assert!(required.build_protocol(addr("192.0.2.1:1")).is_none());
    let p = required.build_protocol(addr(BALANCER)).unwrap();
    assert!(p.is_waiting());
    let mut optional = AcceptProxyFactory::new(
        |_peer| Witness::default(),
        AcceptConfig::if_present_from(ranges),
    );
    let mut conn = Connection::new(
        optional.build_protocol(addr("192.0.2.1:1")).unwrap(),
        Config::default(),
    );
    conn.handle_connected(Instant::ZERO, addr(LISTENER), addr("192.0.2.1:1"));
    conn.handle_data(Instant::ZERO, b"PROXY TCP4 6.6.6.6 10.0.0.1 1 2\r\n");
    assert_eq!(
        conn.peer(),
        Some(addr("192.0.2.1:1")),
        "an untrusted header is not believed"
    );
    let slow = AcceptConfig {
        header_timeout: Some(Duration::from_secs(1)),
        ..AcceptConfig::required()
    };
    let mut factory = AcceptProxyFactory::new(|_peer| Witness::default(), slow);
    let mut conn = Connection::new(
        factory.build_protocol(addr(BALANCER)).unwrap(),
        Config::default(),
    );
    conn.handle_connected(Instant::ZERO, addr(LISTENER), addr(BALANCER));
    conn.handle_timeout(Instant::from_secs(1));
    assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::ProxyHeader)));
}

// ----- properties ----------------------------------------------------------------------------

fn header_strategy() -> impl Strategy<Value = Header> {
    let inet = prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ];
    let tlvs = proptest::collection::vec(
        (
            prop::sample::select(vec![kind::ALPN, kind::AUTHORITY, kind::NOOP, 0xe0]),
            proptest::collection::vec(any::<u8>(), 0..20),
        ),
        0..4,
    );
    (inet.clone(), inet, tlvs, any::<bool>()).prop_map(|(source, destination, tlvs, local)| {
        let base = if local {
            Header::local()
        } else {
            Header::proxy(source, destination)
        };
        tlvs.into_iter()
            .fold(base, |h, (kind, value)| h.with_tlv(kind, value).unwrap())
    })
}

proptest! {
    #[test]
    fn any_chunking_of_a_v2_header_and_payload_decodes_the_same(
        header in header_strategy(),
        payload in proptest::collection::vec(any::<u8>(), 0..40),
        chunks in proptest::collection::vec(1usize..8, 1..6),
    ) {
        let mut wire = BytesMut::new();
        encode_v2(&header, &mut wire).unwrap();
        wire.extend_from_slice(&payload);
        let mut data = vec![chunks[0] as u8, chunks[chunks.len() - 1] as u8, 0];
        data.extend_from_slice(&wire);
        prop_assert_eq!(fuzzing::check_proxy(&data), Ok(()));
        let (decoded, rest) = decode_all(&wire);
        prop_assert_eq!(decoded, Ok(Some(header)));
        prop_assert_eq!(&rest[..], &payload[..]);
    }

    #[test]
    fn any_chunking_of_a_v1_header_decodes_the_same(
        header in header_strategy().prop_filter("no TLVs", |h| h.tlvs().next().is_none()),
        c0 in any::<u8>(), c1 in any::<u8>(),
    ) {
        let mut data = vec![c0, c1, 0];
        let mut wire = BytesMut::new();
        encode_v1(&header, &mut wire).unwrap();
        prop_assert!(wire.len() <= MAX_V1_LEN);
        data.extend_from_slice(&wire);
        prop_assert_eq!(fuzzing::check_proxy(&data), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_break_the_properties(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        prefix in prop::sample::select(vec![&b""[..], b"PROXY ", b"\r\n\r\n\0\r\nQUIT\n\x21"]),
    ) {
        let mut input = vec![data.first().copied().unwrap_or(0), 3, 0];
        input.extend_from_slice(prefix);
        input.extend_from_slice(&data);
        prop_assert_eq!(fuzzing::check_proxy(&input), Ok(()));
    }

    #[test]
    fn the_wrapper_sees_the_same_thing_however_the_bytes_arrive(
        header in header_strategy(),
        chunks in proptest::collection::vec(1usize..8, 1..6),
    ) {
        let mut wire = BytesMut::new();
        encode_v2(&header, &mut wire).unwrap();
        wire.extend_from_slice(b"tail");
        let mut whole = connection(Expect::Required);
        whole.handle_data(Instant::ZERO, &wire);
        let mut split = connection(Expect::Required);
        let mut at = 0;
        for size in chunks.iter().cycle() {
            let end = (at + size).min(wire.len());
            split.handle_data(Instant::ZERO, &wire[at..end]);
            at = end;
            if at == wire.len() { break; }
        }
        prop_assert_eq!(events(&whole)[0].clone(), events(&split)[0].clone());
        prop_assert_eq!(written(&whole), written(&split));
        prop_assert_eq!(whole.peer(), split.peer());
        let data_whole: String = events(&whole)[1..].iter().map(|e| e.split(' ').nth(1).unwrap_or("")).collect();
        let data_split: String = events(&split)[1..].iter().map(|e| e.split(' ').nth(1).unwrap_or("")).collect();
        prop_assert_eq!(data_whole, data_split);
    }
}

proptest! {
    #[test]
    fn the_fast_ipv4_reader_agrees_with_the_standard_parser(
        text in proptest::collection::vec(prop::sample::select(b"0123456789.".to_vec()), 0..20)
            .prop_map(|b| String::from_utf8(b).unwrap()),
    ) {
        let ours = v1::ipv4(text.as_bytes()).ok();
        prop_assert_eq!(ours, text.parse::<core::net::Ipv4Addr>().ok());
    }
}

/// Writes the `accept_proxy` fuzz target's seed corpus (run once with `--ignored`).
#[cfg(feature = "fuzz")]
#[test]
#[ignore]
fn write_accept_proxy_seeds() {
    extern crate std;
    use crate::testing::{Op, StreamCheck};
    let check = StreamCheck::protocol(|| AcceptProxy::new(Witness::default(), Expect::Required));
    let mut v2 = BytesMut::new();
    let header = Header::proxy(addr("192.0.2.7:50000"), addr("10.0.0.1:80"))
        .with_tlv(kind::ALPN, b"h2")
        .unwrap();
    encode_v2(&header, &mut v2).unwrap();
    let v1 = b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 80\r\n".to_vec();
    let send = |data: &[u8]| Op::Send {
        conn: 0,
        data: data.to_vec(),
    };
    let schedules: Vec<(u8, Vec<Op<()>>)> = vec![
        (
            0,
            vec![
                Op::Connect,
                send(&v1),
                send(b"hello"),
                Op::SendEof { conn: 0 },
            ],
        ),
        (
            0,
            vec![Op::Connect, send(&v2), send(b"hello"), Op::NextDeadline],
        ),
        (0, vec![Op::Connect, send(&v1[..10]), Op::NextDeadline]),
        (
            0,
            vec![
                Op::Connect,
                send(&v2[..5]),
                send(&v2[5..]),
                Op::SendEof { conn: 0 },
            ],
        ),
        (
            1,
            vec![Op::Connect, send(b"GET /"), Op::SendEof { conn: 0 }],
        ),
        (1, vec![Op::Connect, send(b"PRO"), Op::SendEof { conn: 0 }]),
        (2, vec![Op::Connect, send(&v1), Op::SendEof { conn: 0 }]),
        (0, vec![Op::Connect, send(b"garbage"), Op::NextDeadline]),
    ];
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/accept_proxy");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, (mode, ops)) in schedules.iter().enumerate() {
        let mut data = vec![*mode];
        data.extend(check.encode_schedule(ops));
        std::fs::write(dir.join(format!("seed_{i}")), data).unwrap();
    }
}
