//! Connected UDP: the seed's `Helloer` (docs/examples.md `udp_helloer`).
//!
//! Unlike Twisted on Linux's default reactor (Twisted CU-4, KW-7), an ICMP refusal is
//! reported as `connection_refused` on every runtime.
//!
//! `cargo run --example udp_helloer -- --connect 127.0.0.1:9999 --runtime smol`

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::datagram::{DatagramProtocol, DatagramTransport};
use loomwork::TimerId;
use loomwork_examples::udp::{wildcard_for, Endpoint};
use loomwork_examples::{parse_args, resolve_or_exit, stop_signal, Runtime};

/// Sends `hello` to a UDP peer over a connected socket and prints the reply.
#[derive(Parser)]
#[command(name = "udp_helloer")]
struct Args {
    /// The peer (`HOST:PORT`, `[::1]:PORT` for IPv6); a host name is resolved first.
    #[arg(long)]
    connect: String,
    /// How long to wait for a reply, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    wait_ms: u64,
    /// Which runtime drives the protocol.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

/// How the exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Waiting,
    Replied,
    Refused,
    NoReply,
}

struct Helloer {
    peer: SocketAddr,
    wait: Duration,
    outcome: Outcome,
}

impl DatagramProtocol for Helloer {
    type Message = ();

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        if let Err(err) = tx.connect(self.peer) {
            eprintln!("error: cannot connect to {}: {err}", self.peer);
            tx.close();
            return;
        }
        println!("we can only send to {} now", self.peer);
        if let Err(err) = tx.send(Bytes::from_static(b"hello")) {
            eprintln!("error: cannot send: {err}");
            tx.close();
            return;
        }
        tx.call_later(self.wait);
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        println!("received {} from {from}", String::from_utf8_lossy(&data));
        self.outcome = Outcome::Replied;
        tx.close();
    }

    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        println!("No one listening");
        self.outcome = Outcome::Refused;
        tx.close();
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        println!("no reply");
        self.outcome = Outcome::NoReply;
        tx.close();
    }
}

fn main() {
    let args: Args = parse_args();
    let stop = stop_signal();
    let peer = resolve_or_exit(&args.connect);
    let helloer = Helloer {
        peer,
        wait: Duration::from_millis(args.wait_ms),
        outcome: Outcome::Waiting,
    };
    let client = match Endpoint::listen_udp(args.runtime, wildcard_for(peer.ip(), 0), helloer) {
        Ok(client) => client,
        Err(err) => {
            eprintln!("error: cannot bind a UDP socket: {err}");
            std::process::exit(1);
        }
    };
    client.stop_on(stop);
    // `Waiting` at the end means a signal stopped us: a clean stop (docs/examples.md).
    let code = match client.join().outcome {
        Outcome::Replied | Outcome::Waiting => 0,
        Outcome::Refused | Outcome::NoReply => 1,
    };
    std::process::exit(code);
}
