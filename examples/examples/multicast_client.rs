//! Multicast client: the seed's `MulticastPingClient` (docs/examples.md `multicast_client`).
//!
//! Sends `UniqueID` to the group from an any-port socket and prints every answer (one per
//! server) until the wait is over. Try it only inside a private network namespace.
//!
//! `cargo run --example multicast_client -- --group 239.255.0.1 --port 8005`

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::datagram::{DatagramProtocol, DatagramTransport, Interface};
use loomwork::TimerId;
use loomwork_examples::udp::{parse_interface, wildcard_for, Endpoint};
use loomwork_examples::{parse_args, stop_signal, Runtime};

/// Pings a multicast group and prints the answers.
#[derive(Parser)]
#[command(name = "multicast_client")]
struct Args {
    /// The group to ping.
    #[arg(long, default_value = "224.0.0.1")]
    group: IpAddr,
    /// The group's port.
    #[arg(long, default_value_t = 8005)]
    port: u16,
    /// The interface to send through: an IPv4 address or an interface index (IPv6
    /// link-scope groups need one). Default: the route's.
    #[arg(long, value_parser = parse_interface)]
    interface: Option<Interface>,
    /// How long to collect answers, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    wait_ms: u64,
    /// Which runtime drives the protocol.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

struct MulticastClient {
    group: SocketAddr,
    interface: Option<Interface>,
    wait: Duration,
    failed: bool,
}

impl DatagramProtocol for MulticastClient {
    type Message = ();

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        if let Some(interface) = self.interface {
            if let Err(err) = tx.set_outgoing_interface(interface) {
                eprintln!("error: cannot use {interface}: {err}");
                self.failed = true;
                tx.close();
                return;
            }
        }
        if let Err(err) = tx.send_to(Bytes::from_static(b"UniqueID"), self.group) {
            eprintln!("error: cannot send to {}: {err}", self.group);
            self.failed = true;
            tx.close();
            return;
        }
        tx.call_later(self.wait);
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        _from: SocketAddr,
        _truncated: bool,
        _tx: &mut DatagramTransport<'_>,
    ) {
        println!("Received: {}", String::from_utf8_lossy(&data));
    }

    fn send_failed(
        &mut self,
        to: Option<SocketAddr>,
        reason: &loomwork::Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        eprintln!("error: cannot send to {to:?}: {reason}");
        self.failed = true;
        tx.close();
    }

    fn command_failed(
        &mut self,
        command: &loomwork::datagram::Command,
        reason: &loomwork::Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        eprintln!("error: cannot {command}: {reason}");
        self.failed = true;
        tx.close();
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        tx.close();
    }
}

fn main() {
    let args: Args = parse_args();
    let stop = stop_signal();
    let group = SocketAddr::new(args.group, args.port);
    let client = MulticastClient {
        group,
        interface: args.interface,
        wait: Duration::from_millis(args.wait_ms),
        failed: false,
    };
    let endpoint = match Endpoint::listen_udp(args.runtime, wildcard_for(args.group, 0), client) {
        Ok(endpoint) => endpoint,
        Err(err) => {
            eprintln!("error: cannot bind a UDP socket: {err}");
            std::process::exit(1);
        }
    };
    endpoint.stop_on(stop);
    let client = endpoint.join();
    std::process::exit(if client.failed { 1 } else { 0 });
}
