//! The per-connection loop: moves bytes, time and mailbox traffic between one socket and one
//! [`Connection`].
//!
//! One thread runs this loop for one connection over a non-blocking socket. Each turn it: reads
//! the clock; takes a capped batch from the mailbox; handles an expired deadline at once; reads
//! once (up to [`READ_SIZE`](loomwork_net::tcp::READ_SIZE) bytes, straight into the connection's receive buffer) if the
//! connection wants input; writes with vectored sends (loomwork-net's, never raising
//! `SIGPIPE`) until the queue is empty or the socket is
//! full; carries out socket actions. Only when there is nothing left to do does it sleep (see [`crate::wait`]), until
//! readiness, a mailbox notification, or the next deadline: no polling ticks.
//!
//! The loop keeps its own `readable`/`writable` flags: each is cleared by a short read or write
//! (or a `WouldBlock`) and set again by the level-triggered `poll`, so an idle socket costs one
//! `poll` instead of a read that fails with `WouldBlock` plus a wait. It never waits on a
//! readiness it does not want: while the protocol has paused reading, unread bytes stay in the
//! kernel and TCP flow control pushes back on the peer. A reset is still noticed at once, since
//! `poll` reports errors whatever the interest.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};

use loomwork::stream::{Action, Connection, Protocol};
use loomwork::{MonotonicClock, Reason};
use loomwork_net::reason_from_io;
use loomwork_net::tcp::{self, ReadOutcome, WriteOutcome};

use crate::mailbox::{Delivery, ThreadMailbox};
use crate::wait::{self, Wakeup, Watch};

/// Mailbox deliveries handled per turn.
const DELIVERIES_PER_TURN: usize = 64;

/// Runs `conn` over `stream` until the connection is over; returns why it ended.
///
/// The caller has given the connection its handle (backed by `mailbox`, which notifies
/// `wakeup`).
/// Errors while setting the socket up end the connection before `connection_made`, with no
/// protocol callback, and are returned as the reason.
pub(crate) fn run<P: Protocol>(
    conn: &mut Connection<P>,
    socket: TcpStream,
    (local, peer): (Option<SocketAddr>, SocketAddr),
    wakeup: &Wakeup,
    mailbox: &ThreadMailbox<P::Message>,
    clock: &MonotonicClock,
) -> Reason {
    // An accepted socket comes prepared, with its local address (`listen::accept`); a
    // dialed one is prepared here. The peer comes from accept(2) or the dial, not from
    // getpeername(2), which fails with ENOTCONN once the peer has reset: such a connection
    // still starts, delivers what the peer sent, then ends with the reset, as on
    // loomwork-smol.
    let local = match local {
        Some(local) => local,
        None => match tcp::prepare(&socket).and_then(|()| socket.local_addr()) {
            Ok(local) => local,
            Err(err) => return reason_from_io(&err),
        },
    };
    conn.handle_connected(clock.now(), local, peer);
    Driver {
        conn,
        socket,
        wakeup,
        mailbox,
        clock,
        batch: VecDeque::new(),
        readable: true,
        writable: true,
        hung_up: false,
    }
    .run()
}

struct Driver<'a, P: Protocol> {
    conn: &'a mut Connection<P>,
    socket: TcpStream,
    wakeup: &'a Wakeup,
    mailbox: &'a ThreadMailbox<P::Message>,
    clock: &'a MonotonicClock,
    batch: VecDeque<Delivery<P::Message>>,
    /// False after a read came back short or hit `WouldBlock`, until `poll` reports
    /// readability.
    readable: bool,
    /// False after a write was short or hit `WouldBlock`, until `poll` reports writability.
    writable: bool,
    /// Both directions of the socket are shut: `poll` would report that on every call, so the
    /// socket is left out of sleeps that want neither direction.
    hung_up: bool,
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
        loop {
            let turn = self.turn();
            // Handles read the counters from here (`Handle::stats`).
            self.mailbox.publish(self.conn.stats());
            match turn {
                Turn::Ended => break,
                Turn::Busy => continue,
                Turn::Idle => {}
            }
            if let Err(err) = self.wait() {
                self.conn
                    .handle_error(self.clock.now(), reason_from_io(&err));
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
        // Judged only now: a write that drained the queue may have resumed reading.
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

    /// Reads once, if the connection wants input, straight into its receive buffer (the
    /// strategy this runtime's benchmark chose: no copy, and a thread per connection anyway).
    ///
    /// One read per turn, then the writes, as a plain blocking echo loop does: what a read
    /// produced leaves before more is read, and the mailbox and deadlines are looked at between
    /// reads. (Up to four reads per turn measured the same, within this machine's noise.)
    fn read(&mut self) {
        if !(self.readable && self.conn.wants_read()) {
            return;
        }
        match tcp::read_into_buffer(&self.socket, self.conn, self.clock.now()) {
            // A short read emptied the kernel's buffer. Anything that arrived since, an end of
            // stream included, makes the next `poll` return at once.
            ReadOutcome::Data { drained } => self.readable = !drained,
            ReadOutcome::WouldBlock => self.readable = false,
            ReadOutcome::Eof | ReadOutcome::Failed => {}
        }
    }

    /// Writes until the queue is empty or the socket is full.
    fn write(&mut self) {
        while self.writable && self.conn.wants_write() {
            match tcp::send_queued(&self.socket, self.conn, self.clock.now()) {
                // A short write filled the send buffer: wait for `poll` to report room.
                WriteOutcome::Wrote { full } => self.writable = !full,
                WriteOutcome::WouldBlock => self.writable = false,
                WriteOutcome::Failed => return,
            }
        }
    }

    /// Carries out the connection's socket actions; true once the socket is closed.
    fn carry_out_actions(&mut self) -> bool {
        while let Some(action) = self.conn.poll_action() {
            match action {
                Action::ShutdownWrite => {
                    if let Err(err) = tcp::shutdown_write(&self.socket) {
                        self.conn
                            .handle_error(self.clock.now(), reason_from_io(&err));
                    }
                }
                // Dropping the socket (when `run` returns) closes it.
                Action::Close => return true,
                Action::Abort => {
                    // close() then sends RST and discards unsent data (Twisted TR-4).
                    tcp::arm_reset(&self.socket);
                    return true;
                }
            }
        }
        false
    }

    /// Sleeps until readiness, a mailbox notification or the next deadline.
    fn wait(&mut self) -> io::Result<()> {
        let want_read = self.conn.wants_read();
        let want_write = self.conn.wants_write();
        let deadline = self.conn.next_timeout();
        // The clock is compared with the deadline right before sleeping: one that has already
        // passed is handled on the next turn instead of costing a system call.
        let timeout = match deadline {
            Some(at) if at <= self.clock.now() => return Ok(()),
            Some(at) => Some(self.clock.until(at)),
            None => None,
        };
        let watched = !self.hung_up || want_read || want_write;
        let socket = watched.then(|| Watch::new(&self.socket, want_read, want_write));
        let ready = wait::sleep(self.wakeup, socket, timeout)?;
        self.readable |= ready.readable;
        self.writable |= ready.writable;
        if !want_read && !want_write {
            // Nobody is going to read or write and trip over these, so act on them here: a
            // reset ends a paused connection now rather than when it resumes.
            if ready.error {
                if let Some(err) = self.socket.take_error()? {
                    self.conn
                        .handle_error(self.clock.now(), reason_from_io(&err));
                }
            }
            self.hung_up |= ready.hangup;
        }
        Ok(())
    }
}
