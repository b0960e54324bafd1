//! STARTTLS server: Twisted's `starttls_server.py`, a line echo that switches its connection
//! to TLS when the client sends `STARTTLS`.
//!
//! `cargo run --release --example starttls_server` (a self-signed CA is made and its path
//! named on stderr, as `tls_echo_server` does), then
//! `cargo run --release --example starttls_client -- --ca <that file>`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork_examples::tls::{LogFailures, ServerCertArgs};
use loomwork_examples::{parse_args, serve_tcp, Runtime, ServeOptions};
use loomwork_tls::rustls::ServerConfig;
use loomwork_tls::{StartTls, StartTlsProtocol, TlsInfo, UpgradeRequest};

/// STARTTLS line echo server (Twisted's starttls_server.py).
#[derive(Parser, Debug)]
#[command(name = "starttls_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    #[command(flatten)]
    tls: ServerCertArgs,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

/// Echoes each line; answers `STARTTLS` with `READY` and switches to TLS.
#[derive(Default)]
struct StartTlsEcho {
    upgrade: Option<UpgradeRequest>,
    switched: bool,
}

impl FrameHandler for StartTlsEcho {
    type Codec = LineCodec;
    type Message = ();
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        eprintln!("received: {}", String::from_utf8_lossy(&line));
        if line == "STARTTLS" && !self.switched {
            self.switched = true;
            let _ = tx.send_frame("READY");
            // Whatever follows the command is already the client's TLS.
            let rest = tx.clear_buffer();
            self.upgrade = Some(UpgradeRequest::new(tx, rest));
        } else {
            let _ = tx.send_frame(line);
        }
    }
}

impl StartTlsProtocol for StartTlsEcho {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.upgrade.take()
    }
    fn tls_started(&mut self, info: &TlsInfo) {
        if let Some(name) = info.peer_common_name() {
            eprintln!("client {name}");
        }
    }
}

fn main() {
    let args: Args = parse_args();
    let config: Arc<ServerConfig> = args.tls.server_config_or_exit();
    let options = ServeOptions::new(
        args.listen,
        args.runtime,
        Duration::from_millis(args.drain_ms),
    );
    let factory = LogFailures(move |_| {
        StartTls::server(
            Arc::clone(&config),
            Framed::new(StartTlsEcho::default(), LineCodec::new()),
        )
    });
    serve_tcp(options, factory);
}
