//! One call that moves a [`Connection`]'s bytes over a non-blocking socket: for loops of your
//! own (a `poll`/`epoll`/`kqueue` loop, a game loop, an embedded reactor).
//!
//! A user's loop waits for whatever the last [`drive`] asked for (readability, writability, a
//! deadline), then calls [`drive`] again; everything between (reads, vectored writes, the
//! socket actions, resetting on abort, firing due timers) happens here, with the same socket
//! calls the runtimes make.

use std::net::TcpStream;

use loomwork::stream::{Action, Connection, Protocol};
use loomwork::Instant;

use crate::tcp::{self, ReadOutcome, WriteOutcome};

/// Most reads one [`drive`] makes, so a peer that sends without pause cannot starve the other
/// connections of a single-threaded loop.
const MAX_READS_PER_DRIVE: usize = 16;

/// What the loop should wait for before driving the connection again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for any of these, then call [`drive`] again.
    Wait {
        /// The socket becoming readable.
        read: bool,
        /// The socket becoming writable.
        write: bool,
        /// This time passing.
        deadline: Option<Instant>,
    },
    /// The socket is done (closed, or reset on abort): deregister and drop it. The protocol
    /// has ended; [`Connection::reason`] says why.
    Closed,
}

/// Reads what the socket has (while the connection wants input), fires due timers, writes what
/// is queued, carries out the connection's socket actions (half-close, close, a reset on
/// abort), and says what to wait for next. `stream` must be non-blocking, and should have
/// been set up with [`tcp::prepare`] (no `SIGPIPE` on Apple platforms, no Nagle delay).
///
/// Calling it when nothing is ready is harmless: reads and writes that would block just stop.
pub fn drive<P: Protocol>(stream: &TcpStream, conn: &mut Connection<P>, now: Instant) -> Next {
    for _ in 0..MAX_READS_PER_DRIVE {
        if !conn.wants_read() {
            break;
        }
        match tcp::read_pooled(stream, conn, now) {
            ReadOutcome::Data { drained: false } => continue,
            ReadOutcome::Data { drained: true } | ReadOutcome::WouldBlock => break,
            ReadOutcome::Eof | ReadOutcome::Failed => break,
        }
    }
    if conn.next_timeout().is_some_and(|at| at <= now) {
        conn.handle_timeout(now);
    }
    loop {
        while conn.wants_write() {
            match tcp::send_queued(stream, conn, now) {
                WriteOutcome::Wrote { full: false } => continue,
                WriteOutcome::Wrote { full: true } | WriteOutcome::WouldBlock => break,
                WriteOutcome::Failed => break,
            }
        }
        match conn.poll_action() {
            Some(Action::ShutdownWrite) => {
                if let Err(err) = tcp::shutdown_write(stream) {
                    conn.handle_error(now, crate::reason_from_io(&err));
                }
            }
            Some(Action::Close) => return Next::Closed,
            Some(Action::Abort) => {
                tcp::arm_reset(stream);
                return Next::Closed;
            }
            None => break,
        }
    }
    // The loop waits next: the receive storage goes back to the thread's pool meanwhile.
    tcp::release_buffer(conn);
    Next::Wait {
        read: conn.wants_read(),
        write: conn.wants_write(),
        deadline: conn.next_timeout(),
    }
}
