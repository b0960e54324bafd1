//! UDP echo: Twisted's `Echo` `DatagramProtocol` (docs/examples.md `udp_echo`).
//!
//! `cargo run --example udp_echo -- --listen 127.0.0.1:9999 --runtime std`

use std::net::SocketAddr;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::datagram::{DatagramProtocol, DatagramTransport};
use loomwork_examples::udp::Endpoint;
use loomwork_examples::{announce_listening, parse_args, stop_signal, Runtime};

/// Echoes every UDP datagram back to its sender.
#[derive(Parser)]
#[command(name = "udp_echo")]
struct Args {
    /// Address to listen on (`IP:PORT`; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:9999")]
    listen: SocketAddr,
    /// Which runtime drives the protocol.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

/// The seed's `Echo`: send each datagram back where it came from.
struct Echo;

impl DatagramProtocol for Echo {
    type Message = ();

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        let note = if truncated { " (truncated)" } else { "" };
        eprintln!("received {} from {from}{note}", data.escape_ascii());
        if let Err(err) = tx.send_to(data, from) {
            eprintln!("cannot answer {from}: {err}");
        }
    }
}

fn main() {
    let args: Args = parse_args();
    let stop = stop_signal();
    let server = match Endpoint::listen_udp(args.runtime, args.listen, Echo) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("error: cannot listen on udp {}: {err}", args.listen);
            std::process::exit(1);
        }
    };
    announce_listening("udp", server.local_addr());
    let _ = stop.recv();
    server.stop();
    server.join();
}
