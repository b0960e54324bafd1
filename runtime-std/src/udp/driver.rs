//! The endpoint thread: wait on the socket, the mailbox and the next deadline; feed the core;
//! carry out its outputs.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use loomwork::datagram::{Action, Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;

use loomwork_net::reason_from_io;
use loomwork_net::udp::{apply_command, receive, RecvBuffer, RecvOutcome};

use super::handle::{Shared, UdpHandle, ABORT, CLOSE};
use crate::wait::{self, Wakeup, Watch};
/// Datagrams read per wake-up before the mailbox and timers get a turn (Twisted reads up to
/// 256 KiB per event, DF-13; a count keeps the turn short whatever the sizes).
const READ_BUDGET: usize = 64;
/// Messages handled per wake-up.
const MESSAGE_BUDGET: usize = 64;
/// Outputs carried out per turn, so a protocol that answers every send failure with another
/// send cannot keep the thread from reading.
const OUTPUT_BUDGET: usize = 4096;

/// An endpoint's socket and what its thread shares with posters. The thread sleeps in one
/// `poll(2)` over the socket and the wake-up (see [`crate::wait`]).
pub(crate) struct Driver<M> {
    socket: UdpSocket,
    local: SocketAddr,
    config: Config,
    shared: Arc<Shared<M>>,
}

impl<M> Driver<M> {
    pub(crate) fn new(
        socket: UdpSocket,
        local: SocketAddr,
        config: Config,
    ) -> io::Result<(Self, UdpHandle<M>)> {
        let shared = Arc::new(Shared::new(Wakeup::new()?));
        let poster = UdpHandle::new(Arc::clone(&shared));
        let driver = Driver {
            socket,
            local,
            config,
            shared,
        };
        Ok((driver, poster))
    }
}

impl<M> Driver<M> {
    /// Runs `protocol` until the endpoint closes; gives the protocol back.
    pub(crate) fn run<P>(self, protocol: P) -> P
    where
        P: DatagramProtocol<Message = M>,
    {
        let clock = MonotonicClock::new();
        let mut endpoint = Endpoint::new(protocol, self.config.clone());
        let mut buffer = RecvBuffer::new(self.config.receive_size);
        endpoint.handle_started(clock.now(), self.local);
        loop {
            // `Close` may also have been pulled inside `read` or the message loop.
            if self.carry_out(&mut endpoint, &clock) || endpoint.is_ended() {
                break;
            }
            match self.shared.stop.load(Ordering::Acquire) {
                ABORT => endpoint.abort(clock.now()),
                CLOSE => endpoint.close(clock.now()),
                _ => {}
            }
            if !endpoint.wants_read() {
                continue; // drain to the final `Close`
            }
            let messages = self.shared.take_messages(MESSAGE_BUDGET);
            let had_messages = !messages.is_empty();
            for message in messages {
                endpoint.handle_message(clock.now(), message);
                if self.carry_out(&mut endpoint, &clock) {
                    break;
                }
            }
            if had_messages || endpoint.queued() > 0 {
                // More may be waiting; take another turn before sleeping.
                self.read(&mut endpoint, &mut buffer, &clock);
                endpoint.handle_timeout(clock.now());
                continue;
            }
            let timeout = endpoint
                .next_timeout()
                .map(|deadline| clock.until(deadline));
            if timeout != Some(Duration::ZERO) {
                let socket = Some(Watch::new(&self.socket, true, false));
                if let Err(err) = wait::sleep(&self.shared.wakeup, socket, timeout) {
                    endpoint.handle_error(clock.now(), reason_from_io(&err));
                    continue;
                }
            }
            self.read(&mut endpoint, &mut buffer, &clock);
            endpoint.handle_timeout(clock.now());
        }
        self.shared.finished.store(true, Ordering::Release);
        // Messages nobody will read are dropped with the endpoint, not left in the mailbox.
        drop(self.shared.take_messages(usize::MAX));
        endpoint.into_protocol()
    }

    /// Reads what the socket holds, up to the budget.
    fn read<P>(&self, endpoint: &mut Endpoint<P>, buffer: &mut RecvBuffer, clock: &MonotonicClock)
    where
        P: DatagramProtocol<Message = M>,
    {
        for _ in 0..READ_BUDGET {
            if !endpoint.wants_read() {
                return;
            }
            if receive(buffer, &self.socket, endpoint, clock.now()) == RecvOutcome::Drained {
                return;
            }
            if self.carry_out(endpoint, clock) {
                return;
            }
        }
    }

    /// Carries out the endpoint's outputs in order; true once it has closed.
    fn carry_out<P>(&self, endpoint: &mut Endpoint<P>, clock: &MonotonicClock) -> bool
    where
        P: DatagramProtocol<Message = M>,
    {
        for _ in 0..OUTPUT_BUDGET {
            match endpoint.poll_action() {
                None => return false,
                Some(Action::Close) => return true,
                Some(Action::Send(transmit)) => {
                    if let Err(err) = self.send(&transmit) {
                        endpoint.handle_send_error(clock.now(), transmit.to, reason_from_io(&err));
                    }
                }
                Some(Action::Command(command)) => {
                    let result = apply_command(&self.socket, self.local, &command)
                        .map_err(|err| reason_from_io(&err));
                    endpoint.handle_command_result(clock.now(), command, result);
                }
            }
        }
        endpoint.is_ended()
    }

    /// Sends one datagram, waiting for room in the socket's buffer when it is full.
    fn send(&self, transmit: &Transmit) -> io::Result<()> {
        loop {
            let sent = match transmit.to {
                Some(to) => self.socket.send_to(&transmit.data, to),
                None => self.socket.send(&transmit.data),
            };
            match sent {
                Ok(_) => return Ok(()),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    let socket = Some(Watch::new(&self.socket, false, true));
                    wait::sleep(&self.shared.wakeup, socket, Some(Duration::from_secs(1)))?;
                }
                Err(err) => return Err(err),
            }
        }
    }
}
