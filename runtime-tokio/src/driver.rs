//! One connection's task: moves bytes, time and messages between a socket and a
//! [`Connection`]. No protocol logic lives here (docs/architecture.md, "Adapters").
//!
//! The same loop as loomwork-smol's: one task races the socket's readiness, its mailbox and
//! one timer for the connection's next deadline. What differs is the reactor: tokio registers
//! the socket once, edge-triggered, and remembers its readiness, so waiting costs no re-arming
//! system call. The socket operations themselves are loomwork-net's, run inside
//! [`AsyncFd::try_io`] so that tokio forgets a readiness exactly when a read found the socket
//! drained or a send found it full (the readiness tick is taken before the system call, so an
//! edge that arrives meanwhile is never lost).

use std::future::Future;
use std::io;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::Poll;

use futures_lite::future;
use loomwork::stream::{Action, Connection, Protocol};
use loomwork::{Instant, MonotonicClock, Reason};
use loomwork_net::reason_from_io;
use loomwork_net::tcp::{self, ReadOutcome, WriteOutcome};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Sleep;

use crate::companion::Companions;
use crate::mailbox::{Envelope, Inbox};

/// Rounds of work (one read, one write, a batch of messages) done before yielding to the
/// scheduler, so one busy peer cannot starve the others: 16 full reads is 1 MiB.
const ROUNDS_PER_WAKE: u32 = 16;

/// Messages taken from the inbox per round; the rest wait for the next round.
const MESSAGES_PER_ROUND: usize = 32;

/// What woke a waiting connection.
enum Wake<M> {
    Ready {
        read: bool,
        write: bool,
    },
    Envelope(Envelope<M>),
    Timer,
    /// A companion finished.
    Companion,
    Failed(io::Error),
}

/// How a connection ended, as [`drive`] reports it.
pub(crate) struct Ended {
    /// What `connection_lost` received.
    pub(crate) reason: Reason,
}

/// Runs an established connection (its `handle_connected` already called) until it is over,
/// and reports how it ended; the caller then closes the socket.
///
/// Everything is borrowed: the caller keeps the connection's state in one heap allocation, so
/// this future holds a few pointers instead of a second copy of the state. The timer is
/// allocated the first time the connection has a deadline: a connection that never sets one
/// (an echo) holds none.
pub(crate) async fn drive<P: Protocol>(
    stream: &AsyncFd<TcpStream>,
    conn: &mut Connection<P>,
    inbox: &Inbox<P::Message>,
    companions: &mut Companions,
    clock: MonotonicClock,
) -> Ended {
    let mut timer: Option<Pin<Box<Sleep>>> = None;
    let mut armed: Option<Instant> = None;
    // Whether the last attempt showed the kernel buffer empty (read) or full (write): then we
    // wait for readiness instead of paying for a syscall that would only say EAGAIN.
    let mut read_blocked = false;
    let mut write_blocked = false;
    let mut rounds = 0;
    loop {
        companions.turn().await;
        let now = clock.now();
        deliver_inbox(inbox, conn, companions, now);
        if conn.next_timeout().is_some_and(|deadline| deadline <= now) {
            conn.handle_timeout(now);
        }
        if conn.wants_read() && !read_blocked {
            read_blocked = read(stream, conn, now);
        }
        if conn.wants_write() && !write_blocked {
            write_blocked = write(stream, conn, now);
        }
        while let Some(action) = conn.poll_action() {
            match action {
                Action::ShutdownWrite => {
                    if let Err(err) = tcp::shutdown_write(stream.get_ref()) {
                        conn.handle_error(now, reason_from_io(&err));
                    }
                }
                Action::Close => return finished(conn, inbox),
                Action::Abort => {
                    tcp::arm_reset(stream.get_ref());
                    return finished(conn, inbox);
                }
            }
        }
        if conn.is_closed() {
            return finished(conn, inbox);
        }

        let deadline = conn.next_timeout();
        let busy = (conn.wants_read() && !read_blocked)
            || (conn.wants_write() && !write_blocked)
            || !inbox.is_empty()
            || deadline.is_some_and(|deadline| deadline <= clock.now());
        if busy {
            rounds += 1;
            if rounds >= ROUNDS_PER_WAKE {
                rounds = 0;
                inbox.publish(conn.stats());
                tokio::task::yield_now().await;
            }
            continue;
        }
        rounds = 0;
        // Handles read the counters from here (`Handle::stats`): copied before each sleep or
        // yield, not on every round (a lock and a compare each time, for readers that only
        // ever see the latest copy anyway).
        inbox.publish(conn.stats());
        // Waiting connections hold no read buffer: thousands of idle ones then cost little.
        tcp::release_buffer(conn);

        // Re-arming the timer costs a trip to the timer wheel: only when the deadline changed.
        if deadline != armed {
            if let Some(at) = deadline {
                let at = tokio::time::Instant::from_std(clock.to_std(at));
                match &mut timer {
                    Some(sleep) => sleep.as_mut().reset(at),
                    None => timer = Some(Box::pin(tokio::time::sleep_until(at))),
                }
            }
            armed = deadline;
        }
        let sleep = match (&mut timer, armed) {
            (Some(sleep), Some(_)) => Some(sleep.as_mut()),
            _ => None,
        };
        let wake = wait(
            stream,
            inbox,
            sleep,
            companions,
            (
                conn.wants_read() && read_blocked,
                conn.wants_write() && write_blocked,
            ),
        )
        .await;
        match wake {
            Wake::Ready { read, write } => {
                read_blocked &= !read;
                write_blocked &= !write;
            }
            Wake::Envelope(envelope) => deliver(conn, companions, clock.now(), envelope),
            Wake::Companion => {}
            // A fired timer is spent: forget it so the same deadline would be set again.
            Wake::Timer => armed = None,
            Wake::Failed(err) => conn.handle_error(clock.now(), reason_from_io(&err)),
        }
    }
}

/// Reads once through loomwork-net; true when the socket is drained (wait for readiness).
fn read<P: Protocol>(stream: &AsyncFd<TcpStream>, conn: &mut Connection<P>, now: Instant) -> bool {
    // `try_io` skips the call when tokio already knows the socket is drained; otherwise it
    // forgets the readiness when the read reports it drained.
    let mut outcome = ReadOutcome::WouldBlock;
    let _ = stream.try_io(Interest::READABLE, |socket| {
        // Straight into the connection's buffer, with storage from the thread's pool, as
        // loomwork-smol does: no copy, and the storage goes back to the pool when the
        // connection waits.
        outcome = tcp::read_pooled(socket, conn, now);
        match outcome {
            ReadOutcome::Data { drained: true } | ReadOutcome::WouldBlock => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            _ => Ok(()),
        }
    });
    match outcome {
        ReadOutcome::Data { drained } => drained,
        ReadOutcome::WouldBlock => true,
        ReadOutcome::Eof | ReadOutcome::Failed => false,
    }
}

/// Sends once through loomwork-net; true when the socket is full (wait for writability).
fn write<P: Protocol>(stream: &AsyncFd<TcpStream>, conn: &mut Connection<P>, now: Instant) -> bool {
    let mut outcome = WriteOutcome::WouldBlock;
    let _ = stream.try_io(Interest::WRITABLE, |socket| {
        outcome = tcp::send_queued(socket, conn, now);
        match outcome {
            WriteOutcome::Wrote { full: true } | WriteOutcome::WouldBlock => {
                Err(io::ErrorKind::WouldBlock.into())
            }
            _ => Ok(()),
        }
    });
    match outcome {
        WriteOutcome::Wrote { full } => full,
        WriteOutcome::WouldBlock => true,
        WriteOutcome::Failed => false,
    }
}

/// Sleeps until the socket is ready for what the connection waits for, a message arrives or
/// the timer fires, whichever comes first.
///
/// Written as one `poll_fn` over tokio's poll-based readiness (the reader and writer slots a
/// socket has for the one task that owns it, as tokio's own `TcpStream` uses them): the
/// waiting future holds no per-source futures, which keeps the task, and so every idle
/// connection, small.
async fn wait<M>(
    stream: &AsyncFd<TcpStream>,
    inbox: &Inbox<M>,
    mut timer: Option<Pin<&mut Sleep>>,
    companions: &mut Companions,
    (read, write): (bool, bool),
) -> Wake<M> {
    future::poll_fn(|cx| {
        if read {
            match stream.poll_read_ready(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    // The readiness stays: the next read consumes it.
                    guard.retain_ready();
                    return Poll::Ready(Wake::Ready {
                        read: true,
                        write: false,
                    });
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Wake::Failed(err)),
                Poll::Pending => {}
            }
        }
        if write {
            match stream.poll_write_ready(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    guard.retain_ready();
                    return Poll::Ready(Wake::Ready {
                        read: false,
                        write: true,
                    });
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Wake::Failed(err)),
                Poll::Pending => {}
            }
        }
        if let Poll::Ready(envelope) = inbox.poll_recv(cx) {
            return Poll::Ready(Wake::Envelope(envelope));
        }
        if let Some(sleep) = timer.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
        }
        // A companion's wake-up wakes this task too, and lands here (only the companions that
        // were woken are polled).
        if !companions.is_empty() && companions.poll_all(cx) {
            return Poll::Ready(Wake::Companion);
        }
        Poll::Pending
    })
    .await
}

/// Hands queued messages and controls to the connection, a bounded batch at a time.
fn deliver_inbox<P: Protocol>(
    inbox: &Inbox<P::Message>,
    conn: &mut Connection<P>,
    companions: &mut Companions,
    now: Instant,
) {
    for _ in 0..MESSAGES_PER_ROUND {
        match inbox.try_recv() {
            Some(envelope) => deliver(conn, companions, now, envelope),
            None => return,
        }
    }
}

fn deliver<P: Protocol>(
    conn: &mut Connection<P>,
    companions: &mut Companions,
    now: Instant,
    envelope: Envelope<P::Message>,
) {
    match envelope {
        Envelope::Message(message) => conn.handle_message(now, message),
        Envelope::Control(control) => conn.handle_control(now, control),
        Envelope::Companion(companion) => companions.push(companion.into_future()),
    }
}

/// How a finished connection ended (its reason is always set once `connection_lost` ran),
/// after publishing its final counters.
fn finished<P: Protocol>(conn: &Connection<P>, inbox: &Inbox<P::Message>) -> Ended {
    inbox.publish(conn.stats());
    Ended {
        reason: conn.reason().cloned().unwrap_or(Reason::Lost),
    }
}
