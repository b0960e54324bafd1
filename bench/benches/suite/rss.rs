//! Servers in child processes of this same binary (started with `LOOMWORK_SUITE_SERVE=<name>`):
//! the relay rows' relays and upstream, and the memory measurement, where the parent opens N
//! connections to a server alone in its child and reads the child's VmRSS from /proc before and
//! after (the method of `tests/src/bin/echo_load`).

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use loomwork_conformance::procfs::{fd_count, rss_kib};

use crate::servers::Tcp;

/// Connections opened before waiting for the server to accept them.
const BATCH: usize = 64;

/// The variable that turns this binary into a server child.
pub(crate) const CHILD_VAR: &str = "LOOMWORK_SUITE_SERVE";

/// The upstream address a relay child relays to.
pub(crate) const UPSTREAM_VAR: &str = "LOOMWORK_SUITE_UPSTREAM";

/// In a child: start the named echo server, print its address, and serve until stdin closes.
pub(crate) fn serve_child(name: &str, connections: u64) -> ! {
    // loomwork-std gives each connection a poller of its own (an epoll and a wake-up fd).
    raise_fd_limit(connections * 4 + 1024);
    if let Some(tls) = crate::tls::TlsServer::from_name(name) {
        println!("{}", tls.start());
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0)
    }
    let addr = match crate::relay::Relay::from_name(name) {
        Some(relay) => {
            let upstream = std::env::var(UPSTREAM_VAR)
                .ok()
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs {UPSTREAM_VAR}"));
            relay.start_here(upstream)
        }
        None => Tcp::from_name(name)
            .unwrap_or_else(|| panic!("unknown server {name}"))
            .start(),
    };
    println!("{addr}");
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    std::process::exit(0)
}

/// Bytes of server RSS per idle connection with `connections` open, for `kind`.
pub(crate) fn per_idle_connection(kind: Tcp, connections: usize) -> Result<f64, String> {
    raise_fd_limit(connections as u64 + 1024);
    let mut child = spawn(kind.name(), connections, &[])?;
    let result = child
        .addr()
        .and_then(|addr| measure(&child.process, addr, connections));
    drop(child);
    result
}

/// A server running alone in a child process of this binary; it exits when this is dropped
/// (its stdin closes).
pub(crate) struct ServerChild {
    process: Child,
}

impl ServerChild {
    /// The address the child printed once it was listening.
    fn addr(&mut self) -> Result<SocketAddr, String> {
        let stdout = self.process.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        line.trim().parse().map_err(|e| format!("{line:?}: {e}"))
    }
}

impl ServerChild {
    /// Stops the child and waits for it to exit (it exits when its stdin closes).
    pub(crate) fn stop(&mut self) {
        drop(self.process.stdin.take());
        let _ = self.process.wait();
    }
}

impl Drop for ServerChild {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the server called `name` (an echo server, or a relay given [`UPSTREAM_VAR`] in
/// `env`) in a child process with room for `connections`, and returns its address and the
/// child.
pub(crate) fn start_child(
    name: &str,
    connections: usize,
    env: &[(&str, String)],
) -> Result<(SocketAddr, ServerChild), String> {
    let mut child = spawn(name, connections, env)?;
    let addr = child.addr()?;
    Ok((addr, child))
}

fn spawn(name: &str, connections: usize, env: &[(&str, String)]) -> Result<ServerChild, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let process = Command::new(exe)
        .env(CHILD_VAR, name)
        .env("LOOMWORK_SUITE_CONNECTIONS", connections.to_string())
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(ServerChild { process })
}

fn measure(child: &Child, addr: SocketAddr, connections: usize) -> Result<f64, String> {
    let pid = child.id();
    // Let the runtime's threads and first allocations settle before the baseline.
    thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid).ok_or("no /proc status")?;
    let fds_before = fd_count(pid).unwrap_or(0);
    let mut streams = Vec::with_capacity(connections);
    let deadline = Instant::now() + Duration::from_secs(60);
    while streams.len() < connections && Instant::now() < deadline {
        match TcpStream::connect(addr) {
            Ok(stream) => streams.push(stream),
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
        // Pace to the server's accepting (a thread-per-connection server accepts slowly): a
        // full listen backlog drops SYNs, and each dropped one stalls a connect for a second.
        if streams.len() % BATCH == 0 {
            let caught_up = Instant::now() + Duration::from_secs(2);
            while fd_count(pid).unwrap_or(usize::MAX) + BATCH < fds_before + streams.len()
                && Instant::now() < caught_up
            {
                thread::sleep(Duration::from_millis(1));
            }
        }
    }
    // Wait until the server holds every connection (or 10 s), then let it settle.
    let settle = Instant::now() + Duration::from_secs(10);
    while fd_count(pid).unwrap_or(0) < fds_before + streams.len() && Instant::now() < settle {
        thread::sleep(Duration::from_millis(20));
    }
    thread::sleep(Duration::from_millis(1000));
    let idle = rss_kib(pid).ok_or("no /proc status")?;
    if streams.len() < connections {
        return Err(format!("only {} connections opened", streams.len()));
    }
    Ok(idle.saturating_sub(before) as f64 * 1024.0 / connections as f64)
}

/// Raises the descriptor limit to at least `want`, as far as the process may.
fn raise_fd_limit(want: u64) {
    // Best effort: a measurement that runs out of descriptors fails loudly on its own.
    let _ = loomwork_net::testing::raise_descriptor_limit(want);
}
