//! Framed echo server: each frame is echoed back in the same framing, wire-compatible with
//! Twisted's `LineReceiver`, `LineOnlyReceiver`, `NetstringReceiver` and
//! `Int8/16/32StringReceiver` (docs/twisted-behaviour.md §5).
//!
//! `cargo run --release --example framed_echo -- --framing netstring --listen 127.0.0.1:0`
//!
//! An over-limit or malformed frame closes only its own connection, gracefully: the echoes of
//! earlier frames are delivered first. Over-limit lengths are refused from the header (or the
//! netstring's digits) before any payload arrives.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use loomwork::bytes::Bytes;
use loomwork::framing::{AnyCodec, FrameHandler, FrameTransport, Framed};
use loomwork::framing::{LengthCodec, LineCodec, NetstringCodec};
use loomwork::stream::Config;
use loomwork_examples::{parse_args, serve_tcp_proxied, Runtime, ServeOptions};

/// Framed echo server (Twisted's string receivers).
#[derive(Parser, Debug)]
#[command(name = "framed_echo", version)]
struct Args {
    /// The framing, as Twisted's receiver of the same name.
    #[arg(long, value_enum)]
    framing: Framing,
    /// Maximum frame length (default: Twisted's, 16,384 for lines and 99,999 otherwise).
    #[arg(long)]
    max_length: Option<usize>,
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
    /// Every connection must start with a PROXY protocol header (v1 or v2); the protocol sees
    /// the client address it carries.
    #[arg(long)]
    accept_proxy: bool,
}

/// The framings of `framed_echo` (docs/examples.md).
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Framing {
    /// `\r\n`-terminated lines (`LineReceiver`).
    Line,
    /// The same lines without raw mode (`LineOnlyReceiver`).
    LineOnly,
    /// `<length>:<payload>,` (`NetstringReceiver`).
    Netstring,
    /// 1-byte big-endian length prefix (`Int8StringReceiver`).
    Int8,
    /// 2-byte big-endian length prefix (`Int16StringReceiver`).
    Int16,
    /// 4-byte big-endian length prefix (`Int32StringReceiver`).
    Int32,
}

impl Framing {
    fn codec(self, max_length: Option<usize>) -> AnyCodec {
        let line = |codec: LineCodec| match max_length {
            Some(max) => codec.with_max_length(max),
            None => codec,
        };
        let prefixed = |codec: LengthCodec| match max_length {
            Some(max) => codec.with_max_length(max),
            None => codec,
        };
        match self {
            Framing::Line | Framing::LineOnly => line(LineCodec::new()).into(),
            Framing::Netstring => match max_length {
                Some(max) => NetstringCodec::new().with_max_length(max).into(),
                None => NetstringCodec::new().into(),
            },
            Framing::Int8 => prefixed(LengthCodec::int8()).into(),
            Framing::Int16 => prefixed(LengthCodec::int16()).into(),
            Framing::Int32 => prefixed(LengthCodec::int32()).into(),
        }
    }
}

/// Echoes every frame in the framing it arrived in.
struct FramedEcho;

impl FrameHandler for FramedEcho {
    type Codec = AnyCodec;
    type Message = ();

    fn frame_received(&mut self, frame: Bytes, tx: &mut FrameTransport<'_, '_, AnyCodec>) {
        if let Err(err) = tx.send_frame(frame) {
            // The default stop-reading on backpressure keeps the queue bounded; a refusal here
            // means the connection is already going away.
            eprintln!("echo not sent: {err}");
        }
    }
}

fn main() {
    let args: Args = parse_args();
    let (framing, max_length) = (args.framing, args.max_length);
    let factory = move |_peer| Framed::new(FramedEcho, framing.codec(max_length));
    // A frame is buffered whole before it is delivered: keep the receive buffer able to hold
    // the largest acceptable frame and its header.
    let mut connection = Config::default();
    if let (Some(max), Some(buffer)) = (max_length, connection.max_receive_buffer) {
        connection.max_receive_buffer = Some(buffer.max(max.saturating_add(64)));
    }
    let options = ServeOptions {
        listen: args.listen,
        runtime: args.runtime,
        connection,
        listeners: 1,
        drain: Duration::from_millis(args.drain_ms),
    };
    serve_tcp_proxied("tcp", options, args.accept_proxy, factory);
}
