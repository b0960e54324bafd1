//! Chat server: Twisted's classic `LineReceiver` chat, with an optional shared secret and an
//! idle timeout.
//!
//! `cargo run --release --example chat_server -- --listen 127.0.0.1:8123 --secret s3cret`
//! then, in two terminals, `nc 127.0.0.1 8123` and type `AUTH s3cret`, a name, and lines.
//!
//! The mutual-TLS variant: `--client-ca ca.pem` (with `--cert`/`--key`, or a self-signed
//! server certificate made at start) admits only clients whose certificate that CA issued:
//! the certificate replaces the shared secret, so there is no `AUTH` line, and the server
//! logs `client <subject CN>` for each. Try it with
//! `openssl s_client -connect 127.0.0.1:8123 -CAfile <CA> -cert alice.pem -key alice.key`.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork_examples::chat::{connection_config, ChatConfig, ChatFactory};
use loomwork_examples::tls::{LoggedTls, ServerCertArgs};
use loomwork_examples::{parse_args, serve_tcp_proxied, Runtime, ServeOptions};

/// Line-based chat server (Twisted's classic chat example).
#[derive(Parser, Debug)]
#[command(name = "chat_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8123")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// Require `AUTH <SECRET>` as the first line (over TLS with --client-ca, the client's
    /// certificate takes its place).
    #[arg(long, conflicts_with = "client_ca")]
    secret: Option<String>,
    /// Close connections silent (both ways) for this many milliseconds.
    #[arg(long)]
    idle_timeout_ms: Option<u64>,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
    /// Every connection must start with a PROXY protocol header (v1 or v2, before any TLS);
    /// the protocol sees the client address it carries.
    #[arg(long)]
    accept_proxy: bool,
    /// TLS: any of these flags serves the chat over TLS (`listening on tls ...`).
    #[command(flatten)]
    tls: ServerCertArgs,
}

fn main() {
    let args: Args = parse_args();
    let factory = ChatFactory::new(ChatConfig {
        secret: args.secret.clone(),
        idle_timeout: args.idle_timeout_ms.map(Duration::from_millis),
    });
    let options = ServeOptions {
        listen: args.listen,
        runtime: args.runtime,
        // Each member's send queue is capped far below the general default: a member that
        // does not read is evicted (see `chat::MEMBER_QUEUE_LIMIT`).
        connection: connection_config(),
        listeners: 1,
        drain: Duration::from_millis(args.drain_ms),
    };
    if args.tls.any() {
        let config = args.tls.server_config_or_exit();
        let factory = LoggedTls::new(config, factory);
        serve_tcp_proxied("tls", options, args.accept_proxy, factory);
    } else {
        serve_tcp_proxied("tcp", options, args.accept_proxy, factory);
    }
}
