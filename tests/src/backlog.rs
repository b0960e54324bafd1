//! Filling a server's listen backlog with more peers than it has descriptors for, and watching
//! what becomes of each peer: for the descriptor-exhaustion scenario (`tests/accept_backoff.rs`)
//! and the `backlog_load` tool, which run this same client against a server process.
//!
//! Every peer connects (the kernel completes the handshake into the backlog whether or not the
//! server can accept), sends `ping` and waits for the echo. Peers that got their echo first
//! stay open for a while, so the server stays out of descriptors; meanwhile the server
//! process's CPU time is measured, which shows whether its accept loop spins. Then every
//! answered peer closes as soon as it has its echo, freeing the server's descriptors for the
//! peers still waiting in the backlog.
//!
//! Plain non-blocking std sockets, polled in rounds from one thread: no runtime under test is
//! involved on the client side. Loopback only; every loop is bounded in time.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::procfs::cpu_ticks;

/// What every peer sends, and expects back.
pub const PING: &[u8] = b"ping";

/// How long a polling round waits before the next one: short against the server's back-off
/// (at most 500 ms), long enough that 150 non-blocking reads per round cost the client little.
const ROUND: Duration = Duration::from_millis(10);

/// What became of the peers of one [`flood`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FloodReport {
    /// Peers that connected and sent [`PING`].
    pub peers: usize,
    /// Peers that got their echo, in the end.
    pub echoed: usize,
    /// Peers that got their echo while the answered ones were still holding on (the server
    /// had accepted only what its descriptors allowed).
    pub echoed_while_held: usize,
    /// Peers reset before their echo (`ECONNRESET`).
    pub resets: usize,
    /// Peers that saw the end of the stream before their echo.
    pub eofs: usize,
    /// Peers that failed otherwise (another error, or other bytes than the echo).
    pub failures: usize,
    /// Peers still without an answer when patience ran out.
    pub unanswered: usize,
    /// CPU time (user + system) the server process used while the answered peers held on.
    pub server_cpu_while_held: Option<Duration>,
    /// How long the answered peers held on.
    pub held: Duration,
    /// From the first close to the last echo.
    pub recovery: Duration,
}

impl FloodReport {
    /// Every peer got its echo, and nothing else happened to any of them.
    pub fn all_served(&self) -> bool {
        self.echoed == self.peers && self.resets + self.eofs + self.failures + self.unanswered == 0
    }
}

/// One peer: its socket until it is done, what it has read, and how it ended.
struct Peer {
    stream: Option<TcpStream>,
    got: Vec<u8>,
    outcome: Option<Outcome>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Echoed,
    Reset,
    Eof,
    Failed,
}

/// Connects `peers` peers to `addr`, each sending [`PING`]; answered peers hold on for `hold`
/// while the CPU time of `server_pid` is measured; then each closes once answered, until all
/// are answered or `patience` has passed.
///
/// Fails only if a peer cannot connect or send (the client's own trouble, not the server's).
pub fn flood(
    addr: SocketAddr,
    peers: usize,
    hold: Duration,
    server_pid: u32,
    patience: Duration,
) -> io::Result<FloodReport> {
    if !addr.ip().is_loopback() {
        return Err(io::Error::other("loopback addresses only"));
    }
    let mut all = Vec::with_capacity(peers);
    for _ in 0..peers {
        // Completes as soon as the handshake is in the backlog, accepted or not.
        let mut stream = TcpStream::connect_timeout(&addr, patience)?;
        stream.write_all(PING)?;
        stream.set_nonblocking(true)?;
        all.push(Peer {
            stream: Some(stream),
            got: Vec::with_capacity(PING.len()),
            outcome: None,
        });
    }

    let before = cpu_ticks(server_pid);
    let held_from = Instant::now();
    while held_from.elapsed() < hold {
        read_round(&mut all, false);
        std::thread::sleep(ROUND);
    }
    let after = cpu_ticks(server_pid);
    let held = held_from.elapsed();
    let echoed_while_held = count(&all, Outcome::Echoed);

    let recovering = Instant::now();
    let mut recovery = Duration::ZERO;
    while recovering.elapsed() < patience {
        let pending = read_round(&mut all, true);
        if pending == 0 {
            recovery = recovering.elapsed();
            break;
        }
        std::thread::sleep(ROUND);
    }
    // Anyone still waiting closes now, so the server can finish.
    let unanswered = all.iter().filter(|p| p.outcome.is_none()).count();
    drop(all.iter_mut().map(|p| p.stream.take()).collect::<Vec<_>>());
    if unanswered > 0 {
        recovery = recovering.elapsed();
    }
    Ok(FloodReport {
        peers,
        echoed: count(&all, Outcome::Echoed),
        echoed_while_held,
        resets: count(&all, Outcome::Reset),
        eofs: count(&all, Outcome::Eof),
        failures: count(&all, Outcome::Failed),
        unanswered,
        // USER_HZ is 100 on Linux, whatever the kernel's own tick rate.
        server_cpu_while_held: before
            .zip(after)
            .map(|(b, a)| Duration::from_millis(a.saturating_sub(b) * 10)),
        held,
        recovery,
    })
}

/// Reads once from every peer still waiting; with `close_answered`, answered peers close.
/// Returns how many peers are still waiting.
fn read_round(peers: &mut [Peer], close_answered: bool) -> usize {
    let mut pending = 0;
    for peer in peers.iter_mut() {
        if peer.outcome.is_none() {
            if let Some(stream) = peer.stream.as_mut() {
                peer.outcome = read_some(stream, &mut peer.got);
            }
        }
        match peer.outcome {
            None => pending += 1,
            // A failed peer is done; its socket goes at once.
            Some(Outcome::Echoed) if !close_answered => {}
            Some(_) => peer.stream = None,
        }
    }
    pending
}

/// Reads what is there; `Some` once the peer's fate is known.
fn read_some(stream: &mut TcpStream, got: &mut Vec<u8>) -> Option<Outcome> {
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => Some(Outcome::Eof),
        Ok(n) => {
            got.extend_from_slice(&buf[..n]);
            match got.len() {
                len if len < PING.len() && PING.starts_with(got) => None,
                _ if got.as_slice() == PING => Some(Outcome::Echoed),
                _ => Some(Outcome::Failed),
            }
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => None,
        Err(err) if err.kind() == io::ErrorKind::Interrupted => None,
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Some(Outcome::Reset),
        Err(_) => Some(Outcome::Failed),
    }
}

fn count(peers: &[Peer], outcome: Outcome) -> usize {
    peers.iter().filter(|p| p.outcome == Some(outcome)).count()
}
