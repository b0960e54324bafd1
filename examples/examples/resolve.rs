//! Name resolution with the system resolver (docs/examples.md `resolve`, Twisted RS-1/RS-2).
//!
//! `cargo run --example resolve -- localhost --runtime smol`

use clap::Parser;
use loomwork_examples::{parse_args, Runtime};

/// Resolves a host name and prints each address on its own line.
#[derive(Parser)]
#[command(name = "resolve")]
struct Args {
    /// The host name (an IP literal is printed back as is).
    hostname: String,
    /// Which runtime does the lookup (smol and tokio do it off their executors).
    #[arg(long, value_enum, default_value_t)]
    runtime: Runtime,
}

fn main() {
    let args: Args = parse_args();
    let result = match args.runtime {
        Runtime::Std => loomwork_std::resolve(&args.hostname),
        Runtime::Smol => smol::block_on(loomwork_smol::resolve(&args.hostname)),
        Runtime::Tokio => {
            loomwork_examples::tokio_runtime().block_on(loomwork_tokio::resolve(&args.hostname))
        }
    };
    match result {
        Ok(addrs) => {
            for addr in addrs {
                println!("{addr}");
            }
        }
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(1);
        }
    }
}
