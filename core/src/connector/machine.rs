//! `Connector`: the sans-IO client state machine that decides when to dial (Twisted FA-2, RC-*).

use core::net::SocketAddr;
use core::time::Duration;

use crate::connector::{Backoff, BackoffConfig, ClientFactory, Retry};
use crate::reason::{Reason, Timeout};
use crate::time::Instant;

/// Settings of a [`Connector`].
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// How long one attempt may take (Twisted DF-7: 30 s). `None`: the OS decides.
    pub connect_timeout: Option<Duration>,
    /// The reconnect schedule used when the factory answers [`Retry::Backoff`].
    pub backoff: BackoffConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            connect_timeout: Some(Duration::from_secs(30)),
            backoff: Default::default(),
        }
    }
}

/// What the runtime must do for a [`Connector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a connection attempt, then report it with `handle_connected` (and take the
    /// protocol with `poll_protocol`) or `handle_connect_failed`.
    Dial,
    /// Give up the attempt in progress (it timed out or was stopped); report nothing for it.
    CancelDial,
}

/// Where a connector is (Twisted FA-2: disconnected → connecting → connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created, `start` not called yet.
    Idle,
    /// Waiting for the retry delay to pass.
    Waiting {
        /// When the next attempt starts.
        until: Instant,
    },
    /// An attempt is in progress.
    Connecting {
        /// When it times out.
        deadline: Option<Instant>,
    },
    /// A connection is established.
    Connected,
    /// Finished: the factory said stop, retries ran out, or `stop_trying` was called.
    /// [`Connector::is_ended`] is true from here on.
    Stopped,
}

/// Client-side state machine: dials, times attempts out, and asks its factory whether to retry.
///
/// It reads like the other two machines: inputs are [`start`](Self::start) and the
/// `handle_*` methods, each taking the time; outputs are pulled with
/// [`poll_action`](Self::poll_action) (dial, cancel a dial), [`poll_protocol`](Self::poll_protocol)
/// (the protocol for a socket that just connected) and [`next_timeout`](Self::next_timeout);
/// [`is_ended`](Self::is_ended) says it will never dial again. The runtime reports each
/// attempt's outcome and the end of each connection. The backoff resets as soon as a
/// connection is made.
///
/// ```
/// # use bytes::BytesMut;
/// # use loomwork::{Instant, Reason, stream::{Protocol, Transport}};
/// use loomwork::connector::{self, ClientFactory, Connector, Retry};
/// # struct P;
/// # impl Protocol for P { type Message = (); fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {} }
/// struct F;
/// impl ClientFactory for F {
///     type Protocol = P;
///     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<P> { Some(P) }
///     fn connection_failed(&mut self, _: &Reason) -> Retry { Retry::Backoff }
/// }
/// let mut c = Connector::new(F, connector::Config::default());
/// c.start(Instant::ZERO);
/// assert_eq!(c.poll_action(), Some(connector::Action::Dial));
/// c.handle_connect_failed(Instant::ZERO, Reason::Refused);
/// // Retry after exactly the initial delay (1 s), jitter aside.
/// let next = c.next_timeout().unwrap();
/// c.handle_timeout(next);
/// assert_eq!(c.poll_action(), Some(connector::Action::Dial));
/// ```
#[derive(Debug)]
pub struct Connector<F: ClientFactory> {
    factory: F,
    backoff: Backoff,
    connect_timeout: Option<Duration>,
    state: State,
    action: Option<Action>,
    /// Built for the socket that just connected, until the runtime takes it.
    protocol: Option<F::Protocol>,
    stop_after_connection: bool,
    attempts: u64,
}

impl<F: ClientFactory> Connector<F> {
    /// An idle connector.
    pub fn new(factory: F, config: Config) -> Self {
        Connector {
            factory,
            backoff: Backoff::new(config.backoff),
            connect_timeout: config.connect_timeout,
            state: State::Idle,
            action: None,
            protocol: None,
            stop_after_connection: false,
            attempts: 0,
        }
    }

    /// Starts the first attempt (Twisted's `connector.connect()`). Ignored unless idle.
    pub fn start(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.start_attempt(now);
        }
    }

    /// The attempt succeeded, the socket is connected to `peer`: the backoff resets and the
    /// factory builds the protocol, which the runtime takes with
    /// [`poll_protocol`](Self::poll_protocol). If the factory refuses, the connector carries on
    /// as if that connection had been lost with [`Reason::Rejected`], and the runtime closes
    /// the socket.
    pub fn handle_connected(&mut self, now: Instant, peer: SocketAddr) {
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        self.state = State::Connected;
        self.backoff.reset();
        self.protocol = self.factory.build_protocol(peer);
        if self.protocol.is_none() {
            self.handle_connection_lost(now, Reason::Rejected);
        }
    }

    /// The attempt failed: the factory decides whether to retry.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: Reason) {
        if matches!(self.state, State::Connecting { .. }) {
            let retry = self.factory.connection_failed(&reason);
            self.apply(now, retry);
        }
    }

    /// The established connection ended (after the protocol's `connection_lost`).
    pub fn handle_connection_lost(&mut self, now: Instant, reason: Reason) {
        if self.state == State::Connected {
            let retry = self.factory.connection_lost(&reason);
            let retry = if self.stop_after_connection {
                Retry::Stop
            } else {
                retry
            };
            self.apply(now, retry);
        }
    }

    /// Time has passed: starts a due retry, or times out the attempt in progress.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::Waiting { until } if now >= until => self.start_attempt(now),
            State::Connecting {
                deadline: Some(deadline),
            } if now >= deadline => {
                self.action = Some(Action::CancelDial);
                let retry = self
                    .factory
                    .connection_failed(&Reason::TimedOut(Timeout::Connect));
                self.apply(now, retry);
            }
            _ => {}
        }
    }

    /// Stops for good (Twisted RC-7): cancels a pending retry or attempt; an established
    /// connection stays up, but is not re-established after it ends.
    pub fn stop_trying(&mut self) {
        match self.state {
            State::Connecting { .. } => {
                self.action = Some(Action::CancelDial);
                self.state = State::Stopped;
            }
            State::Connected => self.stop_after_connection = true,
            _ => self.state = State::Stopped,
        }
    }

    /// The next thing the runtime must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.action.take()
    }

    /// The protocol to run on the socket reported by
    /// [`handle_connected`](Self::handle_connected); `None` right after it means the factory
    /// refused the connection and the socket must be closed.
    pub fn poll_protocol(&mut self) -> Option<F::Protocol> {
        self.protocol.take()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { until } => Some(until),
            State::Connecting { deadline } => deadline,
            _ => None,
        }
    }

    /// The deadline of the attempt in progress, for runtimes whose connect call takes one.
    pub fn attempt_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Connecting { deadline } => deadline,
            _ => None,
        }
    }

    /// Where the connector is.
    pub fn state(&self) -> State {
        self.state
    }

    /// True once the connector will never dial again (its factory said stop, retries ran
    /// out, or [`stop_trying`](Self::stop_trying) was called and no connection is up).
    pub fn is_ended(&self) -> bool {
        self.state == State::Stopped
    }

    /// Attempts started so far.
    pub fn attempts(&self) -> u64 {
        self.attempts
    }

    /// The factory.
    pub fn factory(&self) -> &F {
        &self.factory
    }

    /// The factory, mutably.
    pub fn factory_mut(&mut self) -> &mut F {
        &mut self.factory
    }

    /// Consumes the connector, returning its factory.
    pub fn into_factory(self) -> F {
        self.factory
    }

    fn start_attempt(&mut self, now: Instant) {
        self.attempts += 1;
        let deadline = self.connect_timeout.map(|t| now + t);
        self.state = State::Connecting { deadline };
        // A CancelDial for the previous attempt is superseded by the new Dial: runtimes drop
        // any attempt in flight when told to dial.
        self.action = Some(Action::Dial);
        self.factory.started_connecting();
    }

    fn apply(&mut self, now: Instant, retry: Retry) {
        let delay = match retry {
            Retry::Stop => None,
            Retry::Backoff => self.backoff.next_delay(),
            Retry::After(delay) => Some(delay),
        };
        self.state = match delay {
            Some(delay) => State::Waiting { until: now + delay },
            None => State::Stopped,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::{Protocol, Transport};
    use alloc::vec::Vec;
    use bytes::BytesMut;

    struct Nop;
    impl Protocol for Nop {
        type Message = ();
        fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    }

    #[derive(Default)]
    struct Recorder {
        failures: Vec<Reason>,
        losses: Vec<Reason>,
        started: u32,
        answer: Option<Retry>,
    }
    impl ClientFactory for Recorder {
        type Protocol = Nop;
        fn started_connecting(&mut self) {
            self.started += 1;
        }
        fn build_protocol(&mut self, _: SocketAddr) -> Option<Nop> {
            Some(Nop)
        }
        fn connection_failed(&mut self, reason: &Reason) -> Retry {
            self.failures.push(reason.clone());
            self.answer.unwrap_or(Retry::Backoff)
        }
        fn connection_lost(&mut self, reason: &Reason) -> Retry {
            self.losses.push(reason.clone());
            self.answer.unwrap_or(Retry::Backoff)
        }
    }

    fn config() -> Config {
        Config {
            connect_timeout: Some(Duration::from_secs(30)),
            backoff: BackoffConfig {
                jitter: 0.0,
                ..Default::default()
            },
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:80".parse().unwrap()
    }

    #[test]
    fn first_retry_waits_exactly_the_initial_delay() {
        let mut c = Connector::new(Recorder::default(), config());
        c.start(Instant::ZERO);
        assert_eq!(c.poll_action(), Some(Action::Dial));
        c.handle_connect_failed(Instant::from_secs(1), Reason::Refused);
        assert_eq!(c.next_timeout(), Some(Instant::from_secs(2)));
        c.handle_timeout(Instant::from_millis(1999));
        assert_eq!(c.poll_action(), None, "never early");
        c.handle_timeout(Instant::from_secs(2));
        assert_eq!(c.poll_action(), Some(Action::Dial));
        assert_eq!(c.factory().started, 2);
    }

    #[test]
    fn connect_timeout_fails_the_attempt_and_retries() {
        let mut c = Connector::new(Recorder::default(), config());
        c.start(Instant::ZERO);
        c.poll_action();
        assert_eq!(c.next_timeout(), Some(Instant::from_secs(30)));
        c.handle_timeout(Instant::from_secs(30));
        assert_eq!(c.poll_action(), Some(Action::CancelDial));
        assert_eq!(c.factory().failures, [Reason::TimedOut(Timeout::Connect)]);
        assert_eq!(
            c.state(),
            State::Waiting {
                until: Instant::from_secs(31)
            }
        );
    }

    #[test]
    fn delay_resets_once_connected() {
        let mut c = Connector::new(Recorder::default(), config());
        c.start(Instant::ZERO);
        let mut now = Instant::ZERO;
        for _ in 0..3 {
            c.handle_connect_failed(now, Reason::Refused);
            now = c.next_timeout().unwrap();
            c.handle_timeout(now);
        }
        c.handle_connected(now, peer());
        assert!(c.poll_protocol().is_some());
        c.handle_connection_lost(now, Reason::Reset);
        assert_eq!(c.next_timeout(), Some(now + Duration::from_secs(1)));
        assert_eq!(c.factory().losses, [Reason::Reset]);
    }

    #[test]
    fn stop_answer_stops() {
        let f = Recorder {
            answer: Some(Retry::Stop),
            ..Default::default()
        };
        let mut c = Connector::new(f, config());
        c.start(Instant::ZERO);
        c.handle_connect_failed(Instant::ZERO, Reason::Refused);
        assert!(c.is_ended());
        assert_eq!(c.next_timeout(), None);
    }

    #[test]
    fn stop_trying_while_connected_prevents_the_reconnect() {
        let mut c = Connector::new(Recorder::default(), config());
        c.start(Instant::ZERO);
        c.handle_connected(Instant::ZERO, peer());
        c.stop_trying();
        assert_eq!(c.state(), State::Connected);
        c.handle_connection_lost(Instant::ZERO, Reason::Done);
        assert!(c.is_ended());
    }

    #[test]
    fn stale_reports_are_ignored() {
        let mut c = Connector::new(Recorder::default(), config());
        c.handle_connect_failed(Instant::ZERO, Reason::Refused);
        c.handle_connected(Instant::ZERO, peer());
        assert!(c.poll_protocol().is_none());
        assert_eq!(c.state(), State::Idle);
        assert!(c.factory().failures.is_empty());
    }
}
