//! Multicast server: the seed's `MulticastPingPong` server (docs/examples.md `multicast_server`).
//!
//! Binds the wildcard address with address and port reuse, so several servers share the port,
//! joins the group, and answers `UniqueID` with `data`. Try it only inside a private network
//! namespace (scripts/netns-test.sh).
//!
//! `cargo run --example multicast_server -- --group 239.255.0.1 --port 8005 --runtime std`

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::Parser;
use loomwork::bytes::Bytes;
use loomwork::datagram::{Command, DatagramProtocol, DatagramTransport, Interface};
use loomwork::{Reason, TimerId};
use loomwork_examples::udp::{parse_interface, wildcard_for, Endpoint};
use loomwork_examples::{announce_listening, parse_args, stop_signal, Runtime};

/// Joins a multicast group and answers `UniqueID` with `data`.
#[derive(Parser)]
#[command(name = "multicast_server")]
struct Args {
    /// The group to join (224.0.0.1, 239.x, or an IPv6 group such as ff02::1).
    #[arg(long, default_value = "224.0.0.1")]
    group: IpAddr,
    /// The group's port.
    #[arg(long, default_value_t = 8005)]
    port: u16,
    /// The interface to join on: an IPv4 address or an interface index (not a bind address).
    #[arg(long, value_parser = parse_interface)]
    interface: Option<Interface>,
    /// Which runtime drives the protocol.
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

struct MulticastServer {
    group: IpAddr,
    interface: Interface,
    failed: bool,
}

impl DatagramProtocol for MulticastServer {
    type Message = ();

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        if let Err(err) = tx.join_group(self.group, self.interface) {
            eprintln!("error: cannot join {}: {err}", self.group);
            self.failed = true;
            tx.close();
            return;
        }
        // The join is carried out right after this callback; a zero-delay timer fires after
        // it, so the `listening` line is printed only once the group is joined.
        tx.call_later(Duration::ZERO);
    }

    fn timer_fired(&mut self, _: TimerId, tx: &mut DatagramTransport<'_>) {
        if let Some(local) = tx.local() {
            announce_listening("udp", local);
        }
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        _truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        if &data[..] != b"UniqueID" {
            return;
        }
        println!("Server Received: UniqueID");
        if let Err(err) = tx.send_to(Bytes::from_static(b"data"), from) {
            eprintln!("cannot answer {from}: {err}");
        }
    }

    fn command_failed(
        &mut self,
        command: &Command,
        reason: &Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        eprintln!("error: cannot {command}: {reason}");
        self.failed = true;
        tx.close();
    }
}

fn main() {
    let args: Args = parse_args();
    let stop = stop_signal();
    let server = MulticastServer {
        group: args.group,
        interface: args.interface.unwrap_or_default(),
        failed: false,
    };
    let bind = wildcard_for(args.group, args.port);
    let endpoint = match Endpoint::listen_multicast(args.runtime, bind, server) {
        Ok(endpoint) => endpoint,
        Err(err) => {
            eprintln!("error: cannot listen on udp {bind}: {err}");
            std::process::exit(1);
        }
    };
    endpoint.stop_on(stop);
    let server = endpoint.join();
    std::process::exit(if server.failed { 1 } else { 0 });
}
