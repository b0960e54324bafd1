//! The echo protocol driven by a hand-written event loop over non-blocking std sockets and
//! `poll(2)` (through rustix, so no `unsafe`), without either adapter: the worked example of
//! embedding loomwork's sans-IO core in a loop of your own.
//!
//! `cargo run --release --example custom_loop -- --listen 127.0.0.1:1234`
//!
//! The loop is the one the core's crate docs describe: wait for readiness or the next deadline,
//! then let [`loomwork_net::drive`] move the connection's bytes (reads, vectored writes, the
//! socket actions, a reset on abort) and say what to wait for next. All that is left here is
//! the event loop itself.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use clap::Parser;
use loomwork::stream::{Config, Connection};
use loomwork::{Instant, MonotonicClock};
use loomwork_examples::{announce_listening, parse_args, Echo};
use loomwork_net::{drive, tcp, Next};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

/// Echo server on a hand-written poll(2) loop (no adapter).
#[derive(Parser, Debug)]
#[command(name = "custom_loop", version)]
struct Args {
    /// Address to listen on (IP:PORT; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:1234")]
    listen: SocketAddr,
    /// How long a graceful stop may take before remaining connections are dropped (ms).
    #[arg(long, default_value_t = 5000)]
    drain_ms: u64,
}

/// One connection: its socket, the core's state machine for it, and what it waits for.
struct Peer {
    socket: TcpStream,
    conn: Connection<Echo>,
    next: Next,
}

fn main() {
    let args: Args = parse_args();
    if let Err(err) = run(args) {
        eprintln!("custom_loop: {err}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> io::Result<()> {
    // SIGINT/SIGTERM write a byte into this pipe, which the loop polls like any socket.
    let (signal_rx, signal_tx) = UnixStream::pair()?;
    signal_rx.set_nonblocking(true)?;
    ctrlc::set_handler(move || {
        let _ = (&signal_tx).write(&[1]);
    })
    .map_err(io::Error::other)?;
    let listener = TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    announce_listening("tcp", listener.local_addr()?);

    let clock = MonotonicClock::new();
    let mut peers: Vec<Peer> = Vec::new();
    let mut drain_deadline: Option<Instant> = None;
    loop {
        // Sleep until readiness, a signal, or the earliest deadline of any connection.
        let deadline = peers
            .iter()
            .filter_map(|peer| match peer.next {
                Next::Wait { deadline, .. } => deadline,
                Next::Closed => None,
            })
            .chain(drain_deadline)
            .min();
        let (signalled, accept, ready) = wait(&signal_rx, &listener, &peers, deadline, &clock)?;
        let now = clock.now();

        if signalled && drain_deadline.is_none() {
            // Stop accepting; close every connection gracefully (flush, then close).
            drain_deadline = Some(now + Duration::from_millis(args.drain_ms));
            for peer in &mut peers {
                peer.conn.close(now);
            }
        }
        // Drive the connections that are ready, have a deadline due, or are draining.
        for (peer, ready) in peers.iter_mut().zip(ready) {
            let due = matches!(peer.next, Next::Wait { deadline: Some(at), .. } if at <= now);
            if ready || due || drain_deadline.is_some() {
                peer.next = drive(&peer.socket, &mut peer.conn, now);
            }
        }
        peers.retain(|peer| peer.next != Next::Closed);
        if accept && drain_deadline.is_none() {
            accept_all(&listener, &mut peers, &clock)?;
        }
        if let Some(deadline) = drain_deadline {
            if peers.is_empty() || clock.now() >= deadline {
                eprintln!(
                    "stopped: {} connections dropped at the deadline",
                    peers.len()
                );
                return Ok(());
            }
        }
    }
}

/// One `poll(2)` over the signal pipe, the listener (while accepting) and every connection with
/// the interest its last `drive` asked for. Returns whether a signal came, whether the listener
/// is ready, and which connections are.
fn wait(
    signal_rx: &UnixStream,
    listener: &TcpListener,
    peers: &[Peer],
    deadline: Option<Instant>,
    clock: &MonotonicClock,
) -> io::Result<(bool, bool, Vec<bool>)> {
    let mut fds = Vec::with_capacity(peers.len() + 2);
    fds.push(PollFd::new(signal_rx, PollFlags::IN));
    fds.push(PollFd::new(listener, PollFlags::IN));
    for peer in peers {
        let mut flags = PollFlags::empty();
        if let Next::Wait { read, write, .. } = peer.next {
            flags.set(PollFlags::IN, read);
            flags.set(PollFlags::OUT, write);
        }
        // Errors and hang-ups are reported whatever the interest.
        fds.push(PollFd::new(&peer.socket, flags));
    }
    let timeout = deadline.map(|at| {
        let wait = clock.until(at);
        Timespec {
            tv_sec: i64::try_from(wait.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: wait.subsec_nanos().into(),
        }
    });
    match poll(&mut fds, timeout.as_ref()) {
        Ok(_) | Err(rustix::io::Errno::INTR) => {}
        Err(err) => return Err(err.into()),
    }
    let signalled = !fds[0].revents().is_empty();
    if signalled {
        let _ = (&*signal_rx).read(&mut [0; 16]);
    }
    let accept = !fds[1].revents().is_empty();
    let ready = fds[2..].iter().map(|fd| !fd.revents().is_empty()).collect();
    Ok((signalled, accept, ready))
}

/// Accepts every pending connection and hands it to a fresh `Connection`.
fn accept_all(
    listener: &TcpListener,
    peers: &mut Vec<Peer>,
    clock: &MonotonicClock,
) -> io::Result<()> {
    loop {
        let (socket, peer_addr) = match listener.accept() {
            Ok(pair) => pair,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) => {
                eprintln!("accept: {err}");
                return Ok(());
            }
        };
        socket.set_nonblocking(true)?;
        tcp::prepare(&socket)?;
        let now = clock.now();
        let mut conn = Connection::new(Echo, Config::default());
        conn.handle_connected(now, socket.local_addr()?, peer_addr);
        let next = drive(&socket, &mut conn, now);
        if next != Next::Closed {
            peers.push(Peer { socket, conn, next });
        }
    }
}
