//! `DatagramSession`: one run of a schedule against a fresh [`Endpoint`] around the user's
//! protocol in a [`Watched`] wrapper. The session plays the runtime and the socket: it carries
//! out outputs as the runtimes' output loop does (a datagram the socket cannot take yet stays
//! in hand), keeps the clock, and checks every invariant after every operation.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt::Debug;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use super::super::trace::Trace;
use super::watched::Watched;
use super::{DatagramCheck, DatagramOp, DatagramOutcome};
use crate::datagram::{
    Action, Command, Config, DatagramProtocol, Endpoint, Transmit, MAX_IPV4_PAYLOAD,
    MAX_IPV6_PAYLOAD,
};
use crate::reason::Reason;
use crate::testing::Violation;
use crate::time::Instant;

/// Deadlines that may come due without the clock moving before the session calls it a timer
/// storm: a protocol that re-arms a zero delay forever would spin a runtime's loop.
const MAX_FIRES_AT_ONE_INSTANT: u32 = 10_000;

pub(crate) struct DatagramSession<'c, P: DatagramProtocol> {
    check: &'c DatagramCheck<P>,
    endpoint: Endpoint<Watched<P>>,
    now: Instant,
    /// The socket takes sends.
    writable: bool,
    /// A datagram pulled from the endpoint that the socket has not taken yet.
    in_hand: Option<Transmit>,
    /// The peer the socket is connected to, as the commands carried out left it.
    socket_peer: Option<SocketAddr>,
    /// The next command carried out fails with this.
    failing_command: Option<Reason>,
    sent: Vec<(Bytes, Option<SocketAddr>)>,
    commands: Vec<Command>,
    /// [`Action::Close`]s pulled.
    closes: usize,
    /// When the endpoint was first seen closing.
    close_asked: Option<Instant>,
    /// The first thing the endpoint output that it must not have.
    breach: Option<String>,
    trace: Trace<DatagramOp<Infallible>>,
}

impl<'c, P> DatagramSession<'c, P>
where
    P: DatagramProtocol + 'static,
    P::Message: Debug + 'static,
{
    pub(crate) fn new(check: &'c DatagramCheck<P>) -> Self {
        Self::with_config(check, check.config.clone())
    }

    /// A session whose endpoint runs with `config` rather than the check's.
    pub(crate) fn with_config(check: &'c DatagramCheck<P>, config: Config) -> Self {
        let mut endpoint = Endpoint::new(Watched::new((check.make)()), config);
        endpoint.handle_started(Instant::ZERO, check.local);
        DatagramSession {
            check,
            endpoint,
            now: Instant::ZERO,
            writable: true,
            in_hand: None,
            socket_peer: None,
            failing_command: None,
            sent: Vec::new(),
            commands: Vec::new(),
            closes: 0,
            close_asked: None,
            breach: None,
            trace: Trace::new(),
        }
    }

    /// Carries out what `start_protocol` asked for, then checks everything.
    pub(crate) fn start(&mut self) -> Result<(), Violation> {
        self.trace.note("start_protocol");
        self.advance(Duration::ZERO)?;
        self.check_all()
    }

    /// Runs one operation, then checks everything.
    pub(crate) fn apply(&mut self, op: DatagramOp<P::Message>) -> Result<(), Violation> {
        self.trace.op(op.traced());
        let now = self.now;
        match op {
            DatagramOp::Send {
                peer,
                data,
                truncated,
            } => {
                let from = self.check.peer_address(peer);
                self.endpoint
                    .handle_datagram(now, Bytes::from(data), from, truncated);
            }
            DatagramOp::SendFailed { to, reason } => {
                let to = to.map(|peer| self.check.peer_address(peer));
                self.endpoint.handle_send_error(now, to, reason);
            }
            DatagramOp::CommandFailed { reason } => self.failing_command = Some(reason),
            DatagramOp::Writable { on } => self.writable = on,
            DatagramOp::Drain { max } => self.flush(max),
            DatagramOp::Advance(by) => self.advance(by)?,
            DatagramOp::NextDeadline => {
                if let Some(next) = self.endpoint.next_timeout() {
                    self.advance(next.saturating_duration_since(now))?;
                }
            }
            DatagramOp::Post { message } => self.endpoint.handle_message(now, message),
            DatagramOp::Close => self.endpoint.close(now),
            DatagramOp::Abort => self.endpoint.abort(now),
            DatagramOp::SocketFailed { reason } => self.endpoint.handle_error(now, reason),
        }
        // A runtime handles a deadline that has passed before it waits again.
        self.advance(Duration::ZERO)?;
        self.check_all()
    }

    /// Moves the clock forward by `by`, firing each deadline at its own time and carrying out
    /// what it caused before the next; also fires what is due now.
    fn advance(&mut self, by: Duration) -> Result<(), Violation> {
        let target = self.now.saturating_add(by);
        let mut fires_here = 0;
        self.pull_ready();
        while let Some(next) = self.endpoint.next_timeout().filter(|&next| next <= target) {
            if next <= self.now {
                fires_here += 1;
                if fires_here > MAX_FIRES_AT_ONE_INSTANT {
                    return Err(self.violation(format!(
                        "timer storm: deadlines kept coming due at {:?} ({} fires without \
                         time moving)",
                        self.now, MAX_FIRES_AT_ONE_INSTANT
                    )));
                }
            } else {
                fires_here = 0;
                self.now = next;
            }
            self.endpoint.handle_timeout(self.now);
            self.pull_ready();
            if self.is_closing() && self.endpoint.next_timeout().is_some_and(|t| t <= self.now) {
                return Err(self.violation(format!(
                    "a close outlived its deadline at {next:?}: handled at {:?}, still closing",
                    self.now
                )));
            }
        }
        self.now = self.now.max(target);
        Ok(())
    }

    /// What a runtime does between waits: carries out every output it can, then notes a
    /// close that has begun.
    fn pull_ready(&mut self) {
        self.flush(0);
        if self.is_closing() && self.close_asked.is_none() {
            self.close_asked = Some(self.now);
        }
    }

    /// The runtimes' output loop (`loomwork_net::udp::flush`): the datagram in hand goes
    /// first; a socket that takes no sends (beyond `extra_sends` more) leaves the datagram in
    /// hand and stops the loop; commands and the final close never wait for the socket; once
    /// the endpoint has ended, the datagram in hand is dropped with the rest.
    fn flush(&mut self, mut extra_sends: usize) {
        if self.endpoint.is_ended() {
            self.in_hand = None;
        }
        loop {
            let transmit = match self.in_hand.take() {
                Some(transmit) => transmit,
                None => {
                    let Some(action) = self.endpoint.poll_action() else {
                        return;
                    };
                    if self.closes > 0 {
                        // A runtime has stopped at the close; pulling on would only repeat it.
                        self.breach(format!("{action:?} output after the final Close"));
                        return;
                    }
                    match action {
                        Action::Send(transmit) => transmit,
                        Action::Command(command) => {
                            self.carry_out(command);
                            continue;
                        }
                        Action::Close => {
                            self.closes += 1;
                            continue;
                        }
                    }
                }
            };
            if !self.writable {
                if extra_sends == 0 {
                    self.in_hand = Some(transmit);
                    return;
                }
                extra_sends -= 1;
            }
            let to = transmit.to.or(self.socket_peer);
            self.check_size(transmit.data.len(), to);
            self.sent.push((transmit.data, to));
        }
    }

    /// Carries out a socket command, or fails it as the schedule said.
    fn carry_out(&mut self, command: Command) {
        self.commands.push(command.clone());
        let result = match self.failing_command.take() {
            Some(reason) => Err(reason),
            None => {
                match command {
                    Command::Connect(peer) => self.socket_peer = Some(peer),
                    Command::Disconnect => self.socket_peer = None,
                    _ => {}
                }
                Ok(())
            }
        };
        self.endpoint
            .handle_command_result(self.now, command, result);
    }

    /// A send must fit its destination's family (the socket's, when it has none) and the
    /// endpoint's limit.
    fn check_size(&mut self, len: usize, to: Option<SocketAddr>) {
        let v6 = match to.or(self.endpoint.local()) {
            Some(addr) => addr.is_ipv6(),
            None => false,
        };
        let family = if v6 {
            MAX_IPV6_PAYLOAD
        } else {
            MAX_IPV4_PAYLOAD
        };
        let max = family.min(self.endpoint.config().max_send_size);
        if len > max {
            self.breach(format!(
                "a send of {len} bytes to {to:?}, over the {max} allowed"
            ));
        }
    }

    /// Started, a close asked, `stop_protocol` not run yet.
    fn is_closing(&self) -> bool {
        let e = &self.endpoint;
        e.local().is_some() && !e.wants_read() && !e.is_ended()
    }

    fn breach(&mut self, what: String) {
        if self.breach.is_none() {
            self.breach = Some(what);
        }
    }

    /// The end of a run: a close asked from outside, the socket taking everything; the
    /// endpoint must stop within its close deadline, once, with one final close.
    pub(crate) fn finish(&mut self) -> Result<(), Violation> {
        self.trace
            .note("ending: a close asked from outside, the socket writable");
        self.writable = true;
        self.endpoint.close(self.now);
        self.advance(Duration::ZERO)?;
        self.check_all()?;
        let within =
            self.endpoint.config().close_timeout.unwrap_or_default() + Duration::from_secs(1);
        self.advance(within)?;
        self.check_all()?;
        if !self.endpoint.is_ended() || self.closes != 1 {
            return Err(self.violation(format!(
                "still open {within:?} after a close was asked for (stopped: {}, final Close \
                 actions: {})",
                self.endpoint.is_ended(),
                self.closes
            )));
        }
        Ok(())
    }

    /// What the run produced.
    pub(crate) fn outcome(&self) -> DatagramOutcome {
        DatagramOutcome {
            sent: self.sent.clone(),
            commands: self.commands.clone(),
            reason: self.endpoint.reason().cloned(),
        }
    }

    pub(crate) fn violation(&self, what: String) -> Violation {
        Violation {
            connection: None,
            peer: None,
            what,
            trace: self.trace.lines(),
        }
    }

    fn check_all(&self) -> Result<(), Violation> {
        self.check_endpoint().map_err(|what| self.violation(what))
    }

    /// Every invariant of the endpoint, its protocol's lifecycle, and the user's.
    fn check_endpoint(&self) -> Result<(), String> {
        if let Some(breach) = &self.breach {
            return Err(breach.clone());
        }
        let e = &self.endpoint;
        let watched = e.protocol();
        if let Some(breach) = &watched.breach {
            return Err(breach.clone());
        }
        if watched.start_count() != 1 {
            return Err(format!(
                "start_protocol ran {} times",
                watched.start_count()
            ));
        }
        let stops = watched.stop_count();
        if stops > 1 || (stops == 1) != e.is_ended() {
            return Err(format!(
                "stop_protocol ran {stops} times, endpoint ended: {}",
                e.is_ended()
            ));
        }
        if e.is_ended() && e.reason() != watched.stop_reason.as_ref() {
            return Err(format!(
                "ended with {:?} but stop_protocol was told {:?}",
                e.reason(),
                watched.stop_reason
            ));
        }
        if self.closes > 1 || (self.closes == 1 && !e.is_ended()) {
            return Err(format!(
                "{} final Close actions, endpoint ended: {}",
                self.closes,
                e.is_ended()
            ));
        }
        let config = e.config();
        if let Some(max) = config.max_queued.filter(|&max| e.queued() > max) {
            return Err(format!(
                "{} outputs queued, over the limit of {max}",
                e.queued()
            ));
        }
        if let Some(max) = config
            .max_queued_bytes
            .filter(|&max| e.queued_bytes() > max)
        {
            return Err(format!(
                "{} bytes queued, over the limit of {max}",
                e.queued_bytes()
            ));
        }
        if e.is_ended() && (e.queued() > 0 || e.queued_bytes() > 0) {
            return Err("outputs still queued after stop_protocol".into());
        }
        if e.is_ended() && e.next_timeout().is_some() {
            return Err("a deadline on an endpoint that has stopped".into());
        }
        if self.is_closing() {
            match (e.next_timeout(), config.close_timeout, self.close_asked) {
                (None, Some(_), _) => return Err("a close with no deadline".into()),
                (Some(deadline), Some(timeout), Some(asked))
                    if deadline > asked.saturating_add(timeout) =>
                {
                    return Err(format!(
                        "a close deadline at {deadline:?}, past close_timeout ({timeout:?}) \
                         after the close at {asked:?}"
                    ));
                }
                (Some(deadline), _, _) if deadline <= self.now => {
                    return Err(format!(
                        "a close outlived its deadline at {deadline:?} (now {:?})",
                        self.now
                    ));
                }
                _ => {}
            }
        }
        if let Some(invariant) = &self.check.invariant {
            invariant(&watched.inner)?;
        }
        Ok(())
    }
}
