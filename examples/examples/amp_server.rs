//! AMP server: Twisted's `ampserver.py` (`Sum` and `Divide`, whose division by zero is answered
//! with the declared error `ZERO_DIVISION`), wire-compatible with Twisted's AMP.
//!
//! `cargo run --release --example amp_server -- --listen 127.0.0.1:1234`
//!
//! Besides `Sum` and `Divide` it answers `RoundTrip` (every argument type, sent back as it came),
//! `Echo` (one string) and `Delayed` (answered after a delay, so out of order), which the
//! interop checks use. An unknown command is answered
//! `UNHANDLED`; a malformed box closes only its own connection.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use loomwork::amp::Amp;
use loomwork_examples::amp::Math;
use loomwork_examples::{parse_args, serve_tcp, Runtime, ServeOptions};

/// AMP server (Twisted's ampserver.py).
#[derive(Parser, Debug)]
#[command(name = "amp_server", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: SocketAddr,
    /// Which adapter drives the sans-IO core.
    #[arg(long, value_enum, default_value_t = Runtime::Smol)]
    runtime: Runtime,
    /// Print each sum and division to stderr, as ampserver.py does.
    #[arg(long)]
    verbose: bool,
    /// How long a graceful stop may take before remaining connections are aborted (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

fn main() {
    let args: Args = parse_args();
    let verbose = args.verbose;
    let options = ServeOptions::new(
        args.listen,
        args.runtime,
        Duration::from_millis(args.drain_ms),
    );
    serve_tcp(options, move |_peer| Amp::new(Math::new(verbose)));
}
