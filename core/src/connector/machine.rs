//! `Connector`: the sans-IO client state machine that decides when to dial (Twisted FA-2, RC-*).

use core::net::SocketAddr;
use core::time::Duration;

use crate::connector::{Backoff, BackoffConfig, ClientFactory, Retry};
use crate::reason::{Reason, Timeout};
use crate::time::Instant;

/// Settings of a [`Connector`].
#[derive(Clone, Debug, PartialEq)]
pub struct ConnectorConfig {
    /// How long one attempt may take (Twisted DF-7: 30 s). `None`: the OS decides.
    pub connect_timeout: Option<Duration>,
    /// The reconnect schedule used when the factory answers [`Retry::Backoff`].
    pub backoff: BackoffConfig,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        ConnectorConfig {
            connect_timeout: Some(Duration::from_secs(30)),
            backoff: Default::default(),
        }
    }
}

/// What the runtime must do for a [`Connector`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorAction {
    /// Start a connection attempt, then report it with `handle_connected` or
    /// `handle_connect_failed`.
    Dial,
    /// Give up the attempt in progress (it timed out or was stopped); report nothing for it.
    CancelDial,
}

/// Where a connector is (Twisted FA-2: disconnected → connecting → connected).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorState {
    /// Created, `connect` not called yet.
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
    Stopped,
}

/// Client-side state machine: dials, times attempts out, and asks its factory whether to retry.
///
/// The runtime calls [`connect`](Self::connect), then drains [`poll_action`](Self::poll_action)
/// and wakes at [`next_timeout`](Self::next_timeout); it reports each attempt's outcome and the
/// end of each connection. The backoff resets as soon as a connection is made.
///
/// ```
/// # use bytes::BytesMut;
/// # use loomwork::{Instant, Reason, stream::{Protocol, Transport}};
/// use loomwork::connector::{ClientFactory, Connector, ConnectorAction, ConnectorConfig, Retry};
/// # struct P;
/// # impl Protocol for P { type Message = (); fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {} }
/// struct F;
/// impl ClientFactory for F {
///     type Protocol = P;
///     fn build_protocol(&mut self, _: std::net::SocketAddr) -> Option<P> { Some(P) }
///     fn connection_failed(&mut self, _: &Reason) -> Retry { Retry::Backoff }
/// }
/// let mut c = Connector::new(F, ConnectorConfig::default());
/// c.connect(Instant::ZERO);
/// assert_eq!(c.poll_action(), Some(ConnectorAction::Dial));
/// c.handle_connect_failed(Instant::ZERO, Reason::Refused);
/// // Retry after exactly the initial delay (1 s), jitter aside.
/// let next = c.next_timeout().unwrap();
/// c.handle_timeout(next);
/// assert_eq!(c.poll_action(), Some(ConnectorAction::Dial));
/// ```
#[derive(Debug)]
pub struct Connector<F: ClientFactory> {
    factory: F,
    backoff: Backoff,
    connect_timeout: Option<Duration>,
    state: ConnectorState,
    action: Option<ConnectorAction>,
    stop_after_connection: bool,
    attempts: u64,
}

impl<F: ClientFactory> Connector<F> {
    /// An idle connector.
    pub fn new(factory: F, config: ConnectorConfig) -> Self {
        Connector {
            factory,
            backoff: Backoff::new(config.backoff),
            connect_timeout: config.connect_timeout,
            state: ConnectorState::Idle,
            action: None,
            stop_after_connection: false,
            attempts: 0,
        }
    }

    /// Starts the first attempt. Ignored unless idle.
    pub fn connect(&mut self, now: Instant) {
        if self.state == ConnectorState::Idle {
            self.start_attempt(now);
        }
    }

    /// The attempt succeeded: the backoff resets and the factory builds the protocol.
    /// `None` (the factory refused) leaves the connector as if that connection had been lost
    /// with [`Reason::Rejected`]; the runtime closes the socket.
    pub fn handle_connected(&mut self, now: Instant, peer: SocketAddr) -> Option<F::Protocol> {
        if !matches!(self.state, ConnectorState::Connecting { .. }) {
            return None;
        }
        self.state = ConnectorState::Connected;
        self.backoff.reset();
        let protocol = self.factory.build_protocol(peer);
        if protocol.is_none() {
            self.handle_connection_lost(now, Reason::Rejected);
        }
        protocol
    }

    /// The attempt failed: the factory decides whether to retry.
    pub fn handle_connect_failed(&mut self, now: Instant, reason: Reason) {
        if matches!(self.state, ConnectorState::Connecting { .. }) {
            let retry = self.factory.connection_failed(&reason);
            self.apply(now, retry);
        }
    }

    /// The established connection ended (after the protocol's `connection_lost`).
    pub fn handle_connection_lost(&mut self, now: Instant, reason: Reason) {
        if self.state == ConnectorState::Connected {
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
            ConnectorState::Waiting { until } if now >= until => self.start_attempt(now),
            ConnectorState::Connecting {
                deadline: Some(deadline),
            } if now >= deadline => {
                self.action = Some(ConnectorAction::CancelDial);
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
            ConnectorState::Connecting { .. } => {
                self.action = Some(ConnectorAction::CancelDial);
                self.state = ConnectorState::Stopped;
            }
            ConnectorState::Connected => self.stop_after_connection = true,
            _ => self.state = ConnectorState::Stopped,
        }
    }

    /// The next thing the runtime must do.
    pub fn poll_action(&mut self) -> Option<ConnectorAction> {
        self.action.take()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn next_timeout(&self) -> Option<Instant> {
        match self.state {
            ConnectorState::Waiting { until } => Some(until),
            ConnectorState::Connecting { deadline } => deadline,
            _ => None,
        }
    }

    /// The deadline of the attempt in progress, for runtimes whose connect call takes one.
    pub fn attempt_deadline(&self) -> Option<Instant> {
        match self.state {
            ConnectorState::Connecting { deadline } => deadline,
            _ => None,
        }
    }

    /// Where the connector is.
    pub fn state(&self) -> ConnectorState {
        self.state
    }

    /// True once the connector will never dial again.
    pub fn is_stopped(&self) -> bool {
        self.state == ConnectorState::Stopped
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
        self.state = ConnectorState::Connecting { deadline };
        // A CancelDial for the previous attempt is superseded by the new Dial: runtimes drop
        // any attempt in flight when told to dial.
        self.action = Some(ConnectorAction::Dial);
        self.factory.started_connecting();
    }

    fn apply(&mut self, now: Instant, retry: Retry) {
        let delay = match retry {
            Retry::Stop => None,
            Retry::Backoff => self.backoff.next_delay(),
            Retry::After(delay) => Some(delay),
        };
        self.state = match delay {
            Some(delay) => ConnectorState::Waiting { until: now + delay },
            None => ConnectorState::Stopped,
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

    fn config() -> ConnectorConfig {
        ConnectorConfig {
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
        c.connect(Instant::ZERO);
        assert_eq!(c.poll_action(), Some(ConnectorAction::Dial));
        c.handle_connect_failed(Instant::from_secs(1), Reason::Refused);
        assert_eq!(c.next_timeout(), Some(Instant::from_secs(2)));
        c.handle_timeout(Instant::from_millis(1999));
        assert_eq!(c.poll_action(), None, "never early");
        c.handle_timeout(Instant::from_secs(2));
        assert_eq!(c.poll_action(), Some(ConnectorAction::Dial));
        assert_eq!(c.factory().started, 2);
    }

    #[test]
    fn connect_timeout_fails_the_attempt_and_retries() {
        let mut c = Connector::new(Recorder::default(), config());
        c.connect(Instant::ZERO);
        c.poll_action();
        assert_eq!(c.next_timeout(), Some(Instant::from_secs(30)));
        c.handle_timeout(Instant::from_secs(30));
        assert_eq!(c.poll_action(), Some(ConnectorAction::CancelDial));
        assert_eq!(c.factory().failures, [Reason::TimedOut(Timeout::Connect)]);
        assert_eq!(
            c.state(),
            ConnectorState::Waiting {
                until: Instant::from_secs(31)
            }
        );
    }

    #[test]
    fn delay_resets_once_connected() {
        let mut c = Connector::new(Recorder::default(), config());
        c.connect(Instant::ZERO);
        let mut now = Instant::ZERO;
        for _ in 0..3 {
            c.handle_connect_failed(now, Reason::Refused);
            now = c.next_timeout().unwrap();
            c.handle_timeout(now);
        }
        assert!(c.handle_connected(now, peer()).is_some());
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
        c.connect(Instant::ZERO);
        c.handle_connect_failed(Instant::ZERO, Reason::Refused);
        assert!(c.is_stopped());
        assert_eq!(c.next_timeout(), None);
    }

    #[test]
    fn stop_trying_while_connected_prevents_the_reconnect() {
        let mut c = Connector::new(Recorder::default(), config());
        c.connect(Instant::ZERO);
        c.handle_connected(Instant::ZERO, peer());
        c.stop_trying();
        assert_eq!(c.state(), ConnectorState::Connected);
        c.handle_connection_lost(Instant::ZERO, Reason::Done);
        assert!(c.is_stopped());
    }

    #[test]
    fn stale_reports_are_ignored() {
        let mut c = Connector::new(Recorder::default(), config());
        c.handle_connect_failed(Instant::ZERO, Reason::Refused);
        assert!(c.handle_connected(Instant::ZERO, peer()).is_none());
        assert_eq!(c.state(), ConnectorState::Idle);
        assert!(c.factory().failures.is_empty());
    }
}
