//! The per-connection loop: moves bytes, time and mailbox traffic between one socket and one
//! [`Connection`].
//!
//! One thread runs this loop for one connection over a non-blocking socket and a `Poller` of its
//! own. Each turn it: reads the clock; takes a capped batch from the mailbox; handles an expired
//! deadline at once; reads (at most [`READS_PER_TURN`] reads of [`READ_SIZE`] bytes) while the
//! connection wants input; writes with vectored sends until the queue is empty or the socket is
//! full; carries out socket actions. Only when there is nothing left to do does it sleep, until
//! readiness, a mailbox notification, or the next deadline: no polling ticks.
//!
//! The socket is registered edge-triggered (see [`Registered`]), so the loop keeps its own
//! `readable`/`writable` flags: each is cleared by a `WouldBlock` and set again by the poller.
//! The loop never sleeps while a flag says "ready" for something the connection wants, which is
//! what makes edge triggering safe, and it never waits on a readiness it does not want: while
//! the protocol has paused reading, unread bytes stay in the kernel and TCP flow control pushes
//! back on the peer.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};
use std::net::{Shutdown, TcpStream};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use loomwork::stream::{Action, Connection, Protocol};
use loomwork::{MonotonicClock, Reason};
use polling::{Events, Poller};
use socket2::SockRef;

use crate::mailbox::{Delivery, ThreadMailbox};
use crate::registration::Registered;

/// Bytes asked for per read (Twisted DF-9: one `recv(65536)` per readable event).
pub(crate) const READ_SIZE: usize = 64 * 1024;
/// Reads per turn before the loop looks at its mailbox and deadlines again.
const READS_PER_TURN: usize = 4;
/// Write-queue chunks handed to one vectored send.
const MAX_IOSLICES: usize = 64;
/// Mailbox deliveries handled per turn.
const DELIVERIES_PER_TURN: usize = 64;

/// `MSG_NOSIGNAL` where it exists: a write to a reset peer must be an `EPIPE` error for this
/// connection, never a `SIGPIPE` for the whole process (Rust ignores SIGPIPE in binaries it
/// builds, but not when embedded in a C program).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: libc::c_int = 0;

/// Runs `conn` over `stream` until the connection is over; returns why it ended.
///
/// The caller has given the connection its handle (backed by `mailbox`, which wakes `poller`).
/// Errors while setting the socket up end the connection before `connection_made`, with no
/// protocol callback, and are returned as the reason.
pub(crate) fn run<P: Protocol>(
    conn: &mut Connection<P>,
    stream: TcpStream,
    poller: &Arc<Poller>,
    mailbox: &ThreadMailbox<P::Message>,
    clock: &MonotonicClock,
) -> Reason {
    let socket = match prepare(stream, poller) {
        Ok(socket) => socket,
        Err(err) => return Reason::from(&err),
    };
    let (local, peer) = match (socket.socket().local_addr(), socket.socket().peer_addr()) {
        (Ok(local), Ok(peer)) => (local, peer),
        (Err(err), _) | (_, Err(err)) => return Reason::from(&err),
    };
    conn.handle_connected(clock.now(), local, peer);
    Driver {
        conn,
        socket,
        mailbox,
        clock,
        read_buf: vec![0; READ_SIZE],
        batch: VecDeque::new(),
        readable: true,
        writable: true,
    }
    .run()
}

fn prepare(stream: TcpStream, poller: &Arc<Poller>) -> io::Result<Registered<TcpStream>> {
    stream.set_nonblocking(true)?;
    stream.set_nodelay(true)?;
    Registered::new_edge(Arc::clone(poller), stream)
}

struct Driver<'a, P: Protocol> {
    conn: &'a mut Connection<P>,
    socket: Registered<TcpStream>,
    mailbox: &'a ThreadMailbox<P::Message>,
    clock: &'a MonotonicClock,
    read_buf: Vec<u8>,
    batch: VecDeque<Delivery<P::Message>>,
    /// False after a read hit `WouldBlock`, until the poller reports readability.
    readable: bool,
    /// False after a write hit `WouldBlock` or was short, until the poller reports writability.
    writable: bool,
}

/// What one turn of the loop left behind.
enum Turn {
    /// The connection is over.
    Ended,
    /// Work is left that needs no waiting (mailbox backlog, unread input).
    Busy,
    /// Nothing to do until readiness, a message or a deadline.
    Idle,
}

impl<P: Protocol> Driver<'_, P> {
    fn run(mut self) -> Reason {
        let mut events = Events::with_capacity(NonZeroUsize::MIN);
        loop {
            let turn = self.turn();
            // Handles read the counters from here (`Handle::stats`).
            self.mailbox.publish(self.conn.stats());
            match turn {
                Turn::Ended => break,
                Turn::Busy => continue,
                Turn::Idle => {}
            }
            if let Err(err) = self.wait(&mut events) {
                self.conn.handle_error(self.clock.now(), Reason::from(&err));
                if self.carry_out_actions() {
                    break;
                }
            }
        }
        self.conn.reason().cloned().unwrap_or(Reason::Lost)
    }

    /// One round of work, without sleeping.
    fn turn(&mut self) -> Turn {
        let now = self.clock.now();
        let backlog = self.deliver_mail();
        if self.conn.next_timeout().is_some_and(|at| at <= now) {
            self.conn.handle_timeout(now);
        }
        self.read();
        self.write();
        if self.carry_out_actions() || self.conn.is_closed() {
            return Turn::Ended;
        }
        // Judged only now: a write that drained the queue may have resumed reading, with bytes
        // already waiting in the kernel. Edge triggering will not report those again, so
        // sleeping here would be a lost wake-up.
        if backlog || self.ready_for_more() {
            Turn::Busy
        } else {
            Turn::Idle
        }
    }

    /// True when the connection wants something the socket is (as far as we know) ready for.
    fn ready_for_more(&self) -> bool {
        (self.readable && self.conn.wants_read()) || (self.writable && self.conn.wants_write())
    }

    /// Hands a capped batch of mailbox deliveries to the connection; true if more are waiting.
    fn deliver_mail(&mut self) -> bool {
        let more = self
            .mailbox
            .take_batch(&mut self.batch, DELIVERIES_PER_TURN);
        while let Some(delivery) = self.batch.pop_front() {
            let now = self.clock.now();
            match delivery {
                Delivery::Message(message) => self.conn.handle_message(now, message),
                Delivery::Control(control) => self.conn.handle_control(now, control),
            }
        }
        more
    }

    /// Reads while the connection wants input, at most [`READS_PER_TURN`] times.
    fn read(&mut self) {
        for _ in 0..READS_PER_TURN {
            if !(self.readable && self.conn.wants_read()) {
                return;
            }
            match self.socket.socket().read(&mut self.read_buf) {
                Ok(0) => self.conn.handle_read_closed(self.clock.now()),
                Ok(n) => {
                    // Reading goes on until `WouldBlock` even after a short read: a FIN that
                    // arrived with the data raised no edge of its own, and must still be read.
                    let data = self.read_buf.get(..n).unwrap_or_default();
                    self.conn.handle_data(self.clock.now(), data);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => self.conn.handle_error(self.clock.now(), Reason::from(&err)),
            }
        }
    }

    /// Writes until the queue is empty or the socket is full.
    fn write(&mut self) {
        while self.writable && self.conn.wants_write() {
            let mut slices = [IoSlice::new(&[]); MAX_IOSLICES];
            let mut count = 0;
            for (slot, chunk) in slices.iter_mut().zip(self.conn.write_chunks()) {
                *slot = IoSlice::new(chunk);
                count += 1;
            }
            let slices = slices.get(..count).unwrap_or_default();
            let offered: usize = slices.iter().map(|slice| slice.len()).sum();
            match SockRef::from(self.socket.socket()).send_vectored_with_flags(slices, SEND_FLAGS) {
                Ok(n) => {
                    // A short write filled the send buffer (and armed the kernel's write-space
                    // wake-up), so the next edge will say when there is room again.
                    self.writable = n == offered;
                    self.conn.handle_written(self.clock.now(), n);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.writable = false,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => self.conn.handle_error(self.clock.now(), Reason::from(&err)),
            }
        }
    }

    /// Carries out the connection's socket actions; true once the socket is closed.
    fn carry_out_actions(&mut self) -> bool {
        while let Some(action) = self.conn.poll_action() {
            match action {
                Action::ShutdownWrite => {
                    if let Err(err) = self.socket.socket().shutdown(Shutdown::Write) {
                        self.conn.handle_error(self.clock.now(), Reason::from(&err));
                    }
                }
                // Dropping the socket (when `run` returns) closes it.
                Action::Close => return true,
                Action::Abort => {
                    // SO_LINGER 0: close() sends RST and discards unsent data (Twisted TR-4).
                    let _ = SockRef::from(self.socket.socket()).set_linger(Some(Duration::ZERO));
                    return true;
                }
            }
        }
        false
    }

    /// Sleeps until readiness, a mailbox notification or the next deadline.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let want_read = self.conn.wants_read();
        let want_write = self.conn.wants_write();
        self.socket.arm(want_read, want_write)?;
        let deadline = self.conn.next_timeout();
        // The clock is compared with the deadline right before sleeping: one that has already
        // passed is handled on the next turn instead of costing a system call.
        if deadline.is_some_and(|at| at <= self.clock.now()) {
            return Ok(());
        }
        events.clear();
        let poller = Arc::clone(self.socket.poller());
        match deadline {
            Some(at) => poller.wait_deadline(events, self.clock.to_std(at))?,
            None => poller.wait(events, None)?,
        };
        for event in events.iter() {
            self.socket.fired();
            self.readable |= event.readable;
            self.writable |= event.writable;
        }
        Ok(())
    }
}
