//! The endpoint task: sleep until the socket is readable (or writable, while a send waits for
//! room), a message or stop request arrives, or the core's deadline passes; then feed the core
//! and carry out its outputs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;

use async_io::{Async, Timer};
use futures_lite::future;
use loomwork::datagram::{Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;
use loomwork_net::udp::{flush, has_ready_outputs, receive, Flushed, RecvBuffer, RecvOutcome};

use super::handle::{Mailbox, ABORT, CLOSE};

/// Datagrams read per turn before messages and timers get theirs (see the std runtime).
const READ_BUDGET: usize = 64;
/// Messages handled per turn.
const MESSAGE_BUDGET: usize = 64;
/// Outputs carried out per turn.
const OUTPUT_BUDGET: usize = 4096;

/// What woke the task.
enum Wake<M> {
    Message(M),
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
            future::yield_now().await;
            continue;
        }

        // Nothing to do without waiting: sleep until something happens.
        let deadline = endpoint.next_timeout().map(|at| clock.to_std(at));
        let (reading, blocked) = (endpoint.wants_read(), pending.is_some());
        let socket_ready = async {
            // An error here (the socket is gone) shows up again on the next read or send.
            match (reading, blocked) {
                (true, true) => {
                    let _ = future::or(socket.readable(), socket.writable()).await;
                }
                (true, false) => {
                    let _ = socket.readable().await;
                }
                (false, true) => {
                    let _ = socket.writable().await;
                }
                (false, false) => future::pending().await,
            }
            Wake::Other
        };
        let message = async {
            if !reading {
                // Messages are dropped once the endpoint closes: leave them in the mailbox.
                return future::pending().await;
            }
            match mailbox.messages.recv().await {
                Ok(message) => Wake::Message(message),
                // Cannot happen while the handle lives in the handle; sleep on the rest.
                Err(_) => future::pending().await,
            }
        };
        let stop = async {
            let _ = mailbox.wake.recv().await;
            Wake::Other
        };
        let timer = async {
            match deadline {
                Some(at) => Timer::at(at).await,
                None => Timer::never().await,
            };
            Wake::Other
        };
        // The stop request first, so that it wins a tie.
        let woke = future::or(future::or(stop, timer), future::or(message, socket_ready)).await;
        if let Wake::Message(message) = woke {
            endpoint.handle_message(clock.now(), message);
        }
    }
    // Posting fails from now on.
    mailbox.messages.close();
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
