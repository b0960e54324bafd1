//! `Connection`: the sans-IO driver that runs one [`Protocol`] over one byte stream.

use core::mem;
use core::net::SocketAddr;

use alloc::sync::Arc;
use bytes::BytesMut;

use crate::reason::{Reason, Timeout};
use crate::stream::state::{Event, State};
use crate::stream::transport::{CloseDeferral, TransportState};
use crate::stream::{Action, Config, Control, Handle, Protocol, Stats, Transport};
use crate::time::Instant;

/// How many internal follow-ups (redelivery after a resume, pause notifications) one input may
/// trigger before the driver yields back to the runtime; keeps a misbehaving protocol from
/// spinning inside a single call.
const MAX_SETTLE_ROUNDS: usize = 64;

/// Unconsumed input up to this size moves into storage of its own size when a connection
/// gives its receive buffer up ([`Connection::poll_spare_buffer`]): a copy that small is cheap,
/// and a slow or hostile peer's partial frame then pins a few bytes, not a read buffer.
const SMALL_INPUT: usize = 1024;

/// Drives one [`Protocol`] over one connection, without doing any I/O itself.
///
/// Inputs are the `handle_*` methods, each taking the current time; outputs are pulled:
/// [`poll_write`](Self::poll_write) / [`handle_written`](Self::handle_written),
/// [`wants_read`](Self::wants_read), [`poll_action`](Self::poll_action) and
/// [`next_timeout`](Self::next_timeout). The run loop is shown in the crate docs.
///
/// Guarantees, whatever order inputs arrive in: `connection_made` comes first; after
/// `connection_lost` (exactly once, last) the protocol is never called again; nothing is written
/// after an abort; a graceful close emits [`Action::Close`] only once every queued byte has been
/// reported written (or aborts at the close deadline), and, unless the peer has already closed
/// its side, only after a short linger: our side is shut down and the peer's input discarded
/// until its EOF or [`Config::close_linger`] passes, because closing a socket with unread input
/// resets the connection and can destroy the tail of our reply. Inputs that make no sense in the current
/// state (data after close, say) are ignored.
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::{Instant, stream::{Action, Config, Connection, Protocol, Transport}};
///
/// struct Hello;
/// impl Protocol for Hello {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         tx.write_slice(b"hello\r\n").unwrap();
///         tx.lose_connection();
///     }
///     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
/// }
///
/// let addr = "127.0.0.1:1".parse().unwrap();
/// let mut conn = Connection::new(Hello, Config::default());
/// conn.handle_connected(Instant::ZERO, addr, addr);
/// let out: Vec<u8> = conn.poll_write().flatten().copied().collect();
/// assert_eq!(out, b"hello\r\n");
/// assert_eq!(conn.poll_action(), None); // not flushed yet
/// conn.handle_written(Instant::ZERO, out.len());
/// // Flushed: connection_lost has run; our side shuts down and lingers for the peer's EOF so
/// // that closing cannot reset the connection under our reply.
/// assert_eq!(conn.poll_action(), Some(Action::ShutdownWrite));
/// assert!(conn.is_ended());
/// conn.handle_read_closed(Instant::ZERO);
/// assert_eq!(conn.poll_action(), Some(Action::Close));
/// assert!(conn.is_closed());
/// ```
pub struct Connection<P: Protocol> {
    protocol: P,
    state: TransportState,
    /// Outputs not yet pulled with `poll_action`: a half-close, then the terminal action.
    shutdown_pending: bool,
    terminal: Option<Action>,
    /// Why the protocol ended, once `connection_lost` has run.
    reason: Option<Reason>,
    handle: Option<Handle<P::Message>>,
}

impl<P: Protocol> Connection<P> {
    /// A connection that has not been established yet.
    ///
    /// `config` is a [`Config`] or an `Arc<Config>`. Runtimes pass one `Arc` to all the
    /// connections of a listener: each then holds a pointer rather than its own copy of the
    /// settings, which an idle connection would otherwise spend 80 bytes on (as quinn shares
    /// one `Arc<TransportConfig>` among its connections).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use loomwork::stream::{Config, Connection, Protocol, Transport};
    /// use loomwork::bytes::BytesMut;
    ///
    /// struct Discard;
    /// impl Protocol for Discard {
    ///     type Message = ();
    ///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
    ///         data.clear();
    ///     }
    /// }
    ///
    /// let shared = Arc::new(Config { high_water: 8 * 1024, ..Config::default() });
    /// let a = Connection::new(Discard, Arc::clone(&shared));
    /// let b = Connection::new(Discard, Arc::clone(&shared));
    /// let own = Connection::new(Discard, Config::default()); // a copy of its own
    /// # let _ = (a, b, own);
    /// ```
    pub fn new(protocol: P, config: impl Into<Arc<Config>>) -> Self {
        Connection {
            protocol,
            state: TransportState::new(config.into()),
            shutdown_pending: false,
            terminal: None,
            reason: None,
            handle: None,
        }
    }

    /// Gives the connection its handle, so the protocol can read it with
    /// [`Transport::handle`]. Runtimes call this before [`handle_connected`](Self::handle_connected).
    pub fn set_handle(&mut self, handle: Handle<P::Message>) {
        self.handle = Some(handle);
    }

    /// The handle given with [`set_handle`](Self::set_handle).
    pub fn handle(&self) -> Option<&Handle<P::Message>> {
        self.handle.as_ref()
    }

    // ----- inputs -------------------------------------------------------------------------

    /// The socket is connected: runs `connection_made`. Ignored unless the connection is new.
    pub fn handle_connected(&mut self, now: Instant, local: SocketAddr, peer: SocketAddr) {
        self.state.now = now;
        if self.state.life != State::Pending {
            return;
        }
        self.state.transition(Event::Connected);
        self.state.local = Some(local);
        self.state.peer = Some(peer);
        self.protocol.connection_made(&mut Transport {
            state: &mut self.state,
            handle: self.handle.as_ref(),
        });
        self.settle();
    }

    /// Bytes were read from the socket.
    ///
    /// They are appended to the receive buffer and offered to `data_received`, unless the
    /// protocol has paused reading (then they wait for `resume_reading`). Ignored once the
    /// connection is closing: a closing connection reads nothing more (Twisted TR-3).
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.handle_data_with(now, |buf| {
            buf.extend_from_slice(data);
            Ok::<(), core::convert::Infallible>(())
        })
        .unwrap_or_else(|never| match never {});
    }

    /// Bytes are read straight into the receive buffer, saving the copy [`handle_data`]
    /// makes: `read` gets the buffer and appends to it (for example by receiving into its
    /// spare capacity); whatever it appended is then handled exactly as `handle_data` would
    /// handle it. `read`'s result is returned as it is.
    ///
    /// `read` must only append: the bytes already in the buffer are input the protocol has not
    /// consumed yet. While the buffer is empty, `read` may first replace it with other (empty)
    /// storage, which is how a runtime lends storage back after
    /// [`poll_spare_buffer`](Self::poll_spare_buffer). Appending nothing is allowed (a read that
    /// would block, or failed); report
    /// an end of stream or an error with [`handle_read_closed`] or [`handle_error`] as usual.
    ///
    /// [`handle_data`]: Self::handle_data
    /// [`handle_read_closed`]: Self::handle_read_closed
    /// [`handle_error`]: Self::handle_error
    ///
    /// ```
    /// use loomwork::bytes::{BufMut, BytesMut};
    /// use loomwork::stream::{Config, Connection, Protocol, Transport};
    /// use loomwork::Instant;
    ///
    /// struct Echo;
    /// impl Protocol for Echo {
    ///     type Message = ();
    ///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
    ///         let _ = tx.write(data.split().freeze());
    ///     }
    /// }
    ///
    /// let mut conn = Connection::new(Echo, Config::default());
    /// let addr = "127.0.0.1:7".parse().unwrap();
    /// conn.handle_connected(Instant::ZERO, addr, addr);
    /// // A runtime would `recv` into `buf.spare_capacity_mut()` here.
    /// let read = conn.handle_data_with(Instant::ZERO, |buf| {
    ///     buf.put_slice(b"ping");
    ///     Ok::<usize, std::io::Error>(4)
    /// });
    /// assert_eq!(read.unwrap(), 4);
    /// assert_eq!(conn.poll_write().next(), Some(&b"ping"[..]));
    /// ```
    pub fn handle_data_with<R, E>(
        &mut self,
        now: Instant,
        read: impl FnOnce(&mut BytesMut) -> Result<R, E>,
    ) -> Result<R, E> {
        self.state.now = now;
        let before = self.state.recv.len();
        let result = read(&mut self.state.recv);
        // The buffer's growth is what was read, whatever `read` claims.
        let appended = self.state.recv.len().saturating_sub(before);
        if appended == 0 {
            return result;
        }
        if let State::Lingering { .. } = self.state.life {
            // Drained only so that the eventual close is not a reset; nobody reads it.
            self.state.stats.bytes_received += appended as u64;
            self.state.recv.truncate(before);
            return result;
        }
        if !matches!(self.state.life, State::Open(_)) || self.state.peer_eof() {
            self.state.recv.truncate(before);
            return result;
        }
        self.state.stats.bytes_received += appended as u64;
        if !self.state.reading_blocked() {
            self.deliver();
        }
        self.check_receive_limit();
        self.settle();
        result
    }

    /// The peer shut down its writing side (read returned 0): runs `read_closed`.
    pub fn handle_read_closed(&mut self, now: Instant) {
        self.state.now = now;
        let lingering = matches!(self.state.life, State::Lingering { .. });
        let open = matches!(self.state.life, State::Open(_)) && !self.state.peer_eof();
        if !lingering && !open {
            return;
        }
        self.transition(Event::PeerEof);
        if lingering {
            return;
        }
        self.protocol.read_closed(&mut Transport {
            state: &mut self.state,
            handle: self.handle.as_ref(),
        });
        self.settle();
    }

    /// The runtime wrote the first `n` bytes of [`poll_write`](Self::poll_write).
    pub fn handle_written(&mut self, now: Instant, n: usize) {
        self.state.now = now;
        let n = self.state.queue.advance(n);
        self.state.stats.bytes_sent += n as u64;
        let resume = self.state.producer_paused_since.is_some()
            && matches!(self.state.life, State::Open(_))
            && self.state.queue.footprint() <= self.state.config.low_water;
        if resume {
            if let Some(since) = self.state.producer_paused_since.take() {
                self.state.stats.time_paused += now - since;
            }
            self.protocol.resume_producing(&mut Transport {
                state: &mut self.state,
                handle: self.handle.as_ref(),
            });
        }
        self.settle();
    }

    /// The socket failed (reset, refused, ...): the queue is dropped and `connection_lost`
    /// receives `reason`.
    pub fn handle_error(&mut self, now: Instant, reason: Reason) {
        self.state.now = now;
        // While lingering, connection_lost has reported the graceful close already: the
        // socket is just done.
        self.transition(Event::Failed(reason));
    }

    /// Time has passed: fires due protocol timers and enforces the close deadline. Harmless
    /// when nothing is due, so early or repeated wake-ups cost nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.state.now = now;
        if self
            .state
            .deferred_close_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            // The protocol put a close off and did not close by the deadline.
            self.transition(Event::Abort(Reason::TimedOut(Timeout::Close)));
        }
        self.transition(Event::Tick(now));
        if !self.state.life.is_live() {
            return;
        }
        // Fire only timers that existed on entry: one set for `now` from inside `timer_fired`
        // waits for the next call instead of looping here.
        let mark = self.state.timers.mark();
        while let Some(timer) = self.state.timers.pop_expired_before_mark(now, mark) {
            self.protocol.timer_fired(
                timer,
                &mut Transport {
                    state: &mut self.state,
                    handle: self.handle.as_ref(),
                },
            );
            if !self.state.life.is_live() {
                break;
            }
        }
        self.settle();
    }

    /// A message posted through a connection handle: runs `message`. Dropped once the
    /// connection is over.
    pub fn handle_message(&mut self, now: Instant, message: P::Message) {
        self.state.now = now;
        if self.state.life.is_live() {
            self.protocol.message(
                message,
                &mut Transport {
                    state: &mut self.state,
                    handle: self.handle.as_ref(),
                },
            );
            self.settle();
        }
    }

    /// A close or abort requested through a [`Handle`].
    pub fn handle_control(&mut self, now: Instant, control: Control) {
        match control {
            Control::Close => self.close(now),
            Control::Abort => self.abort(now),
        }
    }

    /// Asks for a graceful close from outside the protocol (server shutdown, say): the
    /// protocol hears [`Protocol::close_requested`] (unless it is closing already), then the
    /// connection closes as if the protocol had called `lose_connection`.
    ///
    /// The protocol may put the close off from `close_requested`
    /// ([`Transport::defer_close`]) to finish what must come first; it then closes itself
    /// within the close deadline, or is aborted. Asking again meanwhile changes nothing.
    pub fn close(&mut self, now: Instant) {
        self.state.now = now;
        if matches!(self.state.close_deferral, CloseDeferral::Deferred { .. }) {
            return;
        }
        if matches!(self.state.life, State::Open(_)) {
            self.state.close_deferral = CloseDeferral::Offered;
            self.protocol.close_requested(&mut Transport {
                state: &mut self.state,
                handle: self.handle.as_ref(),
            });
            if matches!(self.state.close_deferral, CloseDeferral::Deferred { .. }) {
                self.settle();
                return;
            }
            self.state.close_deferral = CloseDeferral::NotAsked;
        }
        self.state.begin_close(Reason::Done);
        self.settle();
    }

    /// Aborts from outside the protocol: queued data is dropped, `connection_lost` gets
    /// [`Reason::Aborted`].
    pub fn abort(&mut self, now: Instant) {
        self.state.now = now;
        self.transition(Event::Abort(Reason::Aborted));
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The queued bytes, in order, as slices for a vectored write. Report what was written with
    /// [`handle_written`](Self::handle_written).
    pub fn poll_write(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.state.queue.chunks()
    }

    /// True while there are bytes to write.
    pub fn wants_write(&self) -> bool {
        !self.state.queue.is_empty()
    }

    /// True when the runtime should read from the socket: open, the peer has not closed, the
    /// protocol has not paused reading and the receive buffer has room.
    pub fn wants_read(&self) -> bool {
        match &self.state.life {
            State::Lingering { .. } => true,
            State::Open(halves) => !halves.peer_eof && !self.state.reading_blocked(),
            _ => false,
        }
    }

    /// The next socket action to carry out, if any. After [`Action::Close`] or
    /// [`Action::Abort`] the connection is over and the socket can be dropped.
    pub fn poll_action(&mut self) -> Option<Action> {
        if mem::take(&mut self.shutdown_pending) {
            return Some(Action::ShutdownWrite);
        }
        self.terminal.take()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` when
    /// nothing is scheduled.
    pub fn next_timeout(&self) -> Option<Instant> {
        let timers = match self.state.life {
            State::Open(_) | State::Closing { .. } => self.state.timers.next_deadline(),
            _ => None,
        };
        let life = self
            .state
            .life
            .deadline()
            .or(self.state.deferred_close_deadline());
        match (timers, life) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True once the protocol has ended: `connection_lost` has run and
    /// [`reason`](Self::reason) says why. This is the predicate to test for "is it over";
    /// every machine has it ([`Endpoint::is_ended`](crate::datagram::Endpoint::is_ended),
    /// [`Connector::is_ended`](crate::connector::Connector::is_ended)).
    ///
    /// The socket may outlive the protocol for a moment: after a graceful close the connection
    /// lingers, discarding the peer's input until its EOF (see [`Config::close_linger`]), so
    /// that closing does not reset the connection under the reply. The runtime learns that the
    /// socket is done from the terminal [`Action::Close`] or [`Action::Abort`].
    pub fn is_ended(&self) -> bool {
        self.reason.is_some()
    }

    /// True once a graceful close or an abort has been asked for (by the protocol or from
    /// outside), as [`Transport::is_closing`] tells the protocol.
    pub fn is_closing(&self) -> bool {
        !matches!(self.state.life, State::Open(_))
    }

    /// True once the socket is done as well: the terminal [`Action`] has been queued. A
    /// runtime that drives the socket uses this; to know whether the protocol is over, use
    /// [`is_ended`](Self::is_ended).
    pub fn is_closed(&self) -> bool {
        self.state.life == State::Closed
    }

    /// Why the connection ended, once it has.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_ref()
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The protocol, mutably (for tests and for runtimes that inspect it).
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    /// The peer's address, once connected.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.state.peer
    }

    /// Our address, once connected.
    pub fn local(&self) -> Option<SocketAddr> {
        self.state.local
    }

    /// Bytes queued for writing.
    pub fn queued_bytes(&self) -> usize {
        self.state.queue.len()
    }

    /// What the write queue is charged with against [`Config::max_queued`] and the water
    /// marks: its bytes plus per-entry overhead (see [`Config`]).
    pub fn queued_memory(&self) -> usize {
        self.state.queue.footprint()
    }

    /// Bytes received and not yet consumed by the protocol.
    pub fn buffered_bytes(&self) -> usize {
        self.state.recv.len()
    }

    /// Gives up the receive buffer's storage for the time the connection waits, so that a
    /// runtime reading straight into connections' buffers can lend it to whichever connection
    /// reads next: connections that wait then pin no read-sized storage, and the busy ones
    /// reuse the same few buffers instead of allocating or copying per read.
    ///
    /// Input the protocol has not consumed yet (a partial frame) stays in the connection: when
    /// it is small it first moves into storage of its own size, and when it is large nothing is
    /// given up (the room is about to be needed). The buffer returned is empty; `None` when
    /// there is nothing worth giving up.
    ///
    /// ```
    /// use loomwork::bytes::{BufMut, BytesMut};
    /// use loomwork::stream::{Config, Connection, Protocol, Transport};
    /// use loomwork::Instant;
    ///
    /// /// Waits for a whole line before consuming anything.
    /// struct Lines;
    /// impl Protocol for Lines {
    ///     type Message = ();
    ///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
    ///         if let Some(end) = data.iter().position(|&b| b == b'\n') {
    ///             let _line = data.split_to(end + 1);
    ///         }
    ///     }
    /// }
    ///
    /// let mut conn = Connection::new(Lines, Config::default());
    /// let addr = "127.0.0.1:7".parse().unwrap();
    /// conn.handle_connected(Instant::ZERO, addr, addr);
    /// let read = |buf: &mut BytesMut, bytes: &[u8]| {
    ///     buf.reserve(64 * 1024);
    ///     buf.put_slice(bytes);
    ///     Ok::<(), std::io::Error>(())
    /// };
    /// conn.handle_data_with(Instant::ZERO, |buf| read(buf, b"half a li")).unwrap();
    /// let spare = conn.poll_spare_buffer().expect("the 64 KiB buffer");
    /// assert!(spare.is_empty() && spare.capacity() >= 64 * 1024);
    /// assert_eq!(conn.buffered_bytes(), 9); // the partial line stayed, in storage of its own
    /// // The next read may go into the lent storage again: the input is whole.
    /// conn.handle_data_with(Instant::ZERO, |buf| read(buf, b"ne\n")).unwrap();
    /// assert_eq!(conn.buffered_bytes(), 0);
    /// ```
    pub fn poll_spare_buffer(&mut self) -> Option<BytesMut> {
        let recv = &mut self.state.recv;
        if recv.is_empty() {
            return (recv.capacity() > 0).then(|| mem::take(recv));
        }
        if recv.len() > SMALL_INPUT || recv.capacity() - recv.len() < SMALL_INPUT {
            return None;
        }
        let own_size = BytesMut::from(&recv[..]);
        let mut spare = mem::replace(recv, own_size);
        spare.clear();
        Some(spare)
    }

    // ----- internals ----------------------------------------------------------------------

    /// Moves the connection along its life and carries out what the move asks for.
    fn transition(&mut self, event: Event) {
        self.state.transition(event);
        self.apply_effects();
    }

    /// Carries out what transitions asked for, in order: drop the queue, end the protocol
    /// (`connection_lost`, exactly once), queue the socket actions.
    fn apply_effects(&mut self) {
        let effects = mem::take(&mut self.state.effects);
        if effects.discard_queue {
            self.state.queue.clear();
        }
        if let Some(reason) = effects.ended {
            self.end_protocol(reason);
        }
        self.shutdown_pending |= effects.shutdown_write;
        if let Some(action) = effects.socket {
            if action == Action::Abort {
                // A reset makes a pending half-close pointless.
                self.shutdown_pending = false;
            }
            self.terminal = Some(action);
        }
    }

    /// Offers the receive buffer to the protocol. The buffer is moved out for the call so the
    /// protocol can hold it and the transport at once; an empty `BytesMut` costs nothing.
    fn deliver(&mut self) {
        let mut buf = mem::take(&mut self.state.recv);
        self.protocol.data_received(
            &mut buf,
            &mut Transport {
                state: &mut self.state,
                handle: self.handle.as_ref(),
            },
        );
        // A protocol may not append to its own input, but if it did, keep both.
        if !self.state.recv.is_empty() {
            buf.extend_from_slice(&self.state.recv);
        }
        self.state.recv = buf;
        if self.state.recv.is_empty() && self.state.recv.capacity() > 64 * 1024 {
            // Large reads should not pin memory on a connection that has gone quiet.
            self.state.recv = BytesMut::new();
        }
    }

    fn check_receive_limit(&mut self) {
        if let Some(reason) = self.state.receive_overflow() {
            self.state.recv = BytesMut::new();
            self.state.begin_close(reason);
        }
    }

    /// Runs the follow-ups that callbacks requested, until nothing changes.
    fn settle(&mut self) {
        // An abort requested inside the callback ends the protocol now, after the callback.
        self.apply_effects();
        if !self.state.life.is_live() {
            return;
        }
        for _ in 0..MAX_SETTLE_ROUNDS {
            let open = matches!(self.state.life, State::Open(_));
            if open && mem::take(&mut self.state.redeliver) {
                if !self.state.recv.is_empty() && !self.state.reading_blocked() {
                    self.deliver();
                    self.check_receive_limit();
                    self.apply_effects();
                }
                continue;
            }
            if open
                && self.state.producer_paused_since.is_none()
                && self.state.queue.footprint() > self.state.config.high_water
            {
                self.state.stats.pauses += 1;
                self.state.producer_paused_since = Some(self.state.now);
                self.protocol.pause_producing(&mut Transport {
                    state: &mut self.state,
                    handle: self.handle.as_ref(),
                });
                self.apply_effects();
                continue;
            }
            break;
        }
        if self.state.queue.is_empty() {
            self.transition(Event::Drained);
        }
    }

    /// The protocol's life is over: `connection_lost` runs once, and everything only a live
    /// connection needs is released.
    fn end_protocol(&mut self, reason: Reason) {
        self.state.timers.clear();
        self.state.recv = BytesMut::new();
        if let Some(since) = self.state.producer_paused_since.take() {
            self.state.stats.time_paused += self.state.now - since;
        }
        self.protocol.connection_lost(&reason);
        // The handle's mailbox may point back at this connection's runtime task; dropping it
        // here breaks any reference cycle the moment the connection ends.
        self.handle = None;
        self.reason = Some(reason);
    }
}

impl<P: Protocol + core::fmt::Debug> core::fmt::Debug for Connection<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("protocol", &self.protocol)
            .field("state", &self.state.life)
            .field("queued", &self.state.queue.len())
            .field("buffered", &self.state.recv.len())
            .finish_non_exhaustive()
    }
}
