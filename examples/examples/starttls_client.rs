//! STARTTLS client: Twisted's `starttls_client.py`: `plain text`, then `STARTTLS`; on
//! `READY` the connection switches to TLS and `secure text` goes out encrypted.
//!
//! `cargo run --release --example starttls_client -- --connect 127.0.0.1:8000 --ca ca.pem`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::connector::{ClientFactory, Retry};
use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
use loomwork::Reason;
use loomwork_examples::tls::{is_handshake_failure, ClientCertArgs};
use loomwork_examples::{connect_and_join, outcome_or_exit, parse_args, resolve_or_exit, Runtime};
use loomwork_tls::rustls::pki_types::ServerName;
use loomwork_tls::rustls::ClientConfig;
use loomwork_tls::{StartTls, StartTlsProtocol, UpgradeRequest};

/// STARTTLS line client (Twisted's starttls_client.py).
#[derive(Parser, Debug)]
#[command(name = "starttls_client", version)]
struct Args {
    /// Server address (HOST:PORT or IP:PORT; IPv6 as [::1]:PORT).
    #[arg(long, default_value = "127.0.0.1:8000")]
    connect: String,
    #[command(flatten)]
    tls: ClientCertArgs,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
}

/// Says `plain text` and `STARTTLS`; switches on `READY`; says `secure text`; closes once it
/// is echoed.
struct Client {
    upgrade: Option<UpgradeRequest>,
    done: Arc<AtomicBool>,
}

impl FrameHandler for Client {
    type Codec = LineCodec;
    type Message = ();
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        let _ = tx.send_frame("plain text");
        let _ = tx.send_frame("STARTTLS");
    }
    fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
        if line == "READY" && self.upgrade.is_none() {
            let rest = tx.clear_buffer();
            self.upgrade = Some(UpgradeRequest::new(tx, rest));
            // Written after the request: encrypted, once the handshake is done.
            let _ = tx.send_frame("secure text");
            return;
        }
        println!("Received: {}", String::from_utf8_lossy(&line));
        if line == "secure text" {
            self.done.store(true, Ordering::Relaxed);
            tx.lose_connection();
        }
    }
}

impl StartTlsProtocol for Client {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.upgrade.take()
    }
}

/// Connects once; remembers how it ended.
struct Once {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    outcome: Option<Result<(), String>>,
    done: Arc<AtomicBool>,
}

impl ClientFactory for Once {
    type Protocol = StartTls<Framed<Client>>;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Self::Protocol> {
        let client = Client {
            upgrade: None,
            done: self.done.clone(),
        };
        Some(StartTls::client(
            Arc::clone(&self.config),
            self.name.clone(),
            Framed::new(client, LineCodec::new()),
        ))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.outcome = Some(Err(format!("Connection failed: {reason}")));
        Retry::Stop
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.outcome = Some(if self.done.load(Ordering::Relaxed) {
            Ok(())
        } else if is_handshake_failure(reason) {
            Err(format!("Connection failed: {reason}"))
        } else {
            Err(format!("Connection lost: {reason}"))
        });
        Retry::Stop
    }
}

fn main() {
    let args: Args = parse_args();
    let (config, name) = args.tls.client_config_or_exit(&args.connect);
    let addr = resolve_or_exit(&args.connect);
    let factory = Once {
        config,
        name,
        outcome: None,
        done: Default::default(),
    };
    let done = connect_and_join(args.runtime, addr, factory);
    outcome_or_exit(done.outcome);
}
