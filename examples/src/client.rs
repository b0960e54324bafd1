//! What every client example does around its protocol: run one connector on the runtime the
//! flags chose until it is over, then turn the outcome into output and an exit status.

use std::net::SocketAddr;

use loomwork::connector::{self, ClientFactory};
use loomwork::stream::{Config, Protocol};

use crate::Runtime;

/// Connects to `addr` through `factory` on `runtime`, with the default connector settings
/// (a 30 s connect timeout, Twisted DF-7) and connection `Config`, and waits until the
/// connector is over; gives the factory back with what it recorded.
pub fn connect_and_join<C>(runtime: Runtime, addr: SocketAddr, factory: C) -> C
where
    C: ClientFactory + Send + 'static,
    C::Protocol: Send + 'static,
    <C::Protocol as Protocol>::Message: Send + 'static,
{
    let connector = connector::Config::default();
    let config = Config::default();
    match runtime {
        Runtime::Std => loomwork_std::connect_tcp_with(addr, factory, connector, config).join(),
        Runtime::Smol => {
            smol::block_on(loomwork_smol::connect_tcp_with(addr, factory, connector, config).join())
        }
        Runtime::Tokio => crate::tokio_runtime().block_on(async {
            loomwork_tokio::connect_tcp_with(addr, factory, connector, config)
                .join()
                .await
        }),
    }
}

/// A client's result, or the end of the program: an error is printed to stderr as it is
/// (`Connection failed: ...`, `Connection lost: ...`) and exits with status 1, and so does a
/// connection that ended without producing any result.
pub fn outcome_or_exit<T>(outcome: Option<Result<T, String>>) -> T {
    match outcome {
        Some(Ok(value)) => value,
        Some(Err(message)) => {
            eprintln!("{message}");
            std::process::exit(1);
        }
        None => {
            eprintln!("Connection lost: ended without a result");
            std::process::exit(1);
        }
    }
}
