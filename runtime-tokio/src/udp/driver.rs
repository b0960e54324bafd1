//! The endpoint task: sleep until the socket is readable (or writable, while a send waits for
//! room), a message or stop request arrives, or the core's deadline passes; then feed the core
//! and carry out its outputs.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;

use futures_lite::future;
use loomwork::datagram::{Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;
use loomwork_net::udp::{flush, has_ready_outputs, receive, Flushed, RecvBuffer, RecvOutcome};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::io::{Interest, Ready};

use super::handle::{Mailbox, ABORT, CLOSE};

/// Datagrams read per turn before messages and timers get theirs (see the std runtime).
const READ_BUDGET: usize = 64;
/// Messages handled per turn.
const MESSAGE_BUDGET: usize = 64;
/// Outputs carried out per turn.
const OUTPUT_BUDGET: usize = 4096;

/// What woke the task.
enum Wake<'a, M> {
    Message(M),
    /// The socket is ready; its guard says for what.
    Socket(AsyncFdReadyGuard<'a, UdpSocket>),
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
    socket: AsyncFd<UdpSocket>,
    local: SocketAddr,
    protocol: P,
    config: Config,
    mut mailbox: Mailbox<P::Message>,
) -> P {
    let clock = MonotonicClock::new();
    let mut buffer = RecvBuffer::new(config.receive_size);
    let mut endpoint = Endpoint::new(protocol, config);
    // A datagram the endpoint handed out that the full send buffer has not taken yet.
    let mut pending: Option<Transmit> = None;
    endpoint.handle_started(clock.now(), local);
    'turns: loop {
        match mailbox.stop.load(Ordering::Acquire) {
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
                let Ok(message) = mailbox.messages.try_recv() else {
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
            tokio::task::yield_now().await;
            continue;
        }

        // Nothing to do without waiting: sleep until something happens.
        let deadline = endpoint
            .next_timeout()
            .map(|at| tokio::time::Instant::from_std(clock.to_std(at)));
        let (reading, blocked) = (endpoint.wants_read(), pending.is_some());
        let socket_ready = async {
            let interest = match (reading, blocked) {
                (true, true) => Interest::READABLE | Interest::ERROR | Interest::WRITABLE,
                (true, false) => Interest::READABLE | Interest::ERROR,
                (false, true) => Interest::WRITABLE,
                (false, false) => return future::pending().await,
            };
            // An error here (the runtime is going away) shows up again on the next read or
            // send; a pending wait is all that is left to do.
            match socket.ready(interest).await {
                Ok(guard) => Wake::Socket(guard),
                Err(_) => future::pending().await,
            }
        };
        let messages = &mut mailbox.messages;
        let message = async {
            if !reading {
                // Messages are dropped once the endpoint closes: leave them in the mailbox.
                return future::pending().await;
            }
            match messages.recv().await {
                Some(message) => Wake::Message(message),
                // Cannot happen while the handle lives in the endpoint; sleep on the rest.
                None => future::pending().await,
            }
        };
        let wake = &mailbox.wake;
        let stop = async {
            wake.notified().await;
            Wake::Other
        };
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => future::pending().await,
            };
            Wake::Other
        };
        // The stop request first, so that it wins a tie.
        let woke = future::or(future::or(stop, timer), future::or(message, socket_ready)).await;
        match woke {
            Wake::Message(message) => endpoint.handle_message(clock.now(), message),
            Wake::Socket(mut guard) => {
                let ready = guard.ready();
                if pending.is_some() && (ready.is_writable() || ready.is_write_closed()) {
                    // Retried under the guard, whose readiness predates the send: if the
                    // buffer is still full, tokio forgets only that readiness and waits for
                    // the next edge.
                    if flush_all(&socket, local, &mut endpoint, &mut pending, &clock)
                        == Flushed::Blocked
                    {
                        guard.clear_ready_matching(Ready::WRITABLE);
                    }
                } else {
                    // Readable: the next turn's reads consume it.
                    guard.retain_ready();
                }
            }
            Wake::Other => {}
        }
    }
    // Posting fails from now on.
    mailbox.messages.close();
    endpoint.into_protocol()
}

/// Reads what the socket holds, up to the budget, carrying out the outputs after each
/// datagram. `None` when nothing was waiting; otherwise where the last flush stopped.
fn read<P: DatagramProtocol>(
    socket: &AsyncFd<UdpSocket>,
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
        // `try_io` skips the call while tokio knows the socket is drained, and forgets the
        // readiness when the receive finds it drained. An error an earlier send left on the
        // socket (an ICMP refusal) is reported as error readiness alone, not as readable: it
        // is received, and its readiness forgotten, the same way.
        let mut receive_once = |interest| {
            socket.try_io(interest, |socket| {
                match receive(buffer, socket, endpoint, clock.now()) {
                    RecvOutcome::Delivered => Ok(()),
                    RecvOutcome::Drained => Err(io::ErrorKind::WouldBlock.into()),
                }
            })
        };
        if receive_once(Interest::READABLE).is_err() && receive_once(Interest::ERROR).is_err() {
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
    socket: &AsyncFd<UdpSocket>,
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
