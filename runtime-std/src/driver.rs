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
//!
//! The per-connection state lives in a [`Wire`], which the loop borrows: the thread's own
//! connection has one, and so has a companion's connection (a relay's upstream leg, see
//! [`crate::companion`]), which the same loop turns and puts to sleep in the same `poll`.

use std::collections::VecDeque;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use loomwork::stream::{Action, Connection, Protocol};
use loomwork::{Instant, MonotonicClock, Reason};
use loomwork_net::reason_from_io;
use loomwork_net::tcp::{self, ReadOutcome, WriteOutcome};

use crate::companion::{CompanionJob, Companions};
use crate::mailbox::{Delivery, ThreadMailbox};
use crate::wait::{Owner, Readiness, Wakeup, Watch};

/// Mailbox deliveries handled per turn.
const DELIVERIES_PER_TURN: usize = 64;

/// Runs `conn` over `stream` until the connection is over; returns why it ended, and the
/// companions attached to it that have not ended yet (the caller runs them to their end with
/// [`Companions::finish`] once it has let the connection go). The socket is closed on return.
///
/// The caller has given the connection its handle (backed by `mailbox`, which notifies
/// `wakeup`).
/// Errors while setting the socket up end the connection before `connection_made`, with no
/// protocol callback, and are returned as the reason.
pub(crate) fn run<P: Protocol>(
    conn: &mut Connection<P>,
    socket: TcpStream,
    addresses: (Option<SocketAddr>, SocketAddr),
    wakeup: &Arc<Wakeup>,
    mailbox: &ThreadMailbox<P::Message>,
    clock: &MonotonicClock,
) -> (Reason, Companions) {
    let wire = match Wire::start(conn, socket, addresses, clock) {
        Ok(wire) => wire,
        Err(reason) => return (reason, Companions::default()),
    };
    let _owner = Owner::new(wakeup);
    let mut driver = Driver {
        conn,
        wire,
        wakeup,
        mailbox,
        clock,
        companions: Companions::default(),
        jobs: Vec::new(),
    };
    driver.run();
    let reason = driver.conn.reason().cloned().unwrap_or(Reason::Lost);
    (reason, driver.companions)
}

/// One connection's socket and what the loop knows about it: the state a [`Driver`] (or a
/// companion) owns, apart from the [`Connection`] and its mailbox, which it borrows.
pub(crate) struct Wire<P: Protocol> {
    socket: TcpStream,
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

/// The loop of the thread's own connection, and of the companions attached to it.
struct Driver<'a, P: Protocol> {
    conn: &'a mut Connection<P>,
    wire: Wire<P>,
    wakeup: &'a Arc<Wakeup>,
    mailbox: &'a ThreadMailbox<P::Message>,
    clock: &'a MonotonicClock,
    companions: Companions,
    /// Jobs the last turn's mail brought, to start as companions.
    jobs: Vec<CompanionJob>,
}

/// What one turn of the loop left behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// The connection (or companion) is over.
    Ended,
    /// Work is left that needs no waiting (mailbox backlog, unread input).
    Busy,
    /// Nothing to do until readiness, a message or a deadline.
    Idle,
}

impl<P: Protocol> Driver<'_, P> {
    fn run(&mut self) {
        // The connection's byte counters (received plus sent) when the loop last slept.
        let mut moved_at_sleep = 0;
        loop {
            let turn = self
                .wire
                .turn(self.conn, self.mailbox, self.clock, &mut self.jobs);
            for job in self.jobs.drain(..) {
                self.companions.push(job.start(self.wakeup));
            }
            // Handles read the counters from here (`Handle::stats`).
            self.mailbox.publish(self.conn.stats());
            let busy = match turn {
                Turn::Ended => return,
                Turn::Busy => true,
                Turn::Idle => false,
            };
            // Companions get their turn every round, busy or not.
            let companions_busy = self.companions.turn(self.clock);
            if busy || companions_busy {
                continue;
            }
            self.yield_after_traffic(&mut moved_at_sleep);
            if let Err(err) = self.wait() {
                self.conn
                    .handle_error(self.clock.now(), reason_from_io(&err));
                if self.wire.carry_out_actions(self.conn, self.clock) {
                    return;
                }
            }
        }
    }

    /// On a thread that drives companions (a relay's two legs), before sleeping after a turn
    /// that moved bytes, lets the other runnable threads go first (`sched_yield`): the peers of
    /// both legs are often among them, about to send more, and the `poll` after the yield then
    /// finds them ready instead of putting this thread to sleep and waking it again for every
    /// segment. With no other thread runnable the yield returns at once; an idle relay never
    /// yields.
    ///
    /// Measured with `scripts/bench-ab.sh` (3 interleaved passes, 32 relays to an upstream
    /// that writes 8 KiB pieces, 2 cores): relay throughput 0.80x -> 1.04x of tokio's
    /// `copy_bidirectional`, relay request/response 0.80x -> 0.91x. Threads of plain
    /// connections do not yield: for them the same yield helped request/response over 32
    /// connections (0.90x -> 1.02x of a plain std server) but cost pipelined framed echo over
    /// one connection up to a fifth of its frames per second.
    fn yield_after_traffic(&self, moved_at_sleep: &mut u64) {
        if self.companions.is_empty() {
            return;
        }
        let stats = self.conn.stats();
        let moved = stats.bytes_received + stats.bytes_sent;
        if moved != *moved_at_sleep {
            *moved_at_sleep = moved;
            std::thread::yield_now();
        }
    }

    /// Sleeps until readiness (of the socket or a companion's), a mailbox notification or
    /// the next deadline (the connection's or a companion's).
    fn wait(&mut self) -> io::Result<()> {
        let deadline = earliest(self.conn.next_timeout(), self.companions.next_timeout());
        // The clock is compared with the deadline right before sleeping: one that has already
        // passed is handled on the next turn instead of costing a system call.
        let timeout = match deadline {
            Some(at) if at <= self.clock.now() => return Ok(()),
            Some(at) => Some(self.clock.until(at)),
            None => None,
        };
        let watch = self.wire.watch(self.conn);
        let ready = self
            .companions
            .sleep(self.wakeup, watch, timeout, self.clock)?;
        self.wire.take_readiness(self.conn, ready, self.clock)
    }
}

impl<P: Protocol> Wire<P> {
    /// Prepares `socket` (unless it came prepared, with its local address, from
    /// `listen::accept`) and starts `conn` on it (`handle_connected`). Errors end the
    /// connection before `connection_made`, with no protocol callback, and are returned.
    pub(crate) fn start(
        conn: &mut Connection<P>,
        socket: TcpStream,
        (local, peer): (Option<SocketAddr>, SocketAddr),
        clock: &MonotonicClock,
    ) -> Result<Self, Reason> {
        // An accepted socket comes prepared, with its local address (`listen::accept`); a
        // dialed one is prepared here. The peer comes from accept(2) or the dial, not from
        // getpeername(2), which fails with ENOTCONN once the peer has reset: such a connection
        // still starts, delivers what the peer sent, then ends with the reset, as on
        // loomwork-smol.
        let local = match local {
            Some(local) => local,
            None => match tcp::prepare(&socket).and_then(|()| socket.local_addr()) {
                Ok(local) => local,
                Err(err) => return Err(reason_from_io(&err)),
            },
        };
        conn.handle_connected(clock.now(), local, peer);
        Ok(Wire {
            socket,
            batch: VecDeque::new(),
            readable: true,
            writable: true,
            hung_up: false,
        })
    }

    /// One round of work, without sleeping. Companion jobs among the mail go to `jobs` (a
    /// mailbox that takes none never delivers any).
    pub(crate) fn turn(
        &mut self,
        conn: &mut Connection<P>,
        mailbox: &ThreadMailbox<P::Message>,
        clock: &MonotonicClock,
        jobs: &mut Vec<CompanionJob>,
    ) -> Turn {
        let now = clock.now();
        let backlog = self.deliver_mail(conn, mailbox, clock, jobs);
        if conn.next_timeout().is_some_and(|at| at <= now) {
            conn.handle_timeout(now);
        }
        self.read(conn, clock);
        self.write(conn, clock);
        if self.carry_out_actions(conn, clock) || conn.is_closed() {
            return Turn::Ended;
        }
        // Judged only now: a write that drained the queue may have resumed reading.
        if backlog || self.ready_for_more(conn) {
            Turn::Busy
        } else {
            Turn::Idle
        }
    }

    /// True when the connection wants something the socket is (as far as we know) ready for.
    fn ready_for_more(&self, conn: &Connection<P>) -> bool {
        (self.readable && conn.wants_read()) || (self.writable && conn.wants_write())
    }

    /// Hands a capped batch of mailbox deliveries to the connection; true if more are waiting.
    fn deliver_mail(
        &mut self,
        conn: &mut Connection<P>,
        mailbox: &ThreadMailbox<P::Message>,
        clock: &MonotonicClock,
        jobs: &mut Vec<CompanionJob>,
    ) -> bool {
        let more = mailbox.take_batch(&mut self.batch, DELIVERIES_PER_TURN);
        while let Some(delivery) = self.batch.pop_front() {
            let now = clock.now();
            match delivery {
                Delivery::Message(message) => conn.handle_message(now, message),
                Delivery::Control(control) => conn.handle_control(now, control),
                Delivery::Companion(job) => jobs.push(job),
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
    fn read(&mut self, conn: &mut Connection<P>, clock: &MonotonicClock) {
        if !(self.readable && conn.wants_read()) {
            return;
        }
        match tcp::read_into_buffer(&self.socket, conn, clock.now()) {
            // A short read emptied the kernel's buffer. Anything that arrived since, an end of
            // stream included, makes the next `poll` return at once.
            ReadOutcome::Data { drained } => self.readable = !drained,
            ReadOutcome::WouldBlock => self.readable = false,
            ReadOutcome::Eof | ReadOutcome::Failed => {}
        }
    }

    /// Writes until the queue is empty or the socket is full.
    fn write(&mut self, conn: &mut Connection<P>, clock: &MonotonicClock) {
        while self.writable && conn.wants_write() {
            match tcp::send_queued(&self.socket, conn, clock.now()) {
                // A short write filled the send buffer: wait for `poll` to report room.
                WriteOutcome::Wrote { full } => self.writable = !full,
                WriteOutcome::WouldBlock => self.writable = false,
                WriteOutcome::Failed => return,
            }
        }
    }

    /// Carries out the connection's socket actions; true once the socket is to be closed.
    pub(crate) fn carry_out_actions(
        &mut self,
        conn: &mut Connection<P>,
        clock: &MonotonicClock,
    ) -> bool {
        while let Some(action) = conn.poll_action() {
            match action {
                Action::ShutdownWrite => {
                    if let Err(err) = tcp::shutdown_write(&self.socket) {
                        conn.handle_error(clock.now(), reason_from_io(&err));
                    }
                }
                // Dropping the socket (with the `Wire`) closes it.
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

    /// The socket to sleep on and what for; `None` when it would only report a hang-up
    /// already known.
    pub(crate) fn watch(&self, conn: &Connection<P>) -> Option<Watch<'_>> {
        let want_read = conn.wants_read();
        let want_write = conn.wants_write();
        let watched = !self.hung_up || want_read || want_write;
        watched.then(|| Watch::new(&self.socket, want_read, want_write))
    }

    /// Takes what a sleep found for [`watch`](Self::watch)'s socket. An error is the socket's
    /// pending error, for the caller to hand to the connection.
    pub(crate) fn take_readiness(
        &mut self,
        conn: &mut Connection<P>,
        ready: Readiness,
        clock: &MonotonicClock,
    ) -> io::Result<()> {
        self.readable |= ready.readable;
        self.writable |= ready.writable;
        if !conn.wants_read() && !conn.wants_write() {
            // Nobody is going to read or write and trip over these, so act on them here: a
            // reset ends a paused connection now rather than when it resumes.
            if ready.error {
                if let Some(err) = self.socket.take_error()? {
                    conn.handle_error(clock.now(), reason_from_io(&err));
                }
            }
            self.hung_up |= ready.hangup;
        }
        Ok(())
    }
}

/// The earlier of two optional deadlines.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
