//! The echo protocol driven by a hand-written event loop over non-blocking std sockets and the
//! `polling` crate, without either adapter: the worked example of embedding loomwork's sans-IO
//! core in a loop of your own.
//!
//! `cargo run --release --example custom_loop -- --listen 127.0.0.1:1234`
//!
//! The loop is the one the core's crate docs describe: wait for readiness or the next deadline,
//! tell the connection what happened (with the time), then drain its outputs: writes, socket
//! actions, and the next deadline.

use std::collections::HashMap;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use loomwork::stream::{Action, Config, Connection};
use loomwork::MonotonicClock;
use loomwork_examples::{announce_listening, parse_args, Echo};
use polling::{Event, Events, Poller};

/// Echo server on a hand-written polling loop (no adapter).
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

// `polling` reserves `usize::MAX` for its own notifications.
const LISTENER: usize = 0;
const MAX_READ: usize = 64 * 1024;

/// One connection: its socket and the core's state machine for it.
struct Peer {
    socket: TcpStream,
    conn: Connection<Echo>,
}

fn main() {
    let args: Args = parse_args();
    if let Err(err) = run(args) {
        eprintln!("custom_loop: {err}");
        std::process::exit(1);
    }
}

fn run(args: Args) -> io::Result<()> {
    let poller = Arc::new(Poller::new()?);
    let stopping = Arc::new(AtomicBool::new(false));
    {
        let (poller, stopping) = (poller.clone(), stopping.clone());
        ctrlc::set_handler(move || {
            stopping.store(true, Ordering::SeqCst);
            let _ = poller.notify();
        })
        .map_err(io::Error::other)?;
    }
    let listener = TcpListener::bind(args.listen)?;
    listener.set_nonblocking(true)?;
    register(&poller, &listener, Event::readable(LISTENER))?;
    announce_listening("tcp", listener.local_addr()?);

    let clock = MonotonicClock::new();
    let mut peers: HashMap<usize, Peer> = HashMap::new();
    let mut next_key = LISTENER + 1;
    let mut events = Events::new();
    let mut scratch = vec![0u8; MAX_READ];
    let mut drain_deadline = None;

    loop {
        // Sleep until readiness, a signal, or the earliest deadline of any connection.
        let next = peers.values().filter_map(|p| p.conn.next_timeout()).min();
        let timeout = next.map(|at| clock.until(at));
        events.clear();
        poller.wait(&mut events, timeout)?;
        let now = clock.now();

        if stopping.load(Ordering::SeqCst) && drain_deadline.is_none() {
            // Stop accepting; close every connection gracefully (flush, then close).
            poller.delete(&listener)?;
            drain_deadline = Some(now + Duration::from_millis(args.drain_ms));
            for peer in peers.values_mut() {
                peer.conn.close(now);
            }
        }

        let mut touched: Vec<usize> = Vec::new();
        for event in events.iter() {
            if event.key == LISTENER {
                accept_all(&listener, &poller, &mut peers, &mut next_key, &clock)?;
                if drain_deadline.is_none() {
                    poller.modify(&listener, Event::readable(LISTENER))?;
                }
                continue;
            }
            let Some(peer) = peers.get_mut(&event.key) else {
                continue;
            };
            if event.readable {
                read_ready(peer, &mut scratch, &clock);
            }
            touched.push(event.key);
        }
        // Deadlines: only connections with something due (a real loop would keep a timer heap;
        // a scan keeps the example short). A drain touches everyone once.
        for (key, peer) in peers.iter_mut() {
            if drain_deadline.is_some() || peer.conn.next_timeout().is_some_and(|at| at <= now) {
                peer.conn.handle_timeout(now);
                touched.push(*key);
            }
        }
        touched.sort_unstable();
        touched.dedup();
        for key in touched {
            let Some(peer) = peers.get_mut(&key) else {
                continue;
            };
            if drive(peer, &clock) {
                let peer = peers.remove(&key).expect("present");
                poller.delete(&peer.socket)?;
            } else {
                let interest = Event::new(key, peer.conn.wants_read(), peer.conn.wants_write());
                poller.modify(&peer.socket, interest)?;
            }
        }
        if let Some(deadline) = drain_deadline {
            if peers.is_empty() || clock.now() >= deadline {
                eprintln!(
                    "stopped: {} connections dropped at the deadline",
                    peers.len()
                );
                for (_, peer) in peers.drain() {
                    poller.delete(&peer.socket)?;
                }
                return Ok(());
            }
        }
    }
}

/// Accepts every pending connection and hands it to a fresh `Connection`.
fn accept_all(
    listener: &TcpListener,
    poller: &Poller,
    peers: &mut HashMap<usize, Peer>,
    next_key: &mut usize,
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
        socket.set_nodelay(true)?;
        let mut conn = Connection::new(Echo, Config::default());
        conn.handle_connected(clock.now(), socket.local_addr()?, peer_addr);
        let key = *next_key;
        *next_key += 1;
        register(
            poller,
            &socket,
            Event::new(key, conn.wants_read(), conn.wants_write()),
        )?;
        peers.insert(key, Peer { socket, conn });
    }
}

/// Reads while the connection wants input and the socket has some.
fn read_ready(peer: &mut Peer, scratch: &mut [u8], clock: &MonotonicClock) {
    while peer.conn.wants_read() {
        match peer.socket.read(scratch) {
            Ok(0) => return peer.conn.handle_read_closed(clock.now()),
            Ok(n) => peer.conn.handle_data(clock.now(), &scratch[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                return peer
                    .conn
                    .handle_error(clock.now(), loomwork_net::reason_from_io(&err))
            }
        }
    }
}

/// Flushes writes and carries out socket actions; true once the connection is over.
fn drive(peer: &mut Peer, clock: &MonotonicClock) -> bool {
    while peer.conn.wants_write() {
        let slices: Vec<IoSlice<'_>> = peer.conn.poll_write().take(64).map(IoSlice::new).collect();
        match peer.socket.write_vectored(&slices) {
            Ok(n) => peer.conn.handle_written(clock.now(), n),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                peer.conn
                    .handle_error(clock.now(), loomwork_net::reason_from_io(&err));
                break;
            }
        }
    }
    while let Some(action) = peer.conn.poll_action() {
        match action {
            Action::ShutdownWrite => {
                let _ = peer.socket.shutdown(Shutdown::Write);
            }
            Action::Close => return true,
            Action::Abort => {
                let _ = socket2::SockRef::from(&peer.socket).set_linger(Some(Duration::ZERO));
                return true;
            }
        }
    }
    false
}

/// Registers a socket with the poller.
#[allow(unsafe_code)]
fn register(poller: &Poller, socket: &impl AsFd, interest: Event) -> io::Result<()> {
    // SAFETY: `polling` requires every source to be deleted before it is closed. Listener and
    // peers are deleted in `run` before they are dropped (peers on close, all at shutdown).
    unsafe { poller.add(socket.as_fd().as_raw_fd(), interest) }
}
