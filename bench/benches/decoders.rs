//! Decoder throughput: loomwork's line, netstring and int32 decoders against tokio-util's
//! `LinesCodec` / `LengthDelimitedCodec`, a bare `memchr` scan (the practical limit of any
//! delimiter search) and a `memcpy` of the same bytes, over a large in-memory stream of 64-byte
//! and 1 KiB frames. Contenders run interleaved; the table shows medians, min-max and ratios.
//!
//! AMP boxes (4 small keys, Twisted's `Sum` call) are decoded by `BoxCodec`, alone and with
//! each box parsed into its pairs, against the int16-prefixed decoder on the same bytes (an
//! AMP box is int16-prefixed strings ended by an empty one).
//!
//! PROXY protocol headers too: loomwork's `proxy::decode` against the `ppp` crate's
//! `HeaderResult::parse` (both detect the version), over streams of v1 (TCP4, TCP6) and v2
//! (TCP4 with ALPN, authority and unique-id TLVs) headers.
//!
//! `cargo bench -p loomwork-bench --bench decoders` (about a minute). Never a timed assertion:
//! the targets are printed next to the measured ratios.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use loomwork::amp::{AmpBox, BoxCodec};
use loomwork::framing::{LengthCodec, LineCodec, NetstringCodec};
use loomwork_bench::{interleave, print_table, speedup, speedup_of_best, Contender};
use tokio_util::codec::{LengthDelimitedCodec, LinesCodec};

/// Size of each in-memory stream.
const STREAM: usize = 32 << 20;
const ROUNDS: usize = 15;
const BUDGET: Duration = Duration::from_secs(6);

/// Builds a stream of `frame`-byte frames on the wire, each made by `encode(payload_len, i)`.
fn stream(frame: usize, encode: impl Fn(&[u8], &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::with_capacity(STREAM + frame);
    let mut i = 0usize;
    while out.len() < STREAM {
        let before = out.len();
        // Vary the payload so nothing is trivially predictable; printable, no CR/LF.
        let payload: Vec<u8> = (0..frame).map(|j| b'a' + ((i + j) % 26) as u8).collect();
        encode(&payload, &mut out);
        // Trim the payload so the frame is exactly `frame` bytes on the wire.
        let overhead = out.len() - before - frame;
        out.truncate(before);
        encode(&payload[..frame - overhead], &mut out);
        i += 1;
    }
    out
}

fn line(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

fn netstring(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(format!("{}:", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.push(b',');
}

fn int32(payload: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
}

/// A contender that decodes a fresh copy of `data` (the copy is not timed).
fn decoding<'a>(
    name: &'static str,
    data: &'a [u8],
    mut decode_all: impl FnMut(&mut BytesMut) -> u64 + 'a,
) -> Contender<'a> {
    Contender {
        name,
        run: Box::new(move || {
            let mut buf = BytesMut::from(data);
            let start = Instant::now();
            let frames = decode_all(&mut buf);
            let elapsed = start.elapsed();
            assert!(buf.is_empty(), "{name} left {} bytes", buf.len());
            (frames, elapsed)
        }),
    }
}

/// Decodes every frame of `buf` with a loomwork decoder; returns the frame count.
fn loomwork_all<D: loomwork::framing::Decoder>(mut codec: D, buf: &mut BytesMut) -> u64 {
    let (mut frames, mut bytes) = (0u64, 0usize);
    while let Ok(Some(frame)) = codec.decode(buf) {
        frames += 1;
        bytes += black_box(&frame).len();
    }
    black_box(bytes);
    frames
}

/// Decodes every frame of `buf` with a tokio-util decoder; returns the frame count.
fn tokio_all<D, T>(mut codec: D, buf: &mut BytesMut) -> u64
where
    D: tokio_util::codec::Decoder<Item = T>,
    T: AsRef<[u8]>,
{
    let (mut frames, mut bytes) = (0u64, 0usize);
    while let Ok(Some(frame)) = codec.decode(buf) {
        frames += 1;
        bytes += black_box(&frame).as_ref().len();
    }
    black_box(bytes);
    frames
}

fn loomwork_lines(buf: &mut BytesMut) -> u64 {
    loomwork_all(LineCodec::new(), buf)
}

fn tokio_lines(buf: &mut BytesMut) -> u64 {
    tokio_all(LinesCodec::new_with_max_length(16_384), buf)
}

fn loomwork_netstrings(buf: &mut BytesMut) -> u64 {
    loomwork_all(NetstringCodec::new(), buf)
}

fn loomwork_int32(buf: &mut BytesMut) -> u64 {
    loomwork_all(LengthCodec::int32(), buf)
}

fn tokio_length_delimited(buf: &mut BytesMut) -> u64 {
    tokio_all(LengthDelimitedCodec::new(), buf)
}

/// A stream of AMP boxes of 4 small keys: `Sum` calls as Twisted writes them, tags counting up.
fn amp_boxes() -> (Vec<u8>, u64) {
    let mut out = Vec::with_capacity(STREAM + 64);
    let mut boxes = 0u64;
    while out.len() < STREAM {
        boxes += 1;
        let mut call = AmpBox::new();
        let tag = format!("{boxes:x}");
        let a = format!("{}", boxes % 1000);
        for (key, value) in [
            ("_ask", tag.as_str()),
            ("_command", "Sum"),
            ("a", &a),
            ("b", "81"),
        ] {
            call.insert(key.to_owned(), value.to_owned())
                .expect("small pairs");
        }
        out.extend_from_slice(&call.to_wire());
    }
    (out, boxes)
}

fn loomwork_amp_boxes(buf: &mut BytesMut) -> u64 {
    loomwork_all(BoxCodec::new(), buf)
}

/// Boxes split off and parsed into their pairs: what the AMP machine does per box.
fn loomwork_amp_parsed(buf: &mut BytesMut) -> u64 {
    let mut codec = BoxCodec::new();
    let (mut boxes, mut pairs) = (0u64, 0usize);
    while let Ok(Some(frame)) = loomwork::framing::Decoder::decode(&mut codec, buf) {
        let parsed = AmpBox::parse(frame).expect("well-formed box");
        boxes += 1;
        pairs += black_box(&parsed).len();
    }
    black_box(pairs);
    boxes
}

/// The same bytes as int16-prefixed strings (keys, values and each box's empty terminator).
fn loomwork_int16_strings(buf: &mut BytesMut) -> u64 {
    loomwork_all(LengthCodec::int16(), buf)
}

/// The practical limit of a line decoder: find every `\n`, nothing else.
fn memchr_scan(data: &[u8]) -> Contender<'_> {
    Contender {
        name: "memchr scan (\\n)",
        run: Box::new(move || {
            let copy = data.to_vec();
            let start = Instant::now();
            let frames = memchr::memchr_iter(b'\n', black_box(&copy)).count() as u64;
            (black_box(frames), start.elapsed())
        }),
    }
}

/// What it costs just to move the bytes once.
fn memcpy(data: &[u8]) -> Contender<'_> {
    // Allocated and touched once, so the copy measures bandwidth, not page faults.
    let mut dst = vec![1u8; data.len()];
    Contender {
        name: "memcpy",
        run: Box::new(move || {
            let start = Instant::now();
            dst.copy_from_slice(black_box(data));
            black_box(&dst);
            (0, start.elapsed())
        }),
    }
}

/// A stream of PROXY headers: `count` copies of each of `headers`, interleaved.
fn proxy_stream(headers: &[Vec<u8>], count: usize) -> (Vec<u8>, u64) {
    let mut out = Vec::new();
    for _ in 0..count {
        for header in headers {
            out.extend_from_slice(header);
        }
    }
    (out, (count * headers.len()) as u64)
}

fn proxy_v1_headers() -> Vec<Vec<u8>> {
    vec![
        b"PROXY TCP4 192.0.2.7 198.51.100.1 50000 443\r\n".to_vec(),
        b"PROXY TCP6 2001:db8::7 2001:db8:ffff::1 50000 443\r\n".to_vec(),
    ]
}

fn proxy_v2_headers() -> Vec<Vec<u8>> {
    use loomwork::proxy::{encode_v2, kind, Header};
    let source = "192.0.2.7:50000".parse().unwrap();
    let destination = "198.51.100.1:443".parse().unwrap();
    let header = Header::proxy(source, destination)
        .with_tlv(kind::ALPN, b"h2")
        .and_then(|h| h.with_tlv(kind::AUTHORITY, b"example.com"))
        .and_then(|h| h.with_tlv(kind::UNIQUE_ID, [7u8; 16]))
        .expect("small TLVs");
    let mut with_tlvs = BytesMut::new();
    encode_v2(&header, &mut with_tlvs).expect("a TCP header encodes");
    let mut plain = BytesMut::new();
    encode_v2(&Header::proxy(source, destination), &mut plain).expect("a TCP header encodes");
    vec![with_tlvs.to_vec(), plain.to_vec()]
}

/// Takes every header off `buf` with loomwork's decoder; returns the count.
fn loomwork_proxy(buf: &mut BytesMut) -> u64 {
    let mut headers = 0u64;
    while let Ok(Some(header)) = loomwork::proxy::decode(buf, loomwork::proxy::MAX_V2_LEN) {
        black_box(header.source());
        headers += 1;
    }
    headers
}

/// Parses every header of `data` with the `ppp` crate, stepping over each one's length.
fn ppp_proxy(data: &[u8]) -> Contender<'_> {
    Contender {
        name: "ppp HeaderResult::parse",
        run: Box::new(move || {
            let start = Instant::now();
            let (mut at, mut headers) = (0usize, 0u64);
            while at < data.len() {
                let len = match ppp::HeaderResult::parse(black_box(&data[at..])) {
                    ppp::HeaderResult::V1(Ok(header)) => {
                        black_box(&header.addresses);
                        header.header.len()
                    }
                    ppp::HeaderResult::V2(Ok(header)) => {
                        black_box(&header.addresses);
                        header.len()
                    }
                    other => panic!("ppp refused a header: {other:?}"),
                };
                at += len;
                headers += 1;
            }
            (headers, start.elapsed())
        }),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word picks tables by name.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let wanted = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let mut summary = Vec::new();

    for (label, frame) in [("64 B", 64usize), ("1 KiB", 1024)] {
        let name = format!("lines {label}");
        if wanted(&name) {
            let data = stream(frame, line);
            let mut contenders = vec![
                decoding("loomwork LineCodec", &data, loomwork_lines),
                decoding("tokio-util LinesCodec", &data, tokio_lines),
                memchr_scan(&data),
                memcpy(&data),
            ];
            let samples = interleave(&mut contenders, ROUNDS, BUDGET);
            print_table(&name, data.len(), &samples, "tokio-util LinesCodec");
            if frame == 64 {
                let (n, d) = ("loomwork LineCodec", "tokio-util LinesCodec");
                let (r, b) = (speedup(&samples, n, d), speedup_of_best(&samples, n, d));
                summary.push(format!(
                    "64 B lines: loomwork / LinesCodec = {r:.2}x (best runs {b:.2}x; target >= 2x)"
                ));
            } else {
                let (n, d) = ("loomwork LineCodec", "memchr scan (\\n)");
                let (r, b) = (speedup(&samples, n, d), speedup_of_best(&samples, n, d));
                summary.push(format!(
                    "1 KiB lines: loomwork / memchr scan = {:.0}% (best runs {:.0}%; target >= 75%)",
                    r * 100.0,
                    b * 100.0
                ));
            }
        }

        let name = format!("netstrings {label}");
        if wanted(&name) {
            let data = stream(frame, netstring);
            let mut contenders = vec![
                decoding("loomwork NetstringCodec", &data, loomwork_netstrings),
                memchr_scan(&data),
                memcpy(&data),
            ];
            let samples = interleave(&mut contenders, ROUNDS, BUDGET);
            print_table(&name, data.len(), &samples, "memchr scan (\\n)");
        }

        let name = format!("int32 {label}");
        if wanted(&name) {
            let data = stream(frame, int32);
            let mut contenders = vec![
                decoding("loomwork LengthCodec::int32", &data, loomwork_int32),
                decoding("tokio-util LengthDelimited", &data, tokio_length_delimited),
                memcpy(&data),
            ];
            let samples = interleave(&mut contenders, ROUNDS, BUDGET);
            print_table(&name, data.len(), &samples, "tokio-util LengthDelimited");
            let (n, d) = ("loomwork LengthCodec::int32", "tokio-util LengthDelimited");
            let (r, b) = (speedup(&samples, n, d), speedup_of_best(&samples, n, d));
            summary.push(format!(
                "int32 {label}: loomwork / LengthDelimitedCodec = {r:.2}x (best runs {b:.2}x{})",
                if frame == 64 { "; target >= 2x" } else { "" }
            ));
        }
    }

    if wanted("amp boxes") {
        let (data, boxes) = amp_boxes();
        let mut contenders = vec![
            decoding("loomwork BoxCodec", &data, loomwork_amp_boxes),
            decoding("BoxCodec + AmpBox::parse", &data, loomwork_amp_parsed),
            decoding("LengthCodec::int16 strings", &data, loomwork_int16_strings),
            memcpy(&data),
        ];
        let samples = interleave(&mut contenders, ROUNDS, BUDGET);
        print_table(
            "amp boxes (4 small keys; int16 row: 9 strings per box)",
            data.len(),
            &samples,
            "LengthCodec::int16 strings",
        );
        let rate = |name: &str| {
            samples
                .iter()
                .find(|s| s.name == name)
                .map_or(f64::NAN, |s| boxes as f64 / s.median().as_secs_f64())
        };
        let int16 = "LengthCodec::int16 strings";
        for name in ["loomwork BoxCodec", "BoxCodec + AmpBox::parse"] {
            let (r, b) = (
                speedup(&samples, name, int16),
                speedup_of_best(&samples, name, int16),
            );
            summary.push(format!(
                "AMP {name}: {:.2} M boxes/s (target >= 1 M/s on one core); / int16 on the same \
                 bytes = {r:.2}x (best runs {b:.2}x)",
                rate(name) / 1e6
            ));
        }
    }

    for (label, headers) in [("v1", proxy_v1_headers()), ("v2", proxy_v2_headers())] {
        let name = format!("PROXY {label} headers");
        if wanted(&name) {
            let (data, count) = proxy_stream(&headers, 100_000);
            let mut contenders = vec![
                decoding("loomwork proxy::decode", &data, loomwork_proxy),
                ppp_proxy(&data),
            ];
            let samples = interleave(&mut contenders, ROUNDS, BUDGET);
            print_table(&name, data.len(), &samples, "ppp HeaderResult::parse");
            let (n, d) = ("loomwork proxy::decode", "ppp HeaderResult::parse");
            let (r, b) = (speedup(&samples, n, d), speedup_of_best(&samples, n, d));
            let median = samples
                .iter()
                .find(|s| s.name == n)
                .map_or(Duration::ZERO, |s| s.median());
            let per_second = count as f64 / median.as_secs_f64().max(1e-9);
            summary.push(format!(
                "PROXY {label}: loomwork / ppp = {r:.2}x (best runs {b:.2}x; target >= 1x); loomwork {:.1} M headers/s",
                per_second / 1e6
            ));
        }
    }

    println!("\nsummary (ratios of median times, same run):");
    for line in summary {
        println!("  {line}");
    }
}
