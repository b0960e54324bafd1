//! The relay rows of issue 15: loomwork's relay (`loomwork::relay`) on smol, std and tokio
//! against tokio's `copy_bidirectional_with_sizes` (with loomwork's 64 KiB read size for both
//! buffers), the same hand-written copy on smol (so that loomwork-smol is also compared with
//! its own runtime at its best) and Twisted's `portforward`, all relaying to one tokio echo
//! server.
//!
//! Each relay runs in a process of its own, as relays are deployed (loomwork's and tokio's in
//! child processes of this binary, Twisted's in Python), and so does the echo server: no relay
//! shares a runtime's threads with another relay, the upstream or the load generator (in one
//! process, tokio's relay and the upstream shared tokio's workers).
//!
//! The upstream is a plain tokio echo (`tokio::io::copy`), which writes what it echoes in
//! pieces of at most 8 KiB: a relay then sees many small reads, which is what costs a thread
//! per relay the most (each piece can wake the relay's thread; loomwork-tokio's echo, which
//! writes what it read whole, is far easier on it).

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
    /// The same copy on smol: one task per relay, a 64 KiB buffer per direction, on the
    /// executor loomwork-smol's relay runs on.
    SmolCopy,
    /// Twisted's `portforward.ProxyFactory`, in a child process.
    Twisted,
}

impl Relay {
    /// Every relay, loomwork's first.
    pub(crate) const ALL: [Relay; 6] = [
        Relay::LoomworkSmol,
        Relay::LoomworkStd,
        Relay::LoomworkTokio,
        Relay::TokioCopy,
        Relay::SmolCopy,
        Relay::Twisted,
    ];

    /// The name shown in tables.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Relay::LoomworkSmol => "loomwork-smol relay",
            Relay::LoomworkStd => "loomwork-std relay",
            Relay::LoomworkTokio => "loomwork-tokio relay",
            Relay::TokioCopy => "tokio copy_bidirectional",
            Relay::SmolCopy => "smol copy (both ways)",
            Relay::Twisted => "Twisted portforward",
        }
    }

    /// The relay called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Relay> {
        Relay::ALL.into_iter().find(|relay| relay.name() == name)
    }

    /// Starts this relay towards `upstream` in a process of its own; it runs until the returned
    /// process is dropped. `None` when it cannot start (no Twisted).
    pub(crate) fn start(self, upstream: SocketAddr) -> Option<(SocketAddr, RelayProcess)> {
        if self == Relay::Twisted {
            return twisted(upstream).map(|(addr, child)| (addr, RelayProcess::Twisted(child)));
        }
        let env = [(crate::rss::UPSTREAM_VAR, upstream.to_string())];
        match crate::rss::start_child(self.name(), 1_000, &env) {
            Ok((addr, child)) => Some((addr, RelayProcess::Suite(child))),
            Err(err) => {
                eprintln!("warning: {} could not start: {err}", self.name());
                None
            }
        }
    }

    /// Starts this relay towards `upstream` in this process (a relay child's); it runs until
    /// the process ends.
    pub(crate) fn start_here(self, upstream: SocketAddr) -> SocketAddr {
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
                addr
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
                addr
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
                addr
            }
            Relay::TokioCopy => tokio_copy(upstream),
            Relay::SmolCopy => smol_copy(upstream),
            Relay::Twisted => panic!("Twisted's relay runs in Python"),
        }
    }
}

/// A running relay's process; dropping it stops the relay.
pub(crate) enum RelayProcess {
    /// A child process of this binary.
    Suite(crate::rss::ServerChild),
    /// Twisted's `portforward` in Python.
    Twisted(Child),
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        match self {
            RelayProcess::Suite(child) => child.stop(),
            RelayProcess::Twisted(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
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

/// tokio's `copy_bidirectional` written for smol: both directions in one task, each with its
/// own buffer, a write-side shutdown passed on when a side ends.
fn smol_copy(upstream: SocketAddr) -> SocketAddr {
    use async_io::Async;
    use futures_lite::{AsyncReadExt, AsyncWriteExt};
    use std::net::{Shutdown, TcpListener, TcpStream};

    async fn pump(from: &Async<TcpStream>, to: &Async<TcpStream>) {
        let mut buf = vec![0; BUFFER];
        let (mut from, mut to) = (from, to);
        while let Ok(n @ 1..) = from.read(&mut buf).await {
            if to.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = to.get_ref().shutdown(Shutdown::Write);
    }

    let listener = Async::<TcpListener>::bind(loopback()).expect("bind");
    let addr = listener.get_ref().local_addr().expect("addr");
    let executor = smol_executor();
    executor
        .spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                smol_executor()
                    .spawn(async move {
                        let Ok(server) = Async::<TcpStream>::connect(upstream).await else {
                            return;
                        };
                        let _ = client.get_ref().set_nodelay(true);
                        let _ = server.get_ref().set_nodelay(true);
                        futures_lite::future::zip(pump(&client, &server), pump(&server, &client))
                            .await;
                    })
                    .detach();
            }
        })
        .detach();
    addr
}

fn twisted(upstream: SocketAddr) -> Option<(SocketAddr, Child)> {
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
        Some(addr) => Some((addr, child)),
        None => {
            let _ = child.kill();
            None
        }
    }
}
