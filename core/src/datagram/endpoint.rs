//! `Endpoint`: the sans-IO driver that runs one [`DatagramProtocol`] over one datagram socket.

use core::net::SocketAddr;

use bytes::Bytes;

use crate::datagram::transport::{EndpointState, Phase};
use crate::datagram::{Action, Command, Config, DatagramProtocol, DatagramTransport, Stats};
use crate::reason::Reason;
use crate::time::Instant;

/// Drives one [`DatagramProtocol`] over one socket, without doing any I/O itself.
///
/// Inputs are the `handle_*` methods, each taking the current time; outputs are pulled with
/// [`poll_action`](Self::poll_action) (sends and socket commands in the order the protocol
/// asked for them, then [`Action::Close`] once) and [`next_timeout`](Self::next_timeout).
///
/// Guarantees, whatever order inputs arrive in: `start_protocol` comes first; after
/// `stop_protocol` (exactly once, last) the protocol is never called again; on a connected
/// endpoint only the peer's datagrams are delivered; nothing a peer sends, and no send or
/// command failure the runtime reports, ends the endpoint. Only [`close`](Self::close),
/// [`abort`](Self::abort), the protocol's own `close` and [`handle_error`](Self::handle_error)
/// do. Inputs that make no sense in the current state are ignored.
///
/// The run loop, for a runtime:
/// 1. bind the socket, then [`handle_started`](Self::handle_started) with its address;
/// 2. drain [`poll_action`](Self::poll_action): send, apply commands (reporting failures),
///    close the socket on [`Action::Close`] and stop;
/// 3. wait for a datagram, a message or [`next_timeout`](Self::next_timeout), feed it in, and
///    go back to 2.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::{Instant, Reason};
/// use loomwork::datagram::{Command, Config, DatagramProtocol, DatagramTransport, Endpoint, Action};
///
/// struct Once;
/// impl DatagramProtocol for Once {
///     type Message = ();
///     fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
///         tx.connect("127.0.0.1:7".parse().unwrap()).unwrap();
///         tx.send(&b"hi"[..]).unwrap();
///     }
///     fn datagram_received(&mut self, _: Bytes, _: std::net::SocketAddr, _: bool,
///                          tx: &mut DatagramTransport<'_>) {
///         tx.close();
///     }
/// }
///
/// let mut endpoint = Endpoint::new(Once, Config::default());
/// endpoint.handle_started(Instant::ZERO, "127.0.0.1:5000".parse().unwrap());
/// assert!(matches!(endpoint.poll_action(), Some(Action::Command(Command::Connect(_)))));
/// assert!(matches!(endpoint.poll_action(), Some(Action::Send(t)) if t.to.is_none()));
/// // A stranger is filtered out; the peer's answer closes the endpoint.
/// endpoint.handle_datagram(Instant::ZERO, Bytes::new(), "127.0.0.1:9".parse().unwrap(), false);
/// assert_eq!(endpoint.poll_action(), None);
/// endpoint.handle_datagram(Instant::ZERO, Bytes::new(), "127.0.0.1:7".parse().unwrap(), false);
/// assert_eq!(endpoint.poll_action(), Some(Action::Close));
/// assert_eq!(endpoint.reason(), Some(&Reason::Done));
/// ```
pub struct Endpoint<P: DatagramProtocol> {
    protocol: P,
    state: EndpointState,
    terminal: Option<Action>,
    reason: Option<Reason>,
}

impl<P: DatagramProtocol> Endpoint<P> {
    /// An endpoint whose socket is not bound yet.
    pub fn new(protocol: P, config: Config) -> Self {
        Endpoint {
            protocol,
            state: EndpointState::new(config),
            terminal: None,
            reason: None,
        }
    }

    // ----- inputs -------------------------------------------------------------------------

    /// The socket is bound to `local`: runs `start_protocol`. Ignored unless the endpoint is
    /// new.
    pub fn handle_started(&mut self, now: Instant, local: SocketAddr) {
        self.state.now = now;
        if self.state.phase != Phase::Pending {
            return;
        }
        self.state.phase = Phase::Open;
        self.state.local = Some(local);
        self.protocol.start_protocol(&mut DatagramTransport {
            state: &mut self.state,
        });
    }

    /// A datagram arrived: runs `datagram_received`, unless the endpoint is connected to
    /// somebody else (then it is counted in [`Stats::filtered`] and dropped).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
    ) {
        self.state.now = now;
        if !self.state.is_open() {
            return;
        }
        if let Some(peer) = self.state.peer {
            // Compare address and port only: the OS does not echo back a scope id or flow
            // label the user may have written into the peer address.
            if peer.ip() != from.ip() || peer.port() != from.port() {
                self.state.stats.filtered += 1;
                return;
            }
        }
        self.state.stats.datagrams_received += 1;
        self.state.stats.bytes_received += data.len() as u64;
        if truncated {
            self.state.stats.truncated += 1;
        }
        self.protocol.datagram_received(
            data,
            from,
            truncated,
            &mut DatagramTransport {
                state: &mut self.state,
            },
        );
    }

    /// A send failed, or the OS reported a failure of an earlier one.
    ///
    /// `to` is the destination of the datagram that failed (`None`: the connected peer, or an
    /// asynchronous error such as a receive that fails with ECONNREFUSED after an ICMP
    /// port-unreachable). A refusal with `to == None` runs `connection_refused` on a connected
    /// endpoint (Twisted CU-2, CU-3) and is ignored on an unconnected one, where it cannot be
    /// tied to a peer (UD-5); it counts in [`Stats::refusals`]. Anything else runs
    /// `send_failed` and counts in [`Stats::send_errors`]. Never fatal.
    pub fn handle_send_error(&mut self, now: Instant, to: Option<SocketAddr>, reason: Reason) {
        self.state.now = now;
        let refusal = reason == Reason::Refused && to.is_none();
        if refusal {
            self.state.stats.refusals += 1;
        } else {
            self.state.stats.send_errors += 1;
        }
        if !self.state.is_open() {
            return;
        }
        if refusal {
            if self.state.peer.is_some() {
                self.protocol.connection_refused(&mut DatagramTransport {
                    state: &mut self.state,
                });
            }
            return;
        }
        self.protocol.send_failed(
            to,
            &reason,
            &mut DatagramTransport {
                state: &mut self.state,
            },
        );
    }

    /// The runtime carried out `command` with this result. A failure runs `command_failed`;
    /// a failed connect also leaves the endpoint unconnected.
    pub fn handle_command_result(
        &mut self,
        now: Instant,
        command: Command,
        result: Result<(), Reason>,
    ) {
        self.state.now = now;
        let Err(reason) = result else { return };
        if let Command::Connect(peer) = command {
            if self.state.peer == Some(peer) {
                self.state.peer = None;
            }
        }
        if self.state.is_open() {
            self.protocol.command_failed(
                &command,
                &reason,
                &mut DatagramTransport {
                    state: &mut self.state,
                },
            );
        }
    }

    /// Time has passed: fires due protocol timers, and ends a closing endpoint whose
    /// [`Config::close_timeout`] has passed as [`abort`](Self::abort) would (queued sends are
    /// dropped), with [`Reason::TimedOut`]`(`[`Timeout::Close`](crate::Timeout::Close)`)`.
    /// Harmless when nothing is due.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.state.now = now;
        if let Phase::Closing {
            deadline: Some(deadline),
            ..
        } = self.state.phase
        {
            if now >= deadline {
                self.finish(Reason::TimedOut(crate::Timeout::Close));
            }
            // A closing endpoint has no protocol timers left (`begin_close` cleared them).
            return;
        }
        // Fire only timers that existed on entry, so one re-armed for `now` from inside
        // `timer_fired` waits for the next call instead of spinning here.
        let mark = self.state.timers.mark();
        while self.state.is_open() {
            let Some(timer) = self.state.timers.pop_expired_before_mark(now, mark) else {
                break;
            };
            self.protocol.timer_fired(
                timer,
                &mut DatagramTransport {
                    state: &mut self.state,
                },
            );
        }
    }

    /// A message posted through the runtime's handle: runs `message`. Dropped unless open.
    pub fn handle_message(&mut self, now: Instant, message: P::Message) {
        self.state.now = now;
        if self.state.is_open() {
            self.protocol.message(
                message,
                &mut DatagramTransport {
                    state: &mut self.state,
                },
            );
        }
    }

    /// The socket failed for good (the runtime decides what is fatal; datagram-level errors
    /// are not): queued outputs are dropped and `stop_protocol` receives `reason`.
    pub fn handle_error(&mut self, now: Instant, reason: Reason) {
        self.state.now = now;
        self.end(reason);
    }

    /// Closes from outside the protocol, as if it had called `close`: queued sends still go
    /// out, then `stop_protocol` runs; if they have not gone out within
    /// [`Config::close_timeout`], [`handle_timeout`](Self::handle_timeout) drops them and ends
    /// the endpoint with `TimedOut(Close)`. An endpoint that never started just closes.
    pub fn close(&mut self, now: Instant) {
        self.state.now = now;
        if self.state.phase == Phase::Pending {
            self.state.phase = Phase::Closed;
            self.reason = Some(Reason::Done);
            self.terminal = Some(Action::Close);
        }
        self.state.begin_close(Reason::Done);
    }

    /// Aborts from outside the protocol: queued outputs are dropped and `stop_protocol`
    /// receives [`Reason::Aborted`].
    pub fn abort(&mut self, now: Instant) {
        self.state.now = now;
        self.end(Reason::Aborted);
    }

    // ----- outputs ------------------------------------------------------------------------

    /// The next thing for the runtime to do, in order; [`Action::Close`] comes once, last.
    pub fn poll_action(&mut self) -> Option<Action> {
        if let Some(output) = self.state.queue.pop_front() {
            if let Action::Send(transmit) = &output {
                let len = transmit.data.len();
                self.state.queued_bytes = self.state.queued_bytes.saturating_sub(len);
                self.state.stats.datagrams_sent += 1;
                self.state.stats.bytes_sent += len as u64;
            }
            return Some(output);
        }
        if let Phase::Closing { reason, .. } = &self.state.phase {
            let reason = reason.clone();
            self.finish(reason);
        }
        self.terminal.take()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called; `None` when
    /// nothing is scheduled. While open: the protocol's next timer. While closing: the close
    /// deadline, so a runtime waiting for its socket to take a send wakes up to end the
    /// endpoint even if the socket never does.
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.state.phase {
            Phase::Open => self.state.timers.next_deadline(),
            Phase::Closing { deadline, .. } => deadline,
            Phase::Pending | Phase::Closed => None,
        }
    }

    /// True while the endpoint is started and no close has been requested: the runtime reads
    /// from the socket only then.
    pub fn wants_read(&self) -> bool {
        self.state.is_open()
    }

    /// True once the endpoint has ended: `stop_protocol` has run (or it never started) and
    /// [`reason`](Self::reason) says why. The same predicate as
    /// [`Connection::is_ended`](crate::stream::Connection::is_ended).
    pub fn is_ended(&self) -> bool {
        self.state.phase == Phase::Closed
    }

    /// Why the endpoint ended, once it has.
    pub fn reason(&self) -> Option<&Reason> {
        self.reason.as_ref()
    }

    /// Our socket's address, once started.
    pub fn local(&self) -> Option<SocketAddr> {
        self.state.local
    }

    /// The connected peer, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.state.peer
    }

    /// Outputs waiting to be pulled.
    pub fn queued(&self) -> usize {
        self.state.queue.len()
    }

    /// Payload bytes waiting to be pulled.
    pub fn queued_bytes(&self) -> usize {
        self.state.queued_bytes
    }

    /// Traffic counters.
    pub fn stats(&self) -> &Stats {
        &self.state.stats
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        &self.protocol
    }

    /// The protocol, mutably (for tests and for runtimes that inspect it).
    pub fn protocol_mut(&mut self) -> &mut P {
        &mut self.protocol
    }

    /// Gives the protocol back, typically once the endpoint is closed, so its results can be
    /// read.
    pub fn into_protocol(self) -> P {
        self.protocol
    }

    // ----- internals ----------------------------------------------------------------------

    /// The protocol's transport, for tests that act as the protocol would.
    #[cfg(test)]
    pub(crate) fn transport(&mut self) -> DatagramTransport<'_> {
        DatagramTransport {
            state: &mut self.state,
        }
    }

    /// Ends a live endpoint at once, dropping whatever is queued.
    fn end(&mut self, reason: Reason) {
        match self.state.phase {
            Phase::Open | Phase::Closing { .. } => self.finish(reason),
            Phase::Pending => {
                self.state.phase = Phase::Closed;
                self.reason = Some(reason);
                self.terminal = Some(Action::Close);
            }
            Phase::Closed => {}
        }
    }

    /// Delivers `stop_protocol` once and queues the close.
    fn finish(&mut self, reason: Reason) {
        self.state.phase = Phase::Closed;
        self.state.queue.clear();
        self.state.queued_bytes = 0;
        self.state.timers.clear();
        self.protocol.stop_protocol(&reason);
        self.reason = Some(reason);
        self.terminal = Some(Action::Close);
    }
}

impl<P: DatagramProtocol + core::fmt::Debug> core::fmt::Debug for Endpoint<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Endpoint")
            .field("protocol", &self.protocol)
            .field("phase", &self.state.phase)
            .field("local", &self.state.local)
            .field("peer", &self.state.peer)
            .field("queued", &self.state.queue.len())
            .finish_non_exhaustive()
    }
}
