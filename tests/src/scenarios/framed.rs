//! Framed echo scenarios (docs/twisted-behaviour.md §5, FR-1, FR-2): the `framed_echo`
//! example's behaviour for every framing, over each runtime.

use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::framing::{AnyCodec, Encoder, FrameHandler, FrameTransport, Framed};
use loomwork::framing::{LengthCodec, LineCodec, NetstringCodec};
use loomwork::stream::Config;
use loomwork::{Limit, Reason};

use super::{any_port, connector, wait_for};
use crate::protocols::{lock, ClientScript, ClientSpec, LoggingFactory};
use crate::Harness;

/// Echoes every frame in the framing it arrived in.
pub struct FramedEcho;

impl FrameHandler for FramedEcho {
    type Codec = AnyCodec;
    type Message = ();
    fn frame_received(&mut self, frame: Bytes, tx: &mut FrameTransport<'_, '_, AnyCodec>) {
        let _ = tx.send_frame(frame);
    }
}

/// Twisted's receivers with their default maxima (DF-2..DF-4; Int8/16 capped by the prefix).
fn framings() -> Vec<(&'static str, AnyCodec, usize)> {
    vec![
        ("line", LineCodec::new().into(), 16_384),
        ("netstring", NetstringCodec::new().into(), 99_999),
        ("int8", LengthCodec::int8().into(), 255),
        ("int16", LengthCodec::int16().into(), 65_535),
        ("int32", LengthCodec::int32().into(), 99_999),
    ]
}

fn wire(codec: &AnyCodec, payloads: &[Bytes]) -> Bytes {
    let mut codec = codec.clone();
    let mut out = BytesMut::new();
    for payload in payloads {
        match codec.encode(payload.clone()) {
            Ok(encoded) => encoded.write_to(&mut out),
            Err(err) => panic!("test payload refused: {err}"),
        }
    }
    out.freeze()
}

/// For every framing: an empty frame, a frame of exactly the maximum and 2,000 small frames in
/// one write come back byte for byte; both sides end cleanly.
pub fn framed_echo_every_framing_max_empty_and_thousands<H: Harness>(h: &H) {
    for (name, codec, max) in framings() {
        let server_codec = codec.clone();
        let (factory, server_log) =
            LoggingFactory::new(move || Some(Framed::new(FramedEcho, server_codec.clone())));
        let server = h.listen(any_port(), factory, Config::default());
        let mut payloads = vec![Bytes::new(), Bytes::from(vec![b'x'; max]), Bytes::new()];
        payloads.extend((0..2000).map(|i| Bytes::from(format!("frame {i}"))));
        let sent = wire(&codec, &payloads);
        let (spec, log) = ClientSpec::new(ClientScript::Exchange(sent.clone()));
        h.connect(server.local_addr(), spec, connector()).join();
        let log = lock(&log);
        assert!(
            log.received == sent,
            "{}/{name}: echoed bytes differ",
            H::NAME
        );
        assert_eq!(log.lost, [Reason::Done], "{}/{name}", H::NAME);
        drop(log);
        server.shutdown(Duration::from_secs(5));
        assert_eq!(
            lock(&server_log).closed,
            [Reason::Done],
            "{}/{name}",
            H::NAME
        );
    }
}

/// An over-limit frame closes only its own connection, gracefully and with the typed reason,
/// after the echo of the frame before it; a connection open all along is undisturbed and a new
/// one is served.
pub fn over_limit_frame_closes_only_its_own_connection<H: Harness>(h: &H) {
    let cases: [(&str, AnyCodec, &[u8], usize); 3] = [
        ("line", LineCodec::new().into(), &[b'x'; 16_386], 16_386),
        (
            "netstring",
            NetstringCodec::new().into(),
            b"100000:",
            100_000,
        ),
        (
            "int32",
            LengthCodec::int32().into(),
            b"\x00\x01\x86\xa0",
            100_000,
        ),
    ];
    for (name, codec, refused, seen) in cases {
        let server_codec = codec.clone();
        let (factory, server_log) =
            LoggingFactory::new(move || Some(Framed::new(FramedEcho, server_codec.clone())));
        let server = h.listen(any_port(), factory, Config::default());
        let (idle_spec, idle_log) = ClientSpec::new(ClientScript::Idle);
        let bystander = h.connect(server.local_addr(), idle_spec, connector());
        // Bounded wait (about 5 s) until the server has accepted the bystander.
        wait_for(h, || server.connection_count() >= 1);
        assert_eq!(
            server.connection_count(),
            1,
            "{}/{name}: bystander",
            H::NAME
        );

        let before = wire(&codec, &[Bytes::from_static(b"before")]);
        let mut offending = BytesMut::from(&before[..]);
        offending.extend_from_slice(refused);
        let (spec, log) = ClientSpec::new(ClientScript::AskThenHalfClose(offending.freeze()));
        h.connect(server.local_addr(), spec, connector()).join();
        assert_eq!(
            lock(&log).received,
            before.to_vec(),
            "{}/{name}: only the earlier echo",
            H::NAME
        );

        let after = wire(&codec, &[Bytes::from_static(b"after")]);
        let (spec, log) = ClientSpec::new(ClientScript::Exchange(after.clone()));
        h.connect(server.local_addr(), spec, connector()).join();
        assert_eq!(lock(&log).received, after.to_vec(), "{}/{name}", H::NAME);

        server.shutdown(Duration::from_secs(5));
        bystander.join();
        assert_eq!(lock(&idle_log).lost, [Reason::Done], "{}/{name}", H::NAME);
        let closed = lock(&server_log).closed.clone();
        let max = if name == "line" { 16_384 } else { 99_999 };
        let limit = Reason::LimitExceeded {
            limit: Limit::FrameLength,
            max,
            seen,
        };
        assert_eq!(
            closed.iter().filter(|r| **r == limit).count(),
            1,
            "{}/{name}: {closed:?}",
            H::NAME
        );
        assert_eq!(
            closed.iter().filter(|r| **r == Reason::Done).count(),
            2,
            "{}/{name}: {closed:?}",
            H::NAME
        );
    }
}

/// Malformed netstrings on a few connections close only those connections (each with a typed
/// protocol error, after echoing what came before), while 100 concurrent well-behaved
/// connections echo 64 KiB each of checksummed frames with nothing lost.
pub fn malformed_input_on_one_connection_loses_nothing_for_100_others<H: Harness>(h: &H) {
    use crate::protocols::{fnv1a, payload};
    const GOOD: usize = 100;
    let codec: AnyCodec = NetstringCodec::new().into();
    let server_codec = codec.clone();
    let (factory, server_log) =
        LoggingFactory::new(move || Some(Framed::new(FramedEcho, server_codec.clone())));
    let server = h.listen(any_port(), factory, Config::default());
    let good: Vec<_> = (0..GOOD)
        .map(|i| {
            let data = payload(i, 64 * 1024);
            let frames: Vec<Bytes> = data.chunks(1024).map(Bytes::copy_from_slice).collect();
            let sent = wire(&codec, &frames);
            let (spec, log) = ClientSpec::new(ClientScript::Exchange(sent.clone()));
            (h.connect(server.local_addr(), spec, connector()), log, sent)
        })
        .collect();
    // NS-2, NS-5: a leading zero, a missing comma, a non-digit length, a sign.
    let bad_inputs: [&[u8]; 4] = [b"2:ok,03:abc,", b"2:ok,3:abcX", b"2:ok,x:", b"2:ok,-1:"];
    let bad: Vec<_> = bad_inputs
        .iter()
        .map(|input| {
            let script = ClientScript::AskThenHalfClose(Bytes::from_static(input));
            let (spec, log) = ClientSpec::new(script);
            (h.connect(server.local_addr(), spec, connector()), log)
        })
        .collect();
    for (i, (client, log, sent)) in good.into_iter().enumerate() {
        client.join();
        let log = lock(&log);
        assert_eq!(
            log.received_len,
            sent.len(),
            "{}: client {i} length",
            H::NAME
        );
        assert_eq!(
            log.received_hash,
            fnv1a(0, &sent),
            "{}: client {i} bytes",
            H::NAME
        );
        assert_eq!(log.lost, [Reason::Done], "{}: client {i}", H::NAME);
    }
    for (client, log) in bad {
        client.join();
        assert_eq!(
            lock(&log).received,
            b"2:ok,",
            "{}: only the earlier echo",
            H::NAME
        );
    }
    server.shutdown(Duration::from_secs(5));
    let closed = lock(&server_log).closed.clone();
    let protocol_errors = closed
        .iter()
        .filter(|r| matches!(r, Reason::Protocol(_)))
        .count();
    let clean = closed.iter().filter(|r| **r == Reason::Done).count();
    assert_eq!(
        (clean, protocol_errors),
        (GOOD, bad_inputs.len()),
        "{}: {closed:?}",
        H::NAME
    );
}

/// A line echo whose idle timer counts only complete lines: a slow-loris peer dribbling a line
/// byte by byte never completes one, so it is closed at the deadline with `TimedOut(Idle)`
/// however steadily it sends, while a well-behaved client is served meanwhile.
struct LineEchoWithRequestTimeout {
    idle: loomwork::policy::IdleTimer,
}

impl FrameHandler for LineEchoWithRequestTimeout {
    type Codec = AnyCodec;
    type Message = ();
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, AnyCodec>) {
        self.idle.set_timeout(Some(Duration::from_millis(400)), tx);
    }
    fn frame_received(&mut self, frame: Bytes, tx: &mut FrameTransport<'_, '_, AnyCodec>) {
        self.idle.reset(tx);
        let _ = tx.send_frame(frame);
    }
    fn timer_fired(&mut self, timer: loomwork::TimerId, tx: &mut FrameTransport<'_, '_, AnyCodec>) {
        if self.idle.expired(timer, tx) {
            tx.lose_connection_with(Reason::TimedOut(loomwork::Timeout::Idle));
        }
    }
}

/// A line echo whose idle timer counts only complete lines: the slow-loris is evicted, the
/// others are not.
pub fn slow_loris_is_evicted_by_the_request_timeout_while_others_are_served<H: Harness>(h: &H) {
    let codec: AnyCodec = LineCodec::new().into();
    let server_codec = codec.clone();
    let (factory, server_log) = LoggingFactory::new(move || {
        let handler = LineEchoWithRequestTimeout {
            idle: loomwork::policy::IdleTimer::new(),
        };
        Some(Framed::new(handler, server_codec.clone()))
    });
    let server = h.listen(any_port(), factory, Config::default());
    // One byte every 50 ms, never a delimiter: 40 bytes over 2 s if nobody stops it.
    let (spec, loris) = ClientSpec::new(ClientScript::Dribble {
        every: Duration::from_millis(50),
        count: 40,
    });
    let loris_client = h.connect(server.local_addr(), spec, connector());
    h.sleep(Duration::from_millis(100));
    let sent = wire(&codec, &[Bytes::from_static(b"served meanwhile")]);
    let (spec, good) = ClientSpec::new(ClientScript::Exchange(sent.clone()));
    h.connect(server.local_addr(), spec, connector()).join();
    assert_eq!(lock(&good).received, sent.to_vec(), "{}", H::NAME);
    loris_client.join();
    let loris = lock(&loris);
    assert_eq!(loris.lost.len(), 1, "{}: {:?}", H::NAME, loris.lost);
    assert!(
        loris.timers.len() < 40,
        "{}: evicted before it finished dribbling",
        H::NAME
    );
    drop(loris);
    server.shutdown(Duration::from_secs(5));
    let closed = lock(&server_log).closed.clone();
    assert!(
        closed.contains(&Reason::TimedOut(loomwork::Timeout::Idle)),
        "{}: {closed:?}",
        H::NAME
    );
    assert!(closed.contains(&Reason::Done), "{}: {closed:?}", H::NAME);
}
