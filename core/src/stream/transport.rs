//! `Transport`: the protocol's view of its connection (Twisted `ITransport` / `ITCPTransport`).

use core::fmt;
use core::net::SocketAddr;
use core::time::Duration;

use alloc::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::reason::{Limit, Reason};
use crate::stream::state::{Context, Effects, Event, State, WriteSide};
use crate::stream::write_queue::WriteQueue;
use crate::stream::{Config, Handle, Stats};
use crate::time::Instant;
use crate::timer::{TimerId, TimerTable};

/// The handle a [`Protocol`](crate::stream::Protocol) acts through during a callback.
///
/// Nothing here performs I/O: writes are queued and closes are requested; the driver turns them
/// into outputs that the runtime carries out after the callback returns. So a protocol never
/// re-enters itself (Twisted TR-1, TR-4: `write` never sends synchronously, `connection_lost`
/// after an abort runs on the next turn, never inside `abort_connection`).
///
/// `M` is the protocol's [`Message`](crate::stream::Protocol::Message) type; it only matters for
/// [`handle`](Self::handle), and defaults to `()`.
pub struct Transport<'a, M = ()> {
    pub(crate) state: &'a mut TransportState,
    pub(crate) handle: Option<&'a Handle<M>>,
}

/// Why a write was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The connection (or its write side) is closed or closing by abort; nothing was queued.
    Closed,
    /// Queuing this write would exceed the hard cap ([`Config::max_queued`]); nothing was queued.
    ///
    /// The figures are the queue's account (see [`Config`]: bytes plus per-entry overhead),
    /// not bare payload.
    QueueFull {
        /// What the queue is charged with already ([`Transport::queued_memory`]).
        queued: usize,
        /// The cap.
        max: usize,
        /// What the refused write would have added to the account.
        len: usize,
    },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WriteError::Closed => f.write_str("write on a closed connection"),
            WriteError::QueueFull { queued, max, len } => write!(
                f,
                "write queue full: {queued} bytes queued + {len} would exceed the cap of {max}"
            ),
        }
    }
}

impl core::error::Error for WriteError {}

impl<M> Transport<'_, M> {
    /// Queues `data` to be sent.
    ///
    /// Writes larger than 256 bytes are queued as they are, without copying; smaller ones are
    /// copied into the queue's current block, so that many small writes cost about what they
    /// carry (and do not keep alive a large buffer they were sliced from). To queue a small
    /// buffer that many connections share without copying it, use
    /// [`write_shared`](Self::write_shared).
    ///
    /// Accepted after [`lose_connection`](Self::lose_connection) too: it is flushed before the
    /// close (Twisted TR-3). Empty writes are ignored (TR-1).
    pub fn write(&mut self, data: impl Into<Bytes>) -> Result<(), WriteError> {
        let data = data.into();
        let bound = self.state.queue.cost_bound(data.len());
        self.state
            .check_writable(bound, |queue| queue.cost_of(&data))?;
        self.state.queue.push(data);
        Ok(())
    }

    /// Queues `data` as it is, never copying it, however small: for a buffer that many
    /// connections send (a broadcast frame, see
    /// [`WireFrame`](crate::framing::WireFrame)), each queue holds a reference-counted clone
    /// and the bytes exist once.
    ///
    /// Each such write is its own entry in the queue and is charged its length plus a fixed
    /// per-entry overhead (see [`Config`]). The whole buffer `data` was sliced from stays
    /// alive until the write is done, so pass buffers built for the purpose, not slices of a
    /// large one.
    pub fn write_shared(&mut self, data: Bytes) -> Result<(), WriteError> {
        self.state
            .check_writable(self.state.queue.cost_bound(data.len()), |queue| {
                queue.cost(data.len(), false)
            })?;
        self.state.queue.push_entry(data);
        Ok(())
    }

    /// Queues a copy of `data` (small writes are coalesced into one buffer).
    pub fn write_slice(&mut self, data: &[u8]) -> Result<(), WriteError> {
        self.state
            .check_writable(self.state.queue.cost_bound(data.len()), |queue| {
                queue.cost(data.len(), true)
            })?;
        self.state.queue.push_slice(data);
        Ok(())
    }

    /// Closes gracefully: stop reading now, flush everything queued, then close and report
    /// [`Reason::Done`] (Twisted TR-3). If the flush does not finish within
    /// [`Config::close_timeout`] the connection is aborted with `TimedOut(Close)`.
    /// A second call does nothing.
    pub fn lose_connection(&mut self) {
        self.state.begin_close(Reason::Done);
    }

    /// Closes gracefully like [`lose_connection`](Self::lose_connection), but reports `reason`
    /// to `connection_lost` and the factory (for example a framing error).
    pub fn lose_connection_with(&mut self, reason: Reason) {
        self.state.begin_close(reason);
    }

    /// Closes at once: queued data is dropped, the socket is reset, and `connection_lost`
    /// receives [`Reason::Aborted`] after this callback returns (Twisted TR-4).
    pub fn abort_connection(&mut self) {
        self.state.request_abort(Reason::Aborted);
    }

    /// Aborts like [`abort_connection`](Self::abort_connection), but reports `reason` to
    /// `connection_lost` and the factory (a policy giving up on a peer, say).
    pub fn abort_connection_with(&mut self, reason: Reason) {
        self.state.request_abort(reason);
    }

    /// Shuts down our writing side once the queue has drained (half-close, Twisted TR-5);
    /// reading goes on. Later writes are refused with [`WriteError::Closed`].
    pub fn shutdown_write(&mut self) {
        self.state.transition(Event::ShutdownRequested);
    }

    /// Stops reading from the peer until [`resume_reading`](Self::resume_reading) (PP-5).
    pub fn pause_reading(&mut self) {
        self.state.reading_paused = true;
    }

    /// Reads again. Bytes already buffered are offered to `data_received` again right after
    /// the current callback, without waiting for new network data (PP-7).
    pub fn resume_reading(&mut self) {
        if self.state.reading_paused {
            self.state.reading_paused = false;
            self.state.redeliver = !self.state.reading_blocked() && !self.state.recv.is_empty();
        }
    }

    /// Takes the bytes received and not yet consumed, leaving the receive buffer empty.
    ///
    /// Inside `data_received` the buffer is the callback's argument and this returns nothing;
    /// elsewhere (a timer, a message) it is the way to drop or hand on a partial frame
    /// (Twisted's `clearLineBuffer`, LR-11).
    pub fn take_received(&mut self) -> BytesMut {
        core::mem::take(&mut self.state.recv)
    }

    /// True unless reading is paused by the protocol.
    pub fn is_reading(&self) -> bool {
        !self.state.reading_paused
    }

    /// Holds reading on behalf of a wrapper (a throttling policy, say), independently of the
    /// protocol's own [`pause_reading`](Self::pause_reading): reading goes on only once every
    /// hold is released *and* the protocol has not paused. Holds nest; release each one once
    /// with [`release_reading`](Self::release_reading).
    ///
    /// Keeping this apart from `pause_reading` is what lets a wrapper stop reads without ever
    /// undoing a pause that the protocol it wraps asked for, or the other way round.
    pub fn hold_reading(&mut self) {
        self.state.read_holds = self.state.read_holds.saturating_add(1);
    }

    /// Releases one [`hold_reading`](Self::hold_reading). When the last hold goes and the
    /// protocol has not paused, buffered bytes are offered again right after this callback.
    pub fn release_reading(&mut self) {
        if self.state.read_holds > 0 {
            self.state.read_holds -= 1;
            if !self.state.reading_blocked() && !self.state.recv.is_empty() {
                self.state.redeliver = true;
            }
        }
    }

    /// How many wrapper holds are on reading (see [`hold_reading`](Self::hold_reading)).
    pub fn read_holds(&self) -> u32 {
        self.state.read_holds
    }

    /// Calls [`Protocol::timer_fired`](crate::stream::Protocol::timer_fired) after `delay`.
    pub fn call_later(&mut self, delay: Duration) -> TimerId {
        let at = self.state.now + delay;
        self.state.timers.schedule(at)
    }

    /// Calls [`Protocol::timer_fired`](crate::stream::Protocol::timer_fired) at `at` (at once,
    /// on the next turn, when `at` has passed).
    pub fn call_at(&mut self, at: Instant) -> TimerId {
        self.state.timers.schedule(at)
    }

    /// Cancels a timer; false if it already fired or was cancelled.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.state.timers.cancel(timer)
    }

    /// The time of the event being handled.
    pub fn now(&self) -> Instant {
        self.state.now
    }

    /// The peer's address.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.state.peer
    }

    /// Our own address.
    pub fn local(&self) -> Option<SocketAddr> {
        self.state.local
    }

    /// The PROXY protocol header this connection started with, when the protocol runs inside
    /// [`AcceptProxy`](crate::proxy::AcceptProxy) and the peer sent one: its TLVs, and the
    /// addresses that [`peer`](Self::peer) and [`local`](Self::local) already report.
    pub fn proxy_header(&self) -> Option<&crate::proxy::Header> {
        self.state.proxy_header.as_deref()
    }

    /// Bytes queued and not yet taken by the operating system.
    pub fn queued_bytes(&self) -> usize {
        self.state.queue.len()
    }

    /// What the write queue is charged with: its bytes plus per-entry overhead (see
    /// [`Config`]). This, not [`queued_bytes`](Self::queued_bytes), is what
    /// [`Config::max_queued`] and the water marks compare with.
    pub fn queued_memory(&self) -> usize {
        self.state.queue.footprint()
    }

    /// Puts off a close asked from outside, when called from
    /// [`Protocol::close_requested`](crate::stream::Protocol::close_requested): the connection
    /// stays open, reading and writing, while the protocol finishes what has to happen before
    /// it can close cleanly (a TLS handshake the peer already counts as done, an answer in
    /// flight). The protocol then closes itself (`lose_connection`); the whole close, the
    /// wait included, must fit in the close deadline ([`Config::close_timeout`]), after which
    /// the connection is aborted with [`Reason::TimedOut`]`(`[`Timeout::Close`]`)`.
    ///
    /// Returns false, and changes nothing, anywhere but inside `close_requested`. Most
    /// protocols never need this: by default a close asked from outside happens at once.
    ///
    /// [`Timeout::Close`]: crate::Timeout::Close
    pub fn defer_close(&mut self) -> bool {
        if self.state.close_deferral != CloseDeferral::Offered {
            return false;
        }
        let deadline = self.state.config.close_timeout.map(|t| self.state.now + t);
        self.state.close_deferral = CloseDeferral::Deferred { deadline };
        true
    }

    /// True once a graceful close or an abort has been requested (Twisted `disconnecting`,
    /// TR-7). Framers stop delivering frames when they see it.
    pub fn is_closing(&self) -> bool {
        !matches!(self.state.life, State::Open(_))
    }

    /// Traffic counters for this connection.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// Traffic counters, mutably: for framers and policies that count what the driver cannot
    /// see (frames in and out, frames rejected, time held by throttling). The byte counters
    /// are the driver's; leave them alone.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.state.stats
    }

    /// This connection's handle, when the runtime gives out handles: clone it and hand it to
    /// whoever needs to post messages here (a chat room, the other leg of a proxy).
    pub fn handle(&self) -> Option<&Handle<M>> {
        self.handle
    }

    /// The connection's configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }
}

/// Everything about a connection except the protocol itself; [`Transport`] borrows it.
#[derive(Debug)]
pub(crate) struct TransportState {
    pub(crate) now: Instant,
    /// Where the connection is in its life; changed only through [`TransportState::transition`].
    pub(crate) life: State,
    /// What transitions made during a callback still ask for (an abort's `connection_lost`
    /// runs after the callback returns, never inside it); the connection carries them out.
    pub(crate) effects: Effects,
    pub(crate) local: Option<SocketAddr>,
    pub(crate) peer: Option<SocketAddr>,
    /// The PROXY header the connection started with (boxed: most connections have none).
    pub(crate) proxy_header: Option<alloc::boxed::Box<crate::proxy::Header>>,
    pub(crate) queue: WriteQueue,
    pub(crate) recv: BytesMut,
    pub(crate) timers: TimerTable,
    /// Shared, read-only: every connection a listener accepts points at one copy.
    pub(crate) config: Arc<Config>,
    pub(crate) reading_paused: bool,
    /// Holds on reading taken by wrappers (`hold_reading`), apart from the protocol's pause.
    pub(crate) read_holds: u32,
    pub(crate) redeliver: bool,
    /// When the protocol was told to pause producing; `None` while it produces.
    pub(crate) producer_paused_since: Option<Instant>,
    /// Whether a close asked from outside may be, or has been, put off by the protocol.
    pub(crate) close_deferral: CloseDeferral,
    pub(crate) stats: Stats,
}

/// A close asked from outside ([`Connection::close`](crate::stream::Connection::close)) and
/// the protocol's answer to it ([`Transport::defer_close`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseDeferral {
    /// No close is being asked for.
    NotAsked,
    /// `close_requested` is running: the protocol may put the close off.
    Offered,
    /// The protocol put the close off: it closes itself by `deadline` (`None`: no close
    /// deadline is configured), or the connection is aborted then.
    Deferred { deadline: Option<Instant> },
}

impl TransportState {
    pub(crate) fn new(config: Arc<Config>) -> Self {
        TransportState {
            now: Instant::ZERO,
            life: State::Pending,
            effects: Effects::default(),
            local: None,
            peer: None,
            proxy_header: None,
            queue: WriteQueue::default(),
            recv: BytesMut::new(),
            timers: TimerTable::default(),
            config,
            reading_paused: false,
            read_holds: 0,
            redeliver: false,
            producer_paused_since: None,
            close_deferral: CloseDeferral::NotAsked,
            stats: Stats::default(),
        }
    }

    /// Takes on the addresses a PROXY header carries (when it carries any: a `LOCAL` or
    /// `UNKNOWN` header leaves the connection's own) and keeps the header for the protocol.
    pub(crate) fn adopt_proxy_header(&mut self, header: crate::proxy::Header) {
        if let (Some(source), Some(destination)) = (header.source(), header.destination()) {
            self.peer = Some(source);
            self.local = Some(destination);
        }
        self.proxy_header = Some(alloc::boxed::Box::new(header));
    }

    /// True while the protocol has paused reading or a wrapper holds it.
    pub(crate) fn reading_blocked(&self) -> bool {
        self.reading_paused || self.read_holds > 0
    }

    /// Moves the connection along its life ([`State::on`]) and keeps what the move asks for
    /// until the connection carries it out.
    pub(crate) fn transition(&mut self, event: Event) {
        let cx = Context {
            now: self.now,
            close_timeout: self.config.close_timeout,
            close_linger: self.config.close_linger,
        };
        let (next, effects) = core::mem::replace(&mut self.life, State::Closed).on(event, cx);
        self.life = next;
        self.effects.merge(effects);
        if let CloseDeferral::Deferred { deadline: Some(by) } = self.close_deferral {
            // A deferred close keeps the one deadline it was given when it was asked for: the
            // protocol's own close, when it comes, does not start a fresh one.
            if let State::Closing { deadline, .. } = &mut self.life {
                *deadline = Some(deadline.map_or(by, |own| own.min(by)));
            }
        }
    }

    /// When a deferred close runs out, while the connection is still open.
    pub(crate) fn deferred_close_deadline(&self) -> Option<Instant> {
        match (self.close_deferral, &self.life) {
            (CloseDeferral::Deferred { deadline }, State::Open(_)) => deadline,
            _ => None,
        }
    }

    /// True once the peer has shut down its side (or the connection is no longer open).
    pub(crate) fn peer_eof(&self) -> bool {
        self.life.halves().map_or(true, |halves| halves.peer_eof)
    }

    /// Refuses a write that would add `cost` to the queue's account when the write side is
    /// closed or the account would pass the cap.
    /// Whether a write whose cost the queue works out with `cost` may be queued. The exact
    /// cost is computed only near the cap: far from it the queue's cheap bound (`bound`)
    /// answers, since every write goes through here and the exact figure simulates the tail.
    pub(crate) fn check_writable(
        &mut self,
        bound: usize,
        cost: impl FnOnce(&WriteQueue) -> usize,
    ) -> Result<(), WriteError> {
        let writable = self
            .life
            .halves()
            .is_some_and(|halves| halves.write == WriteSide::Open);
        if !writable {
            self.stats.writes_after_close += 1;
            return Err(WriteError::Closed);
        }
        if let Some(max) = self.config.max_queued {
            let queued = self.queue.footprint();
            if queued.saturating_add(bound) > max {
                let cost = cost(&self.queue);
                if queued.saturating_add(cost) > max {
                    self.stats.writes_over_cap += 1;
                    return Err(WriteError::QueueFull {
                        queued,
                        max,
                        len: cost,
                    });
                }
            }
        }
        Ok(())
    }

    pub(crate) fn begin_close(&mut self, reason: Reason) {
        self.transition(Event::CloseRequested(reason));
    }

    pub(crate) fn request_abort(&mut self, reason: Reason) {
        self.transition(Event::Abort(reason));
    }

    /// True when the receive buffer holds more than the protocol may leave unconsumed.
    pub(crate) fn receive_overflow(&self) -> Option<Reason> {
        let max = self.config.max_receive_buffer?;
        (self.recv.len() > max).then_some(Reason::LimitExceeded {
            limit: Limit::ReceiveBuffer,
            max,
            seen: self.recv.len(),
        })
    }
}
