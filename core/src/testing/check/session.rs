//! `Session`: one run of a schedule against a server factory. Each accepted connection is a
//! [`Recorder`] around the user's protocol in a [`Watched`] wrapper; all share one virtual
//! clock, and every invariant is checked after every operation.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt::Debug;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::Bytes;

use super::trace::Trace;
use super::watched::Watched;
use super::{Ending, Op, Outcome, Served, StreamCheck, Violation};
use crate::stream::{Action, Config, Protocol, ServerFactory, ServerMessage};
use crate::testing::{PeerReads, Recorder, RecorderConfig};
use crate::time::Instant;

/// Rounds of stepping every connection before the session gives up waiting for quiet (a
/// protocol that keeps posting to itself is not a hang of the checker).
const MAX_SETTLE_ROUNDS: usize = 256;

/// Deadlines that may come due without the clock moving before the session calls it a timer
/// storm: a protocol that re-arms a zero delay forever would spin a runtime's loop.
const MAX_FIRES_AT_ONE_INSTANT: u32 = 10_000;

/// One connection of the session and its peer.
struct Peer<P: Protocol> {
    rec: Recorder<Watched<P>>,
    addr: SocketAddr,
    /// The peer reads everything written (or nothing).
    reading: bool,
    /// The factory's `connection_closed` has been called.
    reported: bool,
    /// Its ordinal among the connections accepted, for messages.
    ordinal: usize,
}

pub(crate) struct Session<'c, F: ServerFactory> {
    check: &'c StreamCheck<F>,
    config: Config,
    factory: F,
    peers: Vec<Peer<F::Protocol>>,
    now: Instant,
    attempts: usize,
    refused: usize,
    /// The largest read sent so far: the receive buffer may exceed its limit by one read.
    largest_read: usize,
    trace: Trace<Op<Infallible>>,
}

impl<'c, F> Session<'c, F>
where
    F: ServerFactory,
    ServerMessage<F>: Send + Debug + 'static,
{
    pub(crate) fn new(check: &'c StreamCheck<F>) -> Self {
        Self::with_config(check, check.config.clone())
    }

    /// A session whose connections run with `config` rather than the check's.
    pub(crate) fn with_config(check: &'c StreamCheck<F>, config: Config) -> Self {
        Session {
            check,
            config,
            factory: (check.make_factory)(),
            peers: Vec::new(),
            now: Instant::ZERO,
            attempts: 0,
            refused: 0,
            largest_read: 0,
            trace: Trace::new(),
        }
    }

    /// The connection settings of every connection.
    fn config(&self) -> &Config {
        &self.config
    }

    /// Runs one operation, then checks everything.
    pub(crate) fn apply(&mut self, op: Op<ServerMessage<F>>) -> Result<(), Violation> {
        self.trace.op(op.traced());
        match op {
            Op::Connect => self.connect(),
            Op::Send { conn, data } => {
                self.largest_read = self.largest_read.max(data.len());
                if let Some(peer) = self.pick(conn) {
                    peer.rec.receive(&data);
                }
            }
            Op::SendEof { conn } => {
                if let Some(peer) = self.pick(conn) {
                    peer.rec.receive_eof();
                }
            }
            Op::Reading { conn, on } => {
                if let Some(peer) = self.pick(conn) {
                    peer.reading = on;
                    peer.rec.set_peer_reads(reads(on));
                }
            }
            Op::Read { conn, max } => {
                if let Some(peer) = self.pick(conn) {
                    peer.rec.set_peer_reads(PeerReads::AtMost(max));
                    peer.rec.step();
                    peer.rec.set_peer_reads(reads(peer.reading));
                }
            }
            Op::Advance(by) => self.advance(by)?,
            Op::NextDeadline => {
                if let Some(next) = self.next_deadline() {
                    self.advance(next.saturating_duration_since(self.now))?;
                }
            }
            Op::Post { conn, message } => {
                if let Some(peer) = self.pick(conn) {
                    let _ = peer.rec.post(message);
                }
            }
            Op::Close { conn } => {
                if let Some(peer) = self.pick(conn) {
                    peer.rec.close();
                }
            }
            Op::Abort { conn } => {
                if let Some(peer) = self.pick(conn) {
                    peer.rec.abort();
                }
            }
            Op::Reset { conn } => {
                if let Some(peer) = self.pick(conn) {
                    peer.rec.reset();
                }
            }
        }
        self.settle();
        self.check_all()
    }

    /// A new connection, if the factory accepts it and the session has room.
    fn connect(&mut self) {
        if self.peers.len() >= self.check.max_connections {
            return;
        }
        self.attempts += 1;
        let ordinal = self.attempts;
        let addr = SocketAddr::from(([192, 168, 1, 1], 50_000 + ordinal as u16));
        let Some(protocol) = self.factory.build_protocol(addr) else {
            self.refused += 1;
            return;
        };
        let mut rec = Recorder::with_config(
            Watched::new(protocol, !self.check.lost_writes_allowed),
            RecorderConfig {
                connection: self.config().clone(),
                peer: addr,
                start: self.now,
                handle_id: ordinal as u64,
                ..RecorderConfig::default()
            },
        );
        rec.set_peer_reads(PeerReads::All);
        self.peers.push(Peer {
            rec,
            addr,
            reading: true,
            reported: false,
            ordinal,
        });
    }

    /// The `n`th connection not ended yet, modulo their number.
    fn pick(&mut self, n: usize) -> Option<&mut Peer<F::Protocol>> {
        let live = self.peers.iter().filter(|p| !p.rec.is_ended()).count();
        if live == 0 {
            return None;
        }
        self.peers
            .iter_mut()
            .filter(|p| !p.rec.is_ended())
            .nth(n % live)
    }

    /// Steps every open connection until none moves (bounded): messages one posts to
    /// another are delivered in the same operation. Reports ended connections to the factory.
    fn settle(&mut self) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            let mut moved = false;
            // Closed ones too: a deadline that closed a socket left its action to record.
            for peer in &mut self.peers {
                moved |= peer.rec.step();
            }
            if !moved {
                break;
            }
        }
        for peer in &mut self.peers {
            if peer.rec.is_ended() && !peer.reported {
                peer.reported = true;
                if let Some(reason) = peer.rec.reason() {
                    self.factory.connection_closed(peer.addr, reason);
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .iter()
            .filter(|p| !p.rec.is_closed())
            .filter_map(|p| p.rec.next_timeout())
            .min()
    }

    /// Moves the shared clock forward by `by`, firing each deadline at its own time and
    /// letting everything settle after each.
    fn advance(&mut self, by: Duration) -> Result<(), Violation> {
        let target = self.now + by;
        let mut fires_here = 0;
        while let Some(next) = self.next_deadline().filter(|&next| next <= target) {
            if next <= self.now {
                fires_here += 1;
                if fires_here > MAX_FIRES_AT_ONE_INSTANT {
                    return Err(self.violation(
                        None,
                        format!(
                            "timer storm: deadlines kept coming due at {:?} ({} fires without \
                             time moving)",
                            self.now, MAX_FIRES_AT_ONE_INSTANT
                        ),
                    ));
                }
            } else {
                fires_here = 0;
                self.now = next;
            }
            let now = self.now;
            for peer in self.peers.iter_mut().filter(|p| !p.rec.is_closed()) {
                peer.rec.set_clock(now);
                if peer.rec.next_timeout().is_some_and(|t| t <= now) {
                    peer.rec.connection_mut().handle_timeout(now);
                }
            }
            self.settle();
        }
        self.now = self.now.max(target);
        let now = self.now;
        for peer in &mut self.peers {
            peer.rec.set_clock(now);
        }
        self.settle();
        Ok(())
    }

    /// The end of a run, as [`Ending`] says; then every connection must have ended with
    /// exactly one reason, and its socket be closed.
    pub(crate) fn finish(&mut self) -> Result<(), Violation> {
        self.trace.note(match self.check.ending {
            Ending::Shutdown => "ending: a graceful close through every handle",
            Ending::PeerEof { .. } => "ending: every peer sends its EOF",
            Ending::Idle { .. } => "ending: every peer goes silent",
        });
        for peer in self.peers.iter_mut().filter(|p| !p.rec.is_closed()) {
            peer.reading = true;
            peer.rec.set_peer_reads(PeerReads::All);
        }
        let within = match self.check.ending {
            Ending::Shutdown => {
                for peer in self.peers.iter_mut().filter(|p| !p.rec.is_ended()) {
                    peer.rec.close();
                }
                let config = self.config();
                config.close_timeout.unwrap_or_default()
                    + config.close_linger.unwrap_or_default()
                    + Duration::from_secs(1)
            }
            Ending::PeerEof { within } => {
                for peer in self.peers.iter_mut().filter(|p| !p.rec.is_closed()) {
                    peer.rec.receive_eof();
                }
                within
            }
            Ending::Idle { within } => within,
        };
        self.settle();
        self.check_all()?;
        self.advance(within)?;
        self.check_all()?;
        for index in 0..self.peers.len() {
            let peer = &self.peers[index];
            if !peer.rec.is_ended() || !peer.rec.is_closed() {
                let what = match self.check.ending {
                    Ending::Shutdown => format!(
                        "still open {within:?} after a graceful close was asked for (ended: \
                         {}, socket closed: {})",
                        peer.rec.is_ended(),
                        peer.rec.is_closed()
                    ),
                    Ending::PeerEof { .. } => format!(
                        "still open {within:?} after the peer's EOF (ended: {}, socket \
                         closed: {})",
                        peer.rec.is_ended(),
                        peer.rec.is_closed()
                    ),
                    Ending::Idle { .. } => format!(
                        "still open {within:?} after the peer went silent: no idle timeout \
                         ended it (ended: {}, socket closed: {})",
                        peer.rec.is_ended(),
                        peer.rec.is_closed()
                    ),
                };
                return Err(self.violation(Some(index), what));
            }
        }
        Ok(())
    }

    /// What the run produced, connection by connection.
    pub(crate) fn outcome(&self) -> Outcome {
        Outcome {
            connections: self
                .peers
                .iter()
                .map(|p| Served {
                    peer: p.addr,
                    written: Bytes::copy_from_slice(p.rec.written()),
                    reason: p.rec.reason().cloned(),
                })
                .collect(),
            refused: self.refused,
        }
    }

    #[cfg(feature = "proptest")]
    /// Bytes connection `n`'s peer sent that it has not read (among those not ended).
    pub(crate) fn unread_bytes(&self, n: usize) -> usize {
        let live: Vec<_> = self.peers.iter().filter(|p| !p.rec.is_ended()).collect();
        live.get(n % live.len().max(1))
            .map_or(0, |p| p.rec.unread_bytes())
    }

    #[cfg(feature = "proptest")]
    /// True when every connection accepted has ended.
    pub(crate) fn all_ended(&self) -> bool {
        self.peers.iter().all(|p| p.rec.is_ended())
    }

    pub(crate) fn violation(&self, connection: Option<usize>, what: String) -> Violation {
        Violation {
            connection: connection.map(|i| self.peers[i].ordinal),
            peer: connection.map(|i| self.peers[i].addr),
            what,
            trace: self.trace.lines(),
        }
    }

    /// Every invariant of every connection, and the user's.
    fn check_all(&self) -> Result<(), Violation> {
        for (index, peer) in self.peers.iter().enumerate() {
            if let Err(what) = self.check_one(peer) {
                return Err(self.violation(Some(index), what));
            }
        }
        if let Some(invariant) = &self.check.factory_invariant {
            invariant(&self.factory).map_err(|what| self.violation(None, what))?;
        }
        Ok(())
    }

    fn check_one(&self, peer: &Peer<F::Protocol>) -> Result<(), String> {
        let rec = &peer.rec;
        let watched = rec.protocol();
        if let Some(breach) = &watched.breach {
            return Err(breach.clone());
        }
        if watched.made_count() != 1 {
            return Err(format!(
                "connection_made ran {} times",
                watched.made_count()
            ));
        }
        let lost = watched.lost_count();
        if lost > 1 || (lost == 1) != rec.is_ended() {
            return Err(format!(
                "connection_lost ran {lost} times, connection ended: {}",
                rec.is_ended()
            ));
        }
        if rec.is_ended() && rec.reason() != watched.lost_reason.as_ref() {
            return Err(format!(
                "ended with {:?} but connection_lost was told {:?}",
                rec.reason(),
                watched.lost_reason
            ));
        }
        let mut terminal = 0;
        for action in rec.actions() {
            match action {
                Action::Close | Action::Abort => terminal += 1,
                Action::ShutdownWrite if terminal > 0 => {
                    return Err("shut down writing after the socket was closed".into())
                }
                Action::ShutdownWrite => {}
            }
        }
        if terminal > 1 || (terminal == 1) != rec.is_closed() {
            return Err(format!(
                "{terminal} close or abort actions, socket closed: {}",
                rec.is_closed()
            ));
        }
        let conn = rec.connection();
        if rec.is_ended() && conn.wants_write() {
            return Err("bytes still queued after connection_lost".into());
        }
        if let Some(cap) = self.config().max_queued {
            if conn.queued_memory() > cap {
                return Err(format!(
                    "write queue holds {} over its cap {cap}",
                    conn.queued_memory()
                ));
            }
        }
        if let Some(limit) = self.config().max_receive_buffer {
            if conn.buffered_bytes() > limit + self.largest_read {
                return Err(format!(
                    "receive buffer holds {} over its limit {limit} plus one read",
                    conn.buffered_bytes()
                ));
            }
        }
        if rec.is_closed()
            && (conn.wants_write() || conn.wants_read() || rec.next_timeout().is_some())
        {
            return Err("a closed connection still wants I/O or time".into());
        }
        if let Some(invariant) = &self.check.invariant {
            invariant(&watched.inner)?;
        }
        Ok(())
    }
}

fn reads(on: bool) -> PeerReads {
    if on {
        PeerReads::All
    } else {
        PeerReads::Nothing
    }
}
