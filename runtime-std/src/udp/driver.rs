//! The endpoint thread: wait on the socket, the mailbox and the next deadline; feed the core;
//! carry out its outputs.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use loomwork::datagram::{Config, DatagramProtocol, Endpoint, Transmit};
use loomwork::MonotonicClock;

use loomwork_net::reason_from_io;
use loomwork_net::udp::{flush, has_ready_outputs, receive, Flushed, RecvBuffer, RecvOutcome};

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

/// An endpoint's socket and what its thread shares with handles. The thread sleeps in one
/// `poll(2)` over the socket, the wake-up and the endpoint's next deadline (see
/// [`crate::wait`]), including while the socket's send buffer is full.
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
        let handle = UdpHandle::new(Arc::clone(&shared));
        let driver = Driver {
            socket,
            local,
            config,
            shared,
        };
        Ok((driver, handle))
    }
}

impl<M> Driver<M> {
    /// Runs `protocol` until the endpoint closes; gives the protocol back.
    ///
    /// Each turn: take a stop request, fire what is due, carry out the outputs, read what is
    /// waiting, then sleep in one `poll(2)` over the socket (readable while the endpoint
    /// reads, writable while a datagram waits for room in the send buffer), the wake-up and
    /// the endpoint's next deadline. Sends never wait on their own, so an abort (the wake-up)
    /// and a graceful stop's close deadline (the timeout) always get through, however slowly
    /// the send path drains.
    pub(crate) fn run<P>(self, protocol: P) -> P
    where
        P: DatagramProtocol<Message = M>,
    {
        let clock = MonotonicClock::new();
        let mut endpoint = Endpoint::new(protocol, self.config.clone());
        let mut buffer = RecvBuffer::new(self.config.receive_size);
        // A datagram the endpoint handed out that the full send buffer has not taken yet.
        let mut pending: Option<Transmit> = None;
        endpoint.handle_started(clock.now(), self.local);
        'turns: loop {
            match self.shared.stop.load(Ordering::Acquire) {
                ABORT => endpoint.abort(clock.now()),
                CLOSE => endpoint.close(clock.now()),
                _ => {}
            }
            // Before flushing, so that a close deadline that has passed drops the datagram in
            // hand instead of retrying it.
            endpoint.handle_timeout(clock.now());
            let mut busy = match self.flush(&mut endpoint, &mut pending, &clock) {
                Flushed::Closed => break,
                Flushed::Budget => true,
                Flushed::Idle | Flushed::Blocked => false,
            };
            if endpoint.wants_read() {
                let messages = self.shared.take_messages(MESSAGE_BUDGET);
                busy |= !messages.is_empty();
                for message in messages {
                    endpoint.handle_message(clock.now(), message);
                    if self.flush(&mut endpoint, &mut pending, &clock) == Flushed::Closed {
                        break 'turns;
                    }
                }
                match self.read(&mut endpoint, &mut buffer, &mut pending, &clock) {
                    Some(Flushed::Closed) => break,
                    Some(_) => busy = true,
                    None => {}
                }
            }
            let unfinished = has_ready_outputs(&endpoint, &pending);
            if busy || unfinished {
                continue;
            }
            let timeout = endpoint
                .next_timeout()
                .map(|deadline| clock.until(deadline));
            if timeout == Some(Duration::ZERO) {
                continue; // due: handled at the top of the next turn
            }
            let socket = Watch::new(&self.socket, endpoint.wants_read(), pending.is_some());
            if let Err(err) = wait::sleep(&self.shared.wakeup, Some(socket), timeout) {
                endpoint.handle_error(clock.now(), reason_from_io(&err));
            }
        }
        self.shared.finished.store(true, Ordering::Release);
        // Messages nobody will read are dropped with the endpoint, not left in the mailbox.
        drop(self.shared.take_messages(usize::MAX));
        endpoint.into_protocol()
    }

    /// Reads what the socket holds, up to the budget, carrying out the outputs after each
    /// datagram. `None` when nothing was waiting; otherwise where the last flush stopped.
    fn read<P>(
        &self,
        endpoint: &mut Endpoint<P>,
        buffer: &mut RecvBuffer,
        pending: &mut Option<Transmit>,
        clock: &MonotonicClock,
    ) -> Option<Flushed>
    where
        P: DatagramProtocol<Message = M>,
    {
        let mut flushed = None;
        for _ in 0..READ_BUDGET {
            if !endpoint.wants_read() {
                break;
            }
            if receive(buffer, &self.socket, endpoint, clock.now()) == RecvOutcome::Drained {
                break;
            }
            let now = self.flush(endpoint, pending, clock);
            flushed = Some(now);
            if now == Flushed::Closed {
                break;
            }
        }
        flushed
    }

    /// Carries out the endpoint's outputs without waiting (see [`flush`]).
    fn flush<P>(
        &self,
        endpoint: &mut Endpoint<P>,
        pending: &mut Option<Transmit>,
        clock: &MonotonicClock,
    ) -> Flushed
    where
        P: DatagramProtocol<Message = M>,
    {
        flush(
            &self.socket,
            self.local,
            endpoint,
            pending,
            clock,
            OUTPUT_BUDGET,
        )
    }
}
