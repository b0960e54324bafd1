//! The relay rows of issue 15: loomwork's relay (`loomwork::relay`) on smol, std and tokio
//! against tokio's `copy_bidirectional_with_sizes` (with loomwork's 64 KiB read size for both
//! buffers) and Twisted's `portforward` (a child process), all relaying to one tokio echo
//! server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use loomwork::connector;
use loomwork::relay::{RelayConfig, RelayFactory};
use loomwork::stream::Config;

use crate::servers::{loopback, smol_executor, tokio_runtime};

/// The buffer size of each direction of tokio's relay: loomwork's read size.
const BUFFER: usize = loomwork_net::tcp::READ_SIZE;

/// Which relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Relay {
    /// `RelayFactory` on `loomwork-smol` (the shared multi-thread executor).
    LoomworkSmol,
    /// `RelayFactory` on `loomwork-std` (a thread per relay: the upstream leg runs on the
    /// client leg's thread).
    LoomworkStd,
    /// `RelayFactory` on `loomwork-tokio`.
    LoomworkTokio,
    /// `tokio::io::copy_bidirectional_with_sizes` per connection.
    TokioCopy,
    /// Twisted's `portforward.ProxyFactory`, in a child process.
    Twisted,
}

impl Relay {
    /// Every relay, loomwork's first.
    pub(crate) const ALL: [Relay; 5] = [
        Relay::LoomworkSmol,
        Relay::LoomworkStd,
        Relay::LoomworkTokio,
        Relay::TokioCopy,
        Relay::Twisted,
    ];

    /// The name shown in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Relay::LoomworkSmol => "loomwork-smol relay",
            Relay::LoomworkStd => "loomwork-std relay",
            Relay::LoomworkTokio => "loomwork-tokio relay",
            Relay::TokioCopy => "tokio copy_bidirectional",
            Relay::Twisted => "Twisted portforward",
        }
    }

    /// Starts this relay towards `upstream`; it runs until the process ends (the Twisted child
    /// is returned so the caller can kill it). `None` when it cannot start (no Twisted).
    pub(crate) fn start(self, upstream: SocketAddr) -> Option<(SocketAddr, Option<Child>)> {
        let config = RelayConfig::default();
        match self {
            Relay::LoomworkSmol => {
                let dialer = loomwork_smol::relay_dialer_on(
                    smol_executor().clone(),
                    upstream,
                    connector::Config::default(),
                    Config::default(),
                );
                let server = loomwork_smol::listen_tcp_on(
                    smol_executor(),
                    loopback(),
                    RelayFactory::new(dialer, config),
                    loomwork_smol::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                Some((addr, None))
            }
            Relay::LoomworkStd => {
                let dialer = loomwork_std::relay_dialer(
                    upstream,
                    connector::Config::default(),
                    Config::default(),
                );
                let server =
                    loomwork_std::listen_tcp(loopback(), RelayFactory::new(dialer, config))
                        .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                Some((addr, None))
            }
            Relay::LoomworkTokio => {
                let dialer = {
                    let _inside = tokio_runtime().enter();
                    loomwork_tokio::relay_dialer(
                        upstream,
                        connector::Config::default(),
                        Config::default(),
                    )
                };
                let server = loomwork_tokio::listen_tcp_on(
                    tokio_runtime().handle(),
                    loopback(),
                    RelayFactory::new(dialer, config),
                    loomwork_tokio::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                Some((addr, None))
            }
            Relay::TokioCopy => Some((tokio_copy(upstream), None)),
            Relay::Twisted => twisted(upstream),
        }
    }
}

fn tokio_copy(upstream: SocketAddr) -> SocketAddr {
    let rt = tokio_runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(loopback()))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    rt.spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                let _ = server.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut server,
                    BUFFER,
                    BUFFER,
                )
                .await;
            });
        }
    });
    addr
}

fn twisted(upstream: SocketAddr) -> Option<(SocketAddr, Option<Child>)> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../interop/twisted_portforward.py"
    );
    let mut child = Command::new("python3")
        .arg(script)
        .arg(upstream.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take()?)
        .read_line(&mut line)
        .ok()?;
    match line
        .trim()
        .strip_prefix("listening on tcp ")
        .and_then(|a| a.parse().ok())
    {
        Some(addr) => Some((addr, Some(child))),
        None => {
            let _ = child.kill();
            None
        }
    }
}
