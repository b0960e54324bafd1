//! TCP echo client: sends a message, waits for the echo, prints it (Twisted's echoclient).
//!
//! `cargo run --release --example echo_client -- --connect 127.0.0.1:1234 --message hello`

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use loomwork::bytes::BytesMut;
use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::{Protocol, Transport};
use loomwork::Reason;
use loomwork_examples::{connect_and_join, outcome_or_exit, parse_args, resolve_or_exit, Runtime};

/// TCP echo client.
#[derive(Parser, Debug)]
#[command(name = "echo_client", version)]
struct Args {
    /// Server address (HOST:PORT or IP:PORT; IPv6 as [::1]:PORT).
    #[arg(long, default_value = "127.0.0.1:1234")]
    connect: String,
    /// Text to send.
    #[arg(long, default_value = "Hello, world!")]
    message: String,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
}

/// Sends the message once connected; closes once as many bytes came back.
struct EchoClient {
    message: Vec<u8>,
    received: Vec<u8>,
    echoed: Arc<AtomicBool>,
}

impl Protocol for EchoClient {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(&self.message);
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.received.extend_from_slice(&data.split());
        if self.received.len() >= self.message.len() {
            println!("Received: {}", String::from_utf8_lossy(&self.received));
            self.echoed.store(true, Ordering::Relaxed);
            tx.lose_connection();
        }
    }
}

/// Connects once; remembers how it ended (Twisted's clientConnectionFailed/Lost).
struct Once {
    message: Vec<u8>,
    outcome: Option<Result<(), String>>,
    echoed: Arc<AtomicBool>,
}

impl ClientFactory for Once {
    type Protocol = EchoClient;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<EchoClient> {
        Some(EchoClient {
            message: self.message.clone(),
            received: Vec::new(),
            echoed: self.echoed.clone(),
        })
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.outcome = Some(Err(format!("Connection failed: {reason}")));
        Retry::Stop
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        // A clean close before the whole echo came back is still a lost connection.
        self.outcome = Some(if self.echoed.load(Ordering::Relaxed) {
            Ok(())
        } else {
            Err(format!("Connection lost: {reason}"))
        });
        Retry::Stop
    }
}

fn main() {
    let args: Args = parse_args();
    let addr = resolve_or_exit(&args.connect);
    let factory = Once {
        message: args.message.into_bytes(),
        outcome: None,
        echoed: Default::default(),
    };
    let done = connect_and_join(args.runtime, addr, factory);
    outcome_or_exit(done.outcome);
}
