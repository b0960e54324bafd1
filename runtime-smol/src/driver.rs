//! One connection's task: moves bytes, time and messages between a socket and a
//! [`Connection`]. No protocol logic lives here (docs/architecture.md, "Adapters").

use std::future::Future;
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_io::{Async, Timer};
use futures_lite::future;
use loomwork::stream::{Action, Connection, Protocol};
use loomwork::{Instant, MonotonicClock, Reason};
use loomwork_net::reason_from_io;
use loomwork_net::tcp::{self, ReadOutcome, WriteOutcome};

use crate::companion::Companions;
use crate::mailbox::{Envelope, Inbox};
use crate::readiness::PendingWaits;

/// Rounds of work (one read, one write, a batch of messages) done before yielding to the
/// executor, so one busy peer cannot starve the others: 16 full reads is 1 MiB.
const ROUNDS_PER_WAKE: u32 = 16;

/// Messages taken from the inbox per round; the rest wait for the next round.
const MESSAGES_PER_ROUND: usize = 32;

/// What woke a waiting connection.
enum Wake<M> {
    Readable,
    Writable,
    Envelope(Envelope<M>),
    Timer,
    /// A companion finished.
    Companion,
    Failed(std::io::Error),
}

/// How a connection ended, as [`drive`] reports it.
pub(crate) struct Ended {
    /// What `connection_lost` received.
    pub(crate) reason: Reason,
}

/// Runs an established connection (its `handle_connected` already called) until it is over,
/// and reports how it ended; the caller then closes the socket as [`Ended`] says, and runs
/// what is left in `companions` to its end.
///
/// Companions attached through the connection's handle are offered a turn on every round and
/// on every wake-up of the task; each takes it only if something woke it since its last one.
///
/// Everything is borrowed: the caller keeps the connection's state in one heap allocation, so
/// this future holds a few pointers instead of a second copy of the state (futures keep their
/// arguments and the locals made from them side by side).
pub(crate) async fn drive<P: Protocol>(
    stream: &Async<TcpStream>,
    conn: &mut Connection<P>,
    inbox: &Inbox<P::Message>,
    companions: &mut Companions,
    clock: MonotonicClock,
) -> Ended {
    // Boxed, and only while there is a deadline: most connections have none, and every idle
    // connection's task would otherwise carry the timer's 56 bytes (as loomwork-tokio does
    // with its `Sleep`).
    let mut timer: Option<Box<Timer>> = None;
    let mut armed: Option<Instant> = None;
    // Whether the last attempt showed the kernel buffer empty (read) or full (write): then we
    // wait for readiness instead of paying for a syscall that would only say EAGAIN. A short
    // read does not count as empty: async-io registers sockets one-shot, so each wait costs a
    // re-arming `epoll_ctl` and a trip through the reactor, dearer than a read that finds
    // nothing, and under load data has often arrived while the last chunk was handled (relay
    // throughput over 32 streams: 0.90x-0.91x -> 0.95x-0.98x of tokio's copy in three A/B runs).
    let mut read_blocked = false;
    let mut write_blocked = false;
    // The readiness waits in progress, kept across wake-ups for other reasons (a message from
    // a relay's other leg, a timer): see `crate::readiness`.
    let mut pending = PendingWaits::new(stream);
    let mut rounds = 0;
    loop {
        companions.turn().await;
        let now = clock.now();
        deliver_inbox(inbox, conn, companions, now);
        if conn.next_timeout().is_some_and(|deadline| deadline <= now) {
            conn.handle_timeout(now);
        }
        if conn.wants_read() && !read_blocked {
            // Straight into the connection's buffer, with storage from the thread's pool: no
            // copy, and the storage goes back to the pool below when the connection waits.
            read_blocked = match tcp::read_pooled(stream.get_ref(), conn, now) {
                ReadOutcome::Data { .. } => false,
                ReadOutcome::WouldBlock => true,
                ReadOutcome::Eof | ReadOutcome::Failed => false,
            };
        }
        if conn.wants_write() && !write_blocked {
            write_blocked = match tcp::send_queued(stream.get_ref(), conn, now) {
                WriteOutcome::Wrote { full } => full,
                WriteOutcome::WouldBlock => true,
                WriteOutcome::Failed => false,
            };
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
                future::yield_now().await;
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

        // Re-arming a timer costs a trip to the reactor's timer table: only when it changed.
        if deadline != armed {
            match deadline {
                Some(at) => match timer.as_mut() {
                    Some(timer) => timer.set_at(clock.to_std(at)),
                    None => timer = Some(Box::new(Timer::at(clock.to_std(at)))),
                },
                None => timer = None,
            }
            armed = deadline;
        }
        let wake = Wait {
            pending: &mut pending,
            inbox,
            timer: &mut timer,
            companions,
            read: conn.wants_read(),
            write: conn.wants_write(),
        }
        .await;
        match wake {
            Wake::Readable => read_blocked = false,
            Wake::Writable => write_blocked = false,
            Wake::Envelope(envelope) => deliver(conn, companions, clock.now(), envelope),
            Wake::Companion => {}
            // A fired timer is spent: forget it so the same deadline would be set again.
            Wake::Timer => armed = None,
            Wake::Failed(err) => conn.handle_error(clock.now(), reason_from_io(&err)),
        }
    }
}

/// Sleeps until the socket is ready for what the connection wants, a message arrives, the
/// timer fires or a companion finishes, whichever comes first (companions progress meanwhile).
/// A readiness wait that did not end stays in `pending` for the next wait.
///
/// A hand-written future, not a chain of `or`ed async blocks: every idle connection's task
/// holds one, and the chain kept a state and the captured references of each of its five
/// branches (232 bytes; this is 40).
struct Wait<'w, 'a, M> {
    pending: &'w mut PendingWaits<'a, TcpStream>,
    inbox: &'w Inbox<M>,
    timer: &'w mut Option<Box<Timer>>,
    companions: &'w mut Companions,
    read: bool,
    write: bool,
}

impl<M> Future for Wait<'_, '_, M> {
    type Output = Wake<M>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Wake<M>> {
        let Wait {
            pending,
            inbox,
            timer,
            companions,
            read,
            write,
        } = self.get_mut();
        // Polled in this order, each only while the ones before it are pending.
        if *read {
            if let Poll::Ready(ready) = pending.poll_readable(cx) {
                return Poll::Ready(ready.map_or_else(Wake::Failed, |()| Wake::Readable));
            }
        }
        if *write {
            if let Poll::Ready(ready) = pending.poll_writable(cx) {
                return Poll::Ready(ready.map_or_else(Wake::Failed, |()| Wake::Writable));
            }
        }
        if let Poll::Ready(envelope) = inbox.poll_recv(cx) {
            return Poll::Ready(Wake::Envelope(envelope));
        }
        if let Some(timer) = timer {
            // A fired `Timer` stays pending until it is set again.
            if Pin::new(&mut **timer).poll(cx).is_ready() {
                return Poll::Ready(Wake::Timer);
            }
        }
        if !companions.is_empty() && companions.poll_all(cx) {
            return Poll::Ready(Wake::Companion);
        }
        Poll::Pending
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_a_few_pointers() {
        let size = std::mem::size_of::<Wait<'_, '_, ()>>();
        assert!(size <= 40, "a Wait is {size} bytes");
    }
}
