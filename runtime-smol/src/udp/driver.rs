//! The endpoint task: sleep until the socket is readable (or writable, while a send waits for
//! room), a message or stop request arrives, or the core's deadline passes; then feed the core
//! and carry out its outputs.

use std::future::Future;
use std::net::{SocketAddr, UdpSocket};
use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use async_channel::Receiver;
use async_io::{Async, Timer};
use futures_lite::{future, StreamExt};
use loomwork::datagram::{Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;
use loomwork_net::udp::{flush, has_ready_outputs, receive, Flushed, RecvBuffer, RecvOutcome};

use super::handle::{Mailbox, ABORT, CLOSE};
use crate::readiness::PendingWaits;

/// Datagrams read per turn before messages and timers get theirs (see the std runtime).
const READ_BUDGET: usize = 64;
/// Messages handled per turn.
const MESSAGE_BUDGET: usize = 64;
/// Outputs carried out per turn.
const OUTPUT_BUDGET: usize = 4096;

/// What woke the task.
enum Wake<M> {
    Message(M),
    /// The timer fired: it is spent until set again.
    Timer,
    Other,
}

/// Runs `protocol` on `socket` until the endpoint closes; yields the protocol.
///
/// Each turn: take a stop request, fire what is due, carry out the outputs, take messages and
/// read what is waiting, then sleep on a race of the socket (readable while the endpoint reads,
/// writable while a datagram waits for room in the send buffer), the mailbox, the stop
/// notification and a timer for the endpoint's next deadline. Sends never wait on their own,
/// so an abort and a graceful stop's close deadline always win the race, however slowly the
/// send path drains.
pub(crate) async fn run<P: DatagramProtocol>(
    socket: Async<UdpSocket>,
    local: SocketAddr,
    protocol: P,
    config: Config,
    mailbox: Mailbox<P::Message>,
) -> P {
    let clock = MonotonicClock::new();
    let mut buffer = RecvBuffer::new(config.receive_size);
    let mut endpoint = Endpoint::new(protocol, config);
    // A datagram the endpoint handed out that the full send buffer has not taken yet.
    let mut pending: Option<Transmit> = None;
    endpoint.handle_started(clock.now(), local);
    let mut timer = Timer::never();
    let mut armed = None;
    // Kept from one sleep to the next, as the TCP driver keeps them (see `PendingWaits`).
    let mut waits = PendingWaits::new(&socket);
    // Pinned where they are, so that a sleep can poll them as streams: each keeps its listener
    // between sleeps instead of registering (and allocating) a new one for every sleep.
    let Mailbox {
        messages,
        wake,
        stop,
    } = mailbox;
    let mut messages = pin!(messages);
    let mut wake = pin!(wake);
    'turns: loop {
        match stop.load(Ordering::Acquire) {
            ABORT => endpoint.abort(clock.now()),
            CLOSE => endpoint.close(clock.now()),
            _ => {}
        }
        // Before flushing, so that a close deadline that has passed drops the datagram in
        // hand instead of retrying it.
        endpoint.handle_timeout(clock.now());
        let mut busy = match flush_all(&socket, local, &mut endpoint, &mut pending, &clock) {
            Flushed::Closed => break,
            Flushed::Budget => true,
            Flushed::Idle | Flushed::Blocked => false,
        };

        // Everything that is ready now, without waiting, each source with a budget so none
        // starves the others.
        if endpoint.wants_read() {
            for _ in 0..MESSAGE_BUDGET {
                let Ok(message) = messages.try_recv() else {
                    break;
                };
                busy = true;
                endpoint.handle_message(clock.now(), message);
                if flush_all(&socket, local, &mut endpoint, &mut pending, &clock) == Flushed::Closed
                {
                    break 'turns;
                }
            }
            match read(
                &socket,
                local,
                &mut endpoint,
                &mut buffer,
                &mut pending,
                &clock,
            ) {
                Some(Flushed::Closed) => break,
                Some(_) => busy = true,
                None => {}
            }
        }
        let unfinished = has_ready_outputs(&endpoint, &pending);
        if busy || unfinished {
            // Let other tasks run between turns under load.
            future::yield_now().await;
            continue;
        }

        // Nothing to do without waiting: sleep until something happens. The timer is set
        // again only when the deadline changed (each setting is a trip to the reactor's timer
        // table); a fired one is spent.
        let deadline = endpoint.next_timeout();
        if deadline != armed {
            match deadline {
                Some(at) => timer.set_at(clock.to_std(at)),
                None => timer = Timer::never(),
            }
            armed = deadline;
        }
        let woke = Wait {
            pending: &mut waits,
            messages: messages.as_mut(),
            wake: wake.as_mut(),
            timer: &mut timer,
            reading: endpoint.wants_read(),
            blocked: pending.is_some(),
        }
        .await;
        match woke {
            Wake::Message(message) => endpoint.handle_message(clock.now(), message),
            Wake::Timer => armed = None,
            Wake::Other => {}
        }
    }
    // Posting fails from now on.
    messages.close();
    endpoint.into_protocol()
}

/// Reads what the socket holds, up to the budget, carrying out the outputs after each
/// datagram. `None` when nothing was waiting; otherwise where the last flush stopped.
fn read<P: DatagramProtocol>(
    socket: &Async<UdpSocket>,
    local: SocketAddr,
    endpoint: &mut Endpoint<P>,
    buffer: &mut RecvBuffer,
    pending: &mut Option<Transmit>,
    clock: &MonotonicClock,
) -> Option<Flushed> {
    let mut flushed = None;
    for _ in 0..READ_BUDGET {
        if !endpoint.wants_read() {
            break;
        }
        if receive(buffer, socket.get_ref(), endpoint, clock.now()) == RecvOutcome::Drained {
            break;
        }
        let now = flush_all(socket, local, endpoint, pending, clock);
        flushed = Some(now);
        if now == Flushed::Closed {
            break;
        }
    }
    flushed
}

/// Carries out the endpoint's outputs without waiting (see [`flush`]).
fn flush_all<P: DatagramProtocol>(
    socket: &Async<UdpSocket>,
    local: SocketAddr,
    endpoint: &mut Endpoint<P>,
    pending: &mut Option<Transmit>,
    clock: &MonotonicClock,
) -> Flushed {
    flush(
        socket.get_ref(),
        local,
        endpoint,
        pending,
        clock,
        OUTPUT_BUDGET,
    )
}

/// Sleeps until a stop request, the timer, a message (while the endpoint reads) or the socket
/// (readable while the endpoint reads, writable while a datagram waits for room) comes, polled
/// in that order so that a stop request wins a tie. One hand-written future over the kept
/// readiness waits and the channels' own listeners: nothing is registered again or allocated
/// for a sleep that an earlier one left armed.
struct Wait<'w, 'a, M> {
    pending: &'w mut PendingWaits<'a, UdpSocket>,
    messages: Pin<&'w mut Receiver<M>>,
    wake: Pin<&'w mut Receiver<()>>,
    timer: &'w mut Timer,
    reading: bool,
    blocked: bool,
}

impl<M> Future for Wait<'_, '_, M> {
    type Output = Wake<M>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Wake<M>> {
        let Wait {
            pending,
            messages,
            wake,
            timer,
            reading,
            blocked,
        } = self.get_mut();
        // A closed stop channel (every handle gone) wakes too, as a stop request would: the
        // loop then finds the endpoint's state as it is.
        if wake.as_mut().poll_next(cx).is_ready() {
            return Poll::Ready(Wake::Other);
        }
        if Pin::new(&mut **timer).poll(cx).is_ready() {
            return Poll::Ready(Wake::Timer);
        }
        if *reading {
            // Once closed, the channel has nothing more to give: the rest still wake the task.
            if let Poll::Ready(Some(message)) = messages.as_mut().poll_next(cx) {
                return Poll::Ready(Wake::Message(message));
            }
        }
        // An error here (the socket is gone) shows up again on the next read or send.
        if *reading && pending.poll_readable(cx).is_ready() {
            return Poll::Ready(Wake::Other);
        }
        if *blocked && pending.poll_writable(cx).is_ready() {
            return Poll::Ready(Wake::Other);
        }
        Poll::Pending
    }
}
