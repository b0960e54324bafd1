//! The TLS rows of issue 14: loomwork's `Tls` layer on loomwork-smol and loomwork-std against
//! tokio-rustls, every server with the same rustls `ServerConfig` (the fixture ECDSA P-256
//! certificate of `loomwork_tls::testing`, rustls's ring provider), and one load generator for
//! all: rustls's own blocking client (`rustls::StreamOwned`) on std sockets, one thread per
//! connection, with session resumption off so that every handshake is a full one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use loomwork_conformance::procfs::{fd_count, rss_kib};
use loomwork_tls::rustls::client::Resumption;
use loomwork_tls::rustls::{ClientConfig, ClientConnection, StreamOwned};
// The echo inside the loomwork servers: the plaintext back, a close at its end.
use loomwork_tls::testing::{
    fixture_client_config, fixture_server_config, fixture_server_name, Echo,
};
use loomwork_tls::TlsFactory;

use crate::load::Run;
use crate::servers::{loopback, smol_executor, tokio_runtime};

/// However a run goes, a blocked read gives up after this.
const STALL: Duration = Duration::from_secs(5);

/// Which TLS echo server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TlsServer {
    /// `Tls` around an echo on loomwork-smol.
    LoomworkSmol,
    /// `Tls` around an echo on loomwork-std.
    LoomworkStd,
    /// tokio-rustls's `TlsAcceptor`, then `tokio::io::copy`.
    TokioRustls,
}

impl TlsServer {
    /// Every TLS echo server, loomwork's first.
    pub(crate) const ALL: [TlsServer; 3] = [
        TlsServer::LoomworkSmol,
        TlsServer::LoomworkStd,
        TlsServer::TokioRustls,
    ];

    /// The name shown in tables (and given to an RSS child).
    pub(crate) fn name(self) -> &'static str {
        match self {
            TlsServer::LoomworkSmol => "loomwork-smol+tls",
            TlsServer::LoomworkStd => "loomwork-std+tls",
            TlsServer::TokioRustls => "tokio-rustls",
        }
    }

    /// Parses [`TlsServer::name`].
    pub(crate) fn from_name(name: &str) -> Option<TlsServer> {
        TlsServer::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Starts this server; it runs until the process ends.
    pub(crate) fn start(self) -> SocketAddr {
        let config = fixture_server_config();
        match self {
            TlsServer::LoomworkSmol => {
                let server = loomwork_smol::listen_tcp_on(
                    smol_executor(),
                    loopback(),
                    TlsFactory::new(config, |_| Echo),
                    loomwork_smol::ListenConfig::default(),
                )
                .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            TlsServer::LoomworkStd => {
                let server =
                    loomwork_std::listen_tcp(loopback(), TlsFactory::new(config, |_| Echo))
                        .expect("listen");
                let addr = server.local_addr();
                std::mem::forget(server);
                addr
            }
            TlsServer::TokioRustls => tokio_rustls_echo(),
        }
    }
}

fn tokio_rustls_echo() -> SocketAddr {
    let rt = tokio_runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(loopback()))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = tokio_rustls::TlsAcceptor::from(fixture_server_config());
    rt.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let (mut reader, mut writer) = tokio::io::split(tls);
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
                use tokio::io::AsyncWriteExt;
                let _ = writer.shutdown().await;
            });
        }
    });
    addr
}

/// The load generator's client settings: the fixture CA, no resumption (full handshakes).
fn client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let mut config = (*fixture_client_config()).clone();
        config.resumption = Resumption::disabled();
        Arc::new(config)
    }))
}

type Client = StreamOwned<ClientConnection, TcpStream>;

/// Connects and finishes the handshake.
fn connect(addr: SocketAddr) -> std::io::Result<Client> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(STALL))?;
    let conn = ClientConnection::new(client_config(), fixture_server_name())
        .map_err(std::io::Error::other)?;
    let mut client = StreamOwned::new(conn, stream);
    while client.conn.is_handshaking() {
        client.conn.complete_io(&mut client.sock)?;
    }
    Ok(client)
}

/// `connections` TLS clients each streaming `chunk`-sized writes with up to four in flight
/// and reading the echo, for `duration`. Rate: plaintext bytes echoed per second.
pub(crate) fn echo(addr: SocketAddr, connections: usize, chunk: usize, duration: Duration) -> Run {
    let start = Arc::new(Barrier::new(connections + 1));
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let client = connect(addr);
                start.wait();
                let Ok(mut client) = client else { return 0 };
                let data = vec![b't'; chunk];
                let mut buf = vec![0; 64 * 1024];
                let deadline = Instant::now() + duration;
                let (mut sent, mut received) = (0u64, 0u64);
                let in_flight = 4 * chunk as u64;
                'run: while Instant::now() < deadline {
                    if client.write_all(&data).is_err() {
                        break;
                    }
                    sent += chunk as u64;
                    while sent - received >= in_flight {
                        match client.read(&mut buf) {
                            Ok(n @ 1..) => received += n as u64,
                            _ => break 'run,
                        }
                    }
                }
                while received < sent {
                    match client.read(&mut buf) {
                        Ok(n @ 1..) => received += n as u64,
                        _ => break,
                    }
                }
                client.conn.send_close_notify();
                let _ = client.flush();
                received
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Run {
        rate: total as f64 / began.elapsed().as_secs_f64(),
        ..Run::default()
    }
}

/// Two clients in a loop: connect, full handshake, 1 byte echoed, close. Rate: connections
/// per second.
pub(crate) fn handshakes(addr: SocketAddr, duration: Duration) -> Run {
    let deadline = Instant::now() + duration;
    let began = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            thread::spawn(move || {
                let mut done = 0u64;
                while Instant::now() < deadline && done < 1_000_000 {
                    let Ok(mut client) = connect(addr) else { break };
                    let mut byte = [7u8];
                    if client.write_all(&byte).is_err() || client.read_exact(&mut byte).is_err() {
                        break;
                    }
                    client.conn.send_close_notify();
                    let _ = client.flush();
                    let _ = socket2::SockRef::from(&client.sock).set_linger(Some(Duration::ZERO));
                    done += 1;
                }
                done
            })
        })
        .collect();
    let total: u64 = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    Run {
        rate: total as f64 / began.elapsed().as_secs_f64(),
        ..Run::default()
    }
}

/// Bytes of server RSS per idle TLS connection (handshake done, nothing sent) with
/// `connections` open, the server alone in a child process (see `rss.rs`).
pub(crate) fn per_idle_connection(kind: TlsServer, connections: usize) -> Result<f64, String> {
    let _ = loomwork_net::testing::raise_descriptor_limit(connections as u64 * 2 + 1024);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = Command::new(exe)
        .env(crate::rss::CHILD_VAR, kind.name())
        .env("LOOMWORK_SUITE_CONNECTIONS", connections.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let result = (|| {
        let pid = child.id();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr: SocketAddr = line.trim().parse().map_err(|e| format!("{line:?}: {e}"))?;
        thread::sleep(Duration::from_millis(300));
        // Warm up: the first handshakes make the server's lazily built state.
        for _ in 0..8 {
            drop(connect(addr).map_err(|e| e.to_string())?);
        }
        thread::sleep(Duration::from_millis(300));
        let before = rss_kib(pid).ok_or("no /proc status")?;
        let fds_before = fd_count(pid).unwrap_or(0);
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut clients = Vec::with_capacity(connections);
        while clients.len() < connections && Instant::now() < deadline {
            match connect(addr) {
                Ok(client) => clients.push(client),
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
        let settle = Instant::now() + Duration::from_secs(10);
        while fd_count(pid).unwrap_or(0) < fds_before + clients.len() && Instant::now() < settle {
            thread::sleep(Duration::from_millis(20));
        }
        thread::sleep(Duration::from_millis(1000));
        let idle = rss_kib(pid).ok_or("no /proc status")?;
        if clients.len() < connections {
            return Err(format!("only {} connections opened", clients.len()));
        }
        Ok(idle.saturating_sub(before) as f64 * 1024.0 / connections as f64)
    })();
    drop(child.stdin.take());
    let _ = child.wait();
    result
}
