//! The protocols and factories the scenarios run. Observations leave through shared logs,
//! because the protocols themselves are owned by the runtime while they run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::stream::{Protocol, ServerFactory, Transport};
use loomwork::{Instant, Reason, TimerId};

/// A shared, lockable log.
pub type Shared<T> = Arc<Mutex<T>>;

/// Locks a shared log, surviving a poisoned lock (a failed assertion elsewhere).
pub fn lock<T>(shared: &Shared<T>) -> std::sync::MutexGuard<'_, T> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Twisted's Echo: writes back what arrives; the default backpressure pauses reading.
pub struct Echo;

impl Protocol for Echo {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let _ = tx.write(data.split().freeze());
    }
}

/// What a server factory saw.
#[derive(Debug, Default)]
pub struct ServerLog {
    /// Peers accepted.
    pub built: usize,
    /// Reasons reported by `connection_closed`, in order.
    pub closed: Vec<Reason>,
}

/// A server factory that builds `make()` for every peer and logs closes.
pub struct LoggingFactory<P, F: FnMut() -> Option<P>> {
    make: F,
    log: Shared<ServerLog>,
}

impl<P, F: FnMut() -> Option<P>> LoggingFactory<P, F> {
    /// A factory and the log it writes.
    pub fn new(make: F) -> (Self, Shared<ServerLog>) {
        let log = Shared::default();
        (
            LoggingFactory {
                make,
                log: log.clone(),
            },
            log,
        )
    }
}

impl<P: Protocol, F: FnMut() -> Option<P>> ServerFactory for LoggingFactory<P, F> {
    type Protocol = P;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<P> {
        lock(&self.log).built += 1;
        (self.make)()
    }
    fn connection_closed(&mut self, _peer: SocketAddr, reason: &Reason) {
        lock(&self.log).closed.push(reason.clone());
    }
}

/// What a client protocol and its factory saw.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// `connection_made` calls.
    pub made: usize,
    /// Bytes received, when kept.
    pub received: Vec<u8>,
    /// Bytes received, counted.
    pub received_len: usize,
    /// FNV-1a of everything received.
    pub received_hash: u64,
    /// `connection_lost` reasons.
    pub lost: Vec<Reason>,
    /// `connection_failed` reasons.
    pub failures: Vec<Reason>,
    /// (deadline, time fired) of each timer.
    pub timers: Vec<(Instant, Instant)>,
}

/// What a [`Client`] does once connected.
#[derive(Clone, Debug)]
pub enum ClientScript {
    /// Send `payload`, read until as many bytes came back, then close.
    Exchange(Bytes),
    /// Send `payload`, then half-close; read until EOF.
    AskThenHalfClose(Bytes),
    /// Read everything until the peer closes; keep at most `keep` bytes.
    ReadAll {
        /// How many bytes to keep in `received`.
        keep: usize,
        /// Pause reading for this long at first (a slow reader).
        pause_first: Option<Duration>,
    },
    /// Send `payload`, then abort.
    SendThenAbort(Bytes),
    /// Set timers at these delays; close after the last fires.
    Timers(Vec<Duration>),
    /// Connect and do nothing.
    Idle,
    /// Never read; abort after the given time, if any (a peer that vanishes).
    Stall(Option<Duration>),
    /// Send `payload` (which the server never reads), then read everything until EOF.
    SendThenReadAll(Bytes),
    /// Send one byte (never a line delimiter) every `every`, `count` times (a slow-loris).
    Dribble {
        /// Time between bytes.
        every: Duration,
        /// Bytes to send at most.
        count: usize,
    },
}

/// A scripted client protocol.
pub struct Client {
    script: ClientScript,
    log: Shared<ClientLog>,
    expected: usize,
    resume_timer: Option<TimerId>,
    timers_left: usize,
}

impl Protocol for Client {
    type Message = ();

    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        lock(&self.log).made += 1;
        match &self.script {
            ClientScript::Exchange(payload) => {
                self.expected = payload.len();
                let _ = tx.write(payload.clone());
            }
            ClientScript::AskThenHalfClose(payload) => {
                let _ = tx.write(payload.clone());
                tx.shutdown_write();
            }
            ClientScript::ReadAll {
                pause_first: Some(pause),
                ..
            } => {
                tx.pause_reading();
                self.resume_timer = Some(tx.call_later(*pause));
            }
            ClientScript::SendThenAbort(payload) | ClientScript::SendThenReadAll(payload) => {
                let _ = tx.write(payload.clone());
            }
            ClientScript::Timers(delays) => {
                self.timers_left = delays.len();
                for delay in delays {
                    tx.call_later(*delay);
                }
            }
            ClientScript::Stall(abort_after) => {
                tx.pause_reading();
                if let Some(after) = abort_after {
                    self.resume_timer = Some(tx.call_later(*after));
                }
            }
            ClientScript::Dribble { every, count } => {
                self.timers_left = *count;
                tx.call_later(*every);
            }
            ClientScript::ReadAll {
                pause_first: None, ..
            }
            | ClientScript::Idle => {}
        }
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let chunk = data.split();
        let mut log = lock(&self.log);
        log.received_len += chunk.len();
        log.received_hash = fnv1a(log.received_hash, &chunk);
        let keep = match &self.script {
            ClientScript::ReadAll { keep, .. } => *keep,
            _ => usize::MAX,
        };
        let room = keep.saturating_sub(log.received.len());
        log.received
            .extend_from_slice(&chunk[..chunk.len().min(room)]);
        let received = log.received_len;
        drop(log);
        match &self.script {
            ClientScript::Exchange(_) if received >= self.expected => tx.lose_connection(),
            ClientScript::SendThenAbort(_) => tx.abort_connection(),
            _ => {}
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        tx.lose_connection();
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_>) {
        if Some(timer) == self.resume_timer {
            match self.script {
                ClientScript::Stall(_) => tx.abort_connection(),
                _ => tx.resume_reading(),
            }
            return;
        }
        lock(&self.log).timers.push((timer.deadline(), tx.now()));
        if let ClientScript::Dribble { every, .. } = self.script {
            self.timers_left = self.timers_left.saturating_sub(1);
            let _ = tx.write_slice(b"z");
            if self.timers_left > 0 {
                tx.call_later(every);
            }
            return;
        }
        self.timers_left = self.timers_left.saturating_sub(1);
        if self.timers_left == 0 {
            tx.lose_connection();
        }
    }

    fn connection_lost(&mut self, reason: &Reason) {
        lock(&self.log).lost.push(reason.clone());
    }
}

/// A client factory running one [`ClientScript`], with a retry policy for failed attempts.
pub struct ClientSpec {
    script: ClientScript,
    log: Shared<ClientLog>,
    on_failure: Retry,
}

impl ClientSpec {
    /// A client that stops after its first connection or failure.
    pub fn new(script: ClientScript) -> (Self, Shared<ClientLog>) {
        Self::retrying(script, Retry::Stop)
    }

    /// A client that answers failed attempts with `on_failure`.
    pub fn retrying(script: ClientScript, on_failure: Retry) -> (Self, Shared<ClientLog>) {
        let log = Shared::default();
        (
            ClientSpec {
                script,
                log: log.clone(),
                on_failure,
            },
            log,
        )
    }
}

impl ClientFactory for ClientSpec {
    type Protocol = Client;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<Client> {
        Some(Client {
            script: self.script.clone(),
            log: self.log.clone(),
            expected: 0,
            resume_timer: None,
            timers_left: 0,
        })
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        lock(&self.log).failures.push(reason.clone());
        self.on_failure
    }
    fn connection_lost(&mut self, _reason: &Reason) -> Retry {
        Retry::Stop
    }
}

/// What a [`Firehose`] saw.
#[derive(Debug, Default)]
pub struct FirehoseLog {
    /// Largest write queue observed right after a write.
    pub max_queued: usize,
    /// `pause_producing` calls.
    pub pauses: usize,
    /// Bytes written in all.
    pub written: usize,
}

/// A server that streams `total` bytes of a known pattern in `chunk`-sized writes, honouring
/// `pause_producing`, then closes gracefully.
pub struct Firehose {
    /// Bytes to send in all.
    pub total: usize,
    /// Size of each write.
    pub chunk: usize,
    /// Stop after queueing everything with an abort instead of a graceful close.
    pub abort_at_end: bool,
    paused: bool,
    log: Shared<FirehoseLog>,
}

impl Firehose {
    /// A firehose and its log.
    pub fn new(total: usize, chunk: usize, abort_at_end: bool) -> (Self, Shared<FirehoseLog>) {
        let log = Shared::default();
        (
            Firehose {
                total,
                chunk,
                abort_at_end,
                paused: false,
                log: log.clone(),
            },
            log,
        )
    }

    fn produce(&mut self, tx: &mut Transport<'_>) {
        loop {
            let written = lock(&self.log).written;
            if written >= self.total {
                if self.abort_at_end {
                    tx.abort_connection();
                } else {
                    tx.lose_connection();
                }
                return;
            }
            if self.paused {
                return;
            }
            let n = self.chunk.min(self.total - written);
            let bytes = pattern(written, n);
            if tx.write(bytes).is_err() {
                return;
            }
            let mut log = lock(&self.log);
            log.written += n;
            log.max_queued = log.max_queued.max(tx.queued_bytes());
            drop(log);
            // pause_producing arrives after this callback returns; a producer that wants to be
            // exact stops itself at the high-water mark.
            if tx.queued_bytes() > tx.config().high_water {
                self.paused = true;
            }
        }
    }
}

impl Protocol for Firehose {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.produce(tx);
    }
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        data.clear();
    }
    fn pause_producing(&mut self, _: &mut Transport<'_>) {
        self.paused = true;
        lock(&self.log).pauses += 1;
    }
    fn resume_producing(&mut self, tx: &mut Transport<'_>) {
        self.paused = false;
        self.produce(tx);
    }
}

/// Answers a half-closed peer: on EOF writes `got <n> bytes` and closes.
#[derive(Default)]
pub struct AnswerOnEof {
    seen: usize,
}

impl Protocol for AnswerOnEof {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
        self.seen += data.len();
        data.clear();
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        let _ = tx.write(format!("got {} bytes", self.seen));
        tx.lose_connection();
    }
}

/// `n` bytes of a position-dependent pattern starting at stream offset `offset`.
pub fn pattern(offset: usize, n: usize) -> Bytes {
    (offset..offset + n)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Deterministic pseudo-random payload for client `index`.
pub fn payload(index: usize, len: usize) -> Bytes {
    let mut state = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// FNV-1a, continued from `hash` (start with 0).
pub fn fnv1a(hash: u64, data: &[u8]) -> u64 {
    let mut h = if hash == 0 {
        0xcbf2_9ce4_8422_2325
    } else {
        hash
    };
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
