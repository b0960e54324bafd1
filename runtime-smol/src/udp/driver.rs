//! The endpoint task: sleep until the socket is readable, a message or stop request arrives,
//! or the core's deadline passes; then feed the core and carry out its outputs.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;

use async_io::{Async, Timer};
use futures_lite::future;
use loomwork::datagram::{Action, Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;
use loomwork_net::reason_from_io;
use loomwork_net::udp::{apply_command, receive, RecvBuffer, RecvOutcome};

use super::handle::{Mailbox, ABORT, CLOSE};

/// Datagrams read per turn before messages and timers get theirs (see the std runtime).
const READ_BUDGET: usize = 64;
/// Messages handled per turn.
const MESSAGE_BUDGET: usize = 64;
/// Outputs carried out per turn.
const OUTPUT_BUDGET: usize = 4096;

/// What woke the task.
enum Wake<M> {
    Readable,
    Message(M),
    Other,
}

/// Runs `protocol` on `socket` until the endpoint closes; yields the protocol.
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
    endpoint.handle_started(clock.now(), local);
    loop {
        // `Close` may also have been pulled inside `read` or the message loop.
        if carry_out(&socket, local, &mut endpoint, &clock).await || endpoint.is_ended() {
            break;
        }
        match mailbox.stop.load(Ordering::Acquire) {
            ABORT => endpoint.abort(clock.now()),
            CLOSE => endpoint.close(clock.now()),
            _ => {}
        }
        if !endpoint.wants_read() {
            continue; // drain to the final `Close`
        }

        // Everything that is ready now, without waiting, each source with a budget so none
        // starves the others.
        let mut busy = false;
        for _ in 0..MESSAGE_BUDGET {
            let Ok(message) = mailbox.messages.try_recv() else {
                break;
            };
            busy = true;
            endpoint.handle_message(clock.now(), message);
            if carry_out(&socket, local, &mut endpoint, &clock).await {
                break;
            }
        }
        busy |= read(&socket, local, &mut endpoint, &mut buffer, &clock).await;
        endpoint.handle_timeout(clock.now());
        if busy || endpoint.queued() > 0 {
            // Let other tasks run between turns under load.
            future::yield_now().await;
            continue;
        }

        // Nothing ready: sleep until something is.
        let deadline = endpoint.next_timeout().map(|at| clock.to_std(at));
        let readable = async {
            // An error here (the socket is gone) shows up again on the next read.
            let _ = socket.readable().await;
            Wake::Readable
        };
        let message = async {
            match mailbox.messages.recv().await {
                Ok(message) => Wake::Message(message),
                // Cannot happen while the poster lives in the handle; sleep on the rest.
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
        let woke = future::or(future::or(stop, message), future::or(readable, timer)).await;
        match woke {
            Wake::Message(message) => endpoint.handle_message(clock.now(), message),
            Wake::Readable | Wake::Other => {}
        }
        endpoint.handle_timeout(clock.now());
    }
    // Posting fails from now on.
    mailbox.messages.close();
    endpoint.into_protocol()
}

/// Reads what the socket holds, up to the budget; true when anything was read.
async fn read<P: DatagramProtocol>(
    socket: &Async<UdpSocket>,
    local: SocketAddr,
    endpoint: &mut Endpoint<P>,
    buffer: &mut RecvBuffer,
    clock: &MonotonicClock,
) -> bool {
    let mut any = false;
    for _ in 0..READ_BUDGET {
        if !endpoint.wants_read() {
            break;
        }
        if receive(buffer, socket.get_ref(), endpoint, clock.now()) == RecvOutcome::Drained {
            break;
        }
        any = true;
        if carry_out(socket, local, endpoint, clock).await {
            break;
        }
    }
    any
}

/// Carries out the endpoint's outputs in order; true once it has closed.
async fn carry_out<P: DatagramProtocol>(
    socket: &Async<UdpSocket>,
    local: SocketAddr,
    endpoint: &mut Endpoint<P>,
    clock: &MonotonicClock,
) -> bool {
    for _ in 0..OUTPUT_BUDGET {
        match endpoint.poll_action() {
            None => return false,
            Some(Action::Close) => return true,
            Some(Action::Send(transmit)) => {
                if let Err(err) = send(socket, &transmit).await {
                    endpoint.handle_send_error(clock.now(), transmit.to, reason_from_io(&err));
                }
            }
            Some(Action::Command(command)) => {
                let result = apply_command(socket.get_ref(), local, &command)
                    .map_err(|err| reason_from_io(&err));
                endpoint.handle_command_result(clock.now(), command, result);
            }
        }
    }
    endpoint.is_ended()
}

async fn send(socket: &Async<UdpSocket>, transmit: &Transmit) -> io::Result<usize> {
    match transmit.to {
        Some(to) => socket.send_to(&transmit.data, to).await,
        None => socket.send(&transmit.data).await,
    }
}
