//! `DatagramRecorder`: one datagram protocol, no network; the recorder's twin for an
//! [`Endpoint`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use crate::datagram::{Action, Command, Config, DatagramProtocol, Endpoint};
use crate::reason::Reason;
use crate::testing::virtual_time;
use crate::time::Instant;

/// How a [`DatagramRecorder`] is set up.
#[derive(Clone, Debug)]
pub struct DatagramRecorderConfig {
    /// The endpoint's settings.
    pub endpoint: Config,
    /// Our socket's address (default `10.0.0.1:12345`, as the stream recorder's, DF-20).
    pub local: SocketAddr,
    /// The virtual time the endpoint starts at.
    pub start: Instant,
}

impl Default for DatagramRecorderConfig {
    fn default() -> Self {
        DatagramRecorderConfig {
            endpoint: Config::default(),
            local: SocketAddr::from(([10, 0, 0, 1], 12_345)),
            start: Instant::ZERO,
        }
    }
}

/// One datagram protocol with no network: feed it datagrams, move a virtual clock, read back
/// what it sent and which socket commands it gave, whether it closed and why.
///
/// The recorder runs a real [`Endpoint`] and plays the runtime: every send is recorded (and
/// succeeds), every [`Command`] is recorded and reported carried out, [`Action::Close`] ends
/// the socket. Messages posted with [`post`](Self::post) are delivered on the next
/// [`step`](Self::step), in order. Every input ends with one step.
///
/// ```
/// use loomwork::bytes::Bytes;
/// use loomwork::datagram::{DatagramProtocol, DatagramTransport};
/// use loomwork::testing::DatagramRecorder;
/// # use std::net::SocketAddr;
/// # struct Echo;
/// # impl DatagramProtocol for Echo {
/// #     type Message = ();
/// #     fn datagram_received(&mut self, data: Bytes, from: SocketAddr, _: bool,
/// #                          tx: &mut DatagramTransport<'_>) {
/// #         let _ = tx.send_to(data, from);
/// #     }
/// # }
///
/// let peer = "192.168.1.1:54321".parse().unwrap();
/// let mut rec = DatagramRecorder::new(Echo);
/// rec.receive(&b"ping"[..], peer);
/// assert_eq!(rec.take_sent(), [(Bytes::from("ping"), Some(peer))]);
/// ```
pub struct DatagramRecorder<P: DatagramProtocol> {
    endpoint: Endpoint<P>,
    now: Instant,
    mail: VecDeque<P::Message>,
    sent: Vec<(Bytes, Option<SocketAddr>)>,
    commands: Vec<Command>,
    closed: bool,
}

impl<P: DatagramProtocol> DatagramRecorder<P> {
    /// `protocol`, started at time zero with the default [`DatagramRecorderConfig`].
    pub fn new(protocol: P) -> Self {
        Self::with_config(protocol, DatagramRecorderConfig::default())
    }

    /// `protocol`, started as `config` says (`start_protocol`, then one step).
    pub fn with_config(protocol: P, config: DatagramRecorderConfig) -> Self {
        let mut endpoint = Endpoint::new(protocol, config.endpoint);
        endpoint.handle_started(config.start, config.local);
        let mut recorder = DatagramRecorder {
            endpoint,
            now: config.start,
            mail: VecDeque::new(),
            sent: Vec::new(),
            commands: Vec::new(),
            closed: false,
        };
        recorder.step();
        recorder
    }

    // ----- inputs -------------------------------------------------------------------------

    /// A whole datagram arrived from `from` (filtered out, as by the OS, if the endpoint is
    /// connected to somebody else).
    pub fn receive(&mut self, data: impl Into<Bytes>, from: SocketAddr) {
        self.endpoint
            .handle_datagram(self.now, data.into(), from, false);
        self.step();
    }

    /// A datagram too long for the receive size arrived; `data` is its beginning.
    pub fn receive_truncated(&mut self, data: impl Into<Bytes>, from: SocketAddr) {
        self.endpoint
            .handle_datagram(self.now, data.into(), from, true);
        self.step();
    }

    /// The OS reported a failed send (see [`Endpoint::handle_send_error`]); a
    /// [`Reason::Refused`] with `to == None` is a connected peer's ICMP port-unreachable.
    pub fn send_failed(&mut self, to: Option<SocketAddr>, reason: Reason) {
        self.endpoint.handle_send_error(self.now, to, reason);
        self.step();
    }

    /// Posts `message` for the protocol's `message` callback; it is delivered in this call's
    /// step, after anything posted before it. Gives it back if the endpoint has ended.
    pub fn post(&mut self, message: P::Message) -> Result<(), P::Message> {
        if self.endpoint.is_ended() {
            return Err(message);
        }
        self.mail.push_back(message);
        self.step();
        Ok(())
    }

    /// Closes from outside the protocol (see [`Endpoint::close`]).
    pub fn close(&mut self) {
        self.endpoint.close(self.now);
        self.step();
    }

    /// Aborts from outside the protocol (see [`Endpoint::abort`]).
    pub fn abort(&mut self) {
        self.endpoint.abort(self.now);
        self.step();
    }

    /// Moves the clock forward by `by`, firing every deadline on the way at its own time.
    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    /// Moves the clock to `at` (no-op if it is not later), as [`advance`](Self::advance) does.
    pub fn advance_to(&mut self, at: Instant) {
        virtual_time::advance_to(self, at);
    }

    /// One turn of a runtime's loop: deliver the messages posted so far, then carry out every
    /// action. True if anything happened.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        // What a message handler could post goes through `post` only, which steps itself.
        while let Some(message) = self.mail.pop_front() {
            self.endpoint.handle_message(self.now, message);
            moved = true;
        }
        while let Some(action) = self.endpoint.poll_action() {
            moved = true;
            match action {
                Action::Send(transmit) => self.sent.push((transmit.data, transmit.to)),
                Action::Command(command) => {
                    self.commands.push(command.clone());
                    self.endpoint
                        .handle_command_result(self.now, command, Ok(()));
                }
                Action::Close => self.closed = true,
            }
        }
        if self.endpoint.is_ended() {
            self.mail.clear();
        }
        moved
    }

    // ----- outputs ------------------------------------------------------------------------

    /// Takes the datagrams sent since the last take, in order, with their destinations
    /// (`None`: the connected peer).
    pub fn take_sent(&mut self) -> Vec<(Bytes, Option<SocketAddr>)> {
        core::mem::take(&mut self.sent)
    }

    /// The datagrams sent since the last [`take_sent`](Self::take_sent).
    pub fn sent(&self) -> &[(Bytes, Option<SocketAddr>)] {
        &self.sent
    }

    /// The socket commands carried out so far, in order.
    pub fn commands(&self) -> &[Command] {
        &self.commands
    }

    /// True once the socket is closed ([`Action::Close`] carried out).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// True once the protocol has ended (`stop_protocol` has run).
    pub fn is_ended(&self) -> bool {
        self.endpoint.is_ended()
    }

    /// Why the endpoint ended, once it has.
    pub fn reason(&self) -> Option<&Reason> {
        self.endpoint.reason()
    }

    /// The endpoint's next deadline.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.endpoint.next_timeout()
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// The connected peer, if any.
    pub fn peer(&self) -> Option<SocketAddr> {
        self.endpoint.peer()
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        self.endpoint.protocol()
    }

    /// The protocol, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        self.endpoint.protocol_mut()
    }

    /// The endpoint (for its stats, say).
    pub fn endpoint(&self) -> &Endpoint<P> {
        &self.endpoint
    }

    /// The endpoint, mutably, to feed it inputs the recorder has no method for (a failed
    /// command, say). Call [`step`](Self::step) afterwards to record what they caused.
    pub fn endpoint_mut(&mut self) -> &mut Endpoint<P> {
        &mut self.endpoint
    }
}

impl<P: DatagramProtocol> virtual_time::VirtualTime for DatagramRecorder<P> {
    fn clock(&mut self) -> &mut Instant {
        &mut self.now
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.endpoint.next_timeout()
    }
    fn handle_timeout(&mut self) {
        self.endpoint.handle_timeout(self.now);
    }
    fn step(&mut self) -> bool {
        DatagramRecorder::step(self)
    }
}

impl<P: DatagramProtocol + core::fmt::Debug> core::fmt::Debug for DatagramRecorder<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DatagramRecorder")
            .field("now", &self.now)
            .field("endpoint", &self.endpoint)
            .field("sent", &self.sent.len())
            .field("commands", &self.commands)
            .finish_non_exhaustive()
    }
}
