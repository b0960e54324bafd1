//! `RelayLeg`: one side of a relay, and the factories that build the two sides.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::any::Any;
use core::fmt;
use core::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::connector::{ClientFactory, Retry};
use crate::proxy::{encode_v1, encode_v2, Header, Version};
use crate::reason::{Limit, Reason};
use crate::relay::{Dial, Dialer, RelayMessage};
use crate::stream::{Handle, Protocol, ServerFactory, Transport, WriteError};

/// Called with a relay's [`RelayReport`] when its client leg ends (a log line, counters).
pub type ReportHook = Arc<dyn Fn(&RelayReport) + Send + Sync>;

/// How a relay behaves; shared by every relay a [`RelayFactory`] builds.
#[derive(Clone)]
pub struct RelayConfig {
    /// The most bytes a leg posts to the other leg before that leg has queued them for
    /// writing (default 256 KiB): with the write queues' water marks, what bounds a relay's
    /// memory.
    pub window: usize,
    /// Send a PROXY protocol header of this version to the upstream first (`None`: don't).
    pub send_proxy: Option<Version>,
    /// Called once per relay when its client leg ends, with its counters.
    pub report: Option<ReportHook>,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            window: 256 * 1024,
            send_proxy: None,
            report: None,
        }
    }
}

impl fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConfig")
            .field("window", &self.window)
            .field("send_proxy", &self.send_proxy)
            .field("report", &self.report.is_some())
            .finish()
    }
}

/// Which leg of a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// The accepted connection.
    Client,
    /// The connection dialed to the upstream.
    Upstream,
}

/// How a relay went, from its client leg: given to [`RelayConfig::report`] when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayReport {
    /// The client, as the client leg saw it.
    pub peer: Option<SocketAddr>,
    /// Why the client leg ended.
    pub reason: Reason,
    /// Whether the upstream was ever connected.
    pub connected: bool,
    /// Bytes read from the client and passed to the upstream leg.
    pub to_upstream: u64,
    /// Bytes from the upstream leg queued for the client.
    pub to_client: u64,
}

/// One leg of a relay: a [`Protocol`] that passes what it reads to the other leg and writes
/// what the other leg passes to it (see the [module docs](crate::relay)).
pub struct RelayLeg {
    side: Side,
    config: Arc<RelayConfig>,
    /// The client leg's way to its upstream, until it has dialed.
    dialer: Option<Dialer>,
    /// Keeps the upstream attempt alive (the runtime's client), on the client leg.
    attempt: Option<Box<dyn Any + Send>>,
    /// The other leg, once known.
    other: Option<Handle<RelayMessage>>,
    /// What the upstream leg writes first (a PROXY header).
    preamble: Bytes,
    /// Bytes posted to the other leg that it has not acknowledged.
    in_flight: usize,
    /// Bytes the other leg posted here and we queued, not acknowledged yet (acknowledged in
    /// batches of a quarter window, so acks cost a message per quarter window, not per read).
    unacked: usize,
    holds: Holds,
    read_eof: bool,
    write_shut: bool,
    peer: Option<SocketAddr>,
    read: u64,
    written: u64,
}

/// Why reading is held: each a separate `hold_reading`, released once.
#[derive(Clone, Copy, Debug, Default)]
struct Holds {
    /// The upstream is not connected yet (client leg).
    upstream: bool,
    /// The other leg's write queue is above its high-water mark.
    paused: bool,
    /// A whole window is in flight to the other leg.
    window: bool,
}

impl RelayLeg {
    /// A client leg that dials through `dialer` once connected.
    pub fn client(dialer: Dialer, config: Arc<RelayConfig>) -> Self {
        let mut leg = Self::new(Side::Client, config);
        leg.dialer = Some(dialer);
        leg
    }

    /// An upstream leg for the client leg `dial` came from.
    pub fn upstream(dial: Dial) -> Self {
        let config = RelayConfig {
            window: dial.window,
            ..RelayConfig::default()
        };
        let mut leg = Self::new(Side::Upstream, Arc::new(config));
        leg.other = Some(dial.client);
        leg.preamble = dial.preamble;
        leg
    }

    fn new(side: Side, config: Arc<RelayConfig>) -> Self {
        RelayLeg {
            side,
            config,
            dialer: None,
            attempt: None,
            other: None,
            preamble: Bytes::new(),
            in_flight: 0,
            unacked: 0,
            holds: Holds::default(),
            read_eof: false,
            write_shut: false,
            peer: None,
            read: 0,
            written: 0,
        }
    }

    /// Which leg this is.
    pub fn side(&self) -> Side {
        self.side
    }

    /// Bytes read from this leg's peer and passed to the other leg.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// Bytes from the other leg queued for this leg's peer.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// True once the other leg is known (always, on an upstream leg).
    pub fn is_linked(&self) -> bool {
        self.other.is_some()
    }

    /// Posts to the other leg; false if there is none or it has ended.
    fn tell(&self, message: RelayMessage) -> bool {
        self.other
            .as_ref()
            .is_some_and(|other| other.send(message).is_ok())
    }

    fn hold(flag: &mut bool, tx: &mut Transport<'_, RelayMessage>) {
        if !*flag {
            *flag = true;
            tx.hold_reading();
        }
    }

    fn release(flag: &mut bool, tx: &mut Transport<'_, RelayMessage>) {
        if *flag {
            *flag = false;
            tx.release_reading();
        }
    }

    fn dial(&mut self, tx: &mut Transport<'_, RelayMessage>) {
        let Some(dialer) = self.dialer.take() else {
            return;
        };
        let (Some(handle), Some(peer), Some(local)) = (tx.handle(), tx.peer(), tx.local()) else {
            tx.abort_connection_with(Reason::protocol("relay: the runtime gives no handles"));
            return;
        };
        let mut preamble = BytesMut::new();
        if let Some(version) = self.config.send_proxy {
            let header = Header::proxy(peer, local);
            // A TCP header without TLVs always encodes, in either version.
            let _ = match version {
                Version::V1 => encode_v1(&header, &mut preamble),
                Version::V2 => encode_v2(&header, &mut preamble),
            };
        }
        let dial = Dial {
            client: handle.clone(),
            peer,
            local,
            preamble: preamble.freeze(),
            window: self.config.window,
        };
        self.attempt = Some(dialer(dial));
    }

    /// Both directions are done on this leg: close it (after flushing).
    fn finish_if_done(&mut self, tx: &mut Transport<'_, RelayMessage>) {
        if self.read_eof && self.write_shut {
            tx.lose_connection();
        }
    }
}

impl Protocol for RelayLeg {
    type Message = RelayMessage;

    fn connection_made(&mut self, tx: &mut Transport<'_, RelayMessage>) {
        self.peer = tx.peer();
        match self.side {
            Side::Client => {
                // Nothing is read until the upstream is connected.
                Self::hold(&mut self.holds.upstream, tx);
                self.dial(tx);
            }
            Side::Upstream => {
                let preamble = core::mem::take(&mut self.preamble);
                if !preamble.is_empty() && tx.write(preamble).is_err() {
                    tx.abort_connection();
                    return;
                }
                let linked = tx
                    .handle()
                    .cloned()
                    .is_some_and(|me| self.tell(RelayMessage::Connected(me)));
                if !linked {
                    // The client leg has gone (or there are no handles): nothing to relay.
                    tx.abort_connection();
                }
            }
        }
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, RelayMessage>) {
        if self.other.is_none() || data.is_empty() {
            return;
        }
        let chunk = data.split().freeze();
        let len = chunk.len();
        if !self.tell(RelayMessage::Data(chunk)) {
            tx.abort_connection();
            return;
        }
        self.read += len as u64;
        self.in_flight += len;
        if self.in_flight >= self.config.window {
            Self::hold(&mut self.holds.window, tx);
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, RelayMessage>) {
        self.read_eof = true;
        if !self.tell(RelayMessage::Eof) {
            tx.lose_connection();
            return;
        }
        self.finish_if_done(tx);
    }

    fn message(&mut self, message: RelayMessage, tx: &mut Transport<'_, RelayMessage>) {
        match message {
            RelayMessage::Connected(upstream) => {
                self.other = Some(upstream);
                Self::release(&mut self.holds.upstream, tx);
            }
            RelayMessage::Failed(reason) => {
                self.attempt = None;
                tx.lose_connection_with(reason);
            }
            RelayMessage::Data(chunk) => {
                let len = chunk.len();
                match tx.write(chunk) {
                    Ok(()) => self.written += len as u64,
                    Err(WriteError::QueueFull { queued, max, len }) => {
                        tx.abort_connection_with(Reason::LimitExceeded {
                            limit: Limit::WriteQueue,
                            max,
                            seen: queued.saturating_add(len),
                        });
                    }
                    // Closing: the bytes have nowhere to go.
                    Err(_) => {}
                }
                // The sender holds its reading at a whole window in flight; a quarter-window
                // batch always completes before that, so it never waits on an ack withheld here.
                self.unacked += len;
                if self.unacked >= self.config.window / 4 {
                    let acked = core::mem::take(&mut self.unacked);
                    self.tell(RelayMessage::Ack(acked));
                }
            }
            RelayMessage::Ack(len) => {
                self.in_flight = self.in_flight.saturating_sub(len);
                if self.in_flight < self.config.window {
                    Self::release(&mut self.holds.window, tx);
                }
            }
            RelayMessage::Pause => Self::hold(&mut self.holds.paused, tx),
            RelayMessage::Resume => Self::release(&mut self.holds.paused, tx),
            RelayMessage::Eof => {
                self.write_shut = true;
                tx.shutdown_write();
                self.finish_if_done(tx);
            }
            RelayMessage::Close => tx.lose_connection(),
            RelayMessage::Abort(reason) => tx.abort_connection_with(reason),
        }
    }

    fn pause_producing(&mut self, _tx: &mut Transport<'_, RelayMessage>) {
        // Our peer reads slowly: the other leg stops reading, not us.
        self.tell(RelayMessage::Pause);
    }

    fn resume_producing(&mut self, _tx: &mut Transport<'_, RelayMessage>) {
        self.tell(RelayMessage::Resume);
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, RelayMessage>) {
        self.tell(RelayMessage::Close);
        tx.lose_connection();
    }

    fn connection_lost(&mut self, reason: &Reason) {
        if !reason.is_clean() {
            self.tell(RelayMessage::Abort(reason.clone()));
        }
        // Cancels an upstream attempt still pending.
        self.attempt = None;
        if self.side == Side::Client {
            if let Some(report) = &self.config.report {
                report(&RelayReport {
                    peer: self.peer,
                    reason: reason.clone(),
                    connected: self.other.is_some(),
                    to_upstream: self.read,
                    to_client: self.written,
                });
            }
        }
    }
}

impl fmt::Debug for RelayLeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayLeg")
            .field("side", &self.side)
            .field("linked", &self.other.is_some())
            .field("in_flight", &self.in_flight)
            .field("holds", &self.holds)
            .field("read_eof", &self.read_eof)
            .field("write_shut", &self.write_shut)
            .field("read", &self.read)
            .field("written", &self.written)
            .finish_non_exhaustive()
    }
}

/// Builds a client leg for each accepted connection (Twisted's `ProxyFactory`).
pub struct RelayFactory {
    dialer: Dialer,
    config: Arc<RelayConfig>,
}

impl RelayFactory {
    /// Relays each accepted connection to an upstream that `dialer` connects.
    pub fn new(dialer: Dialer, config: RelayConfig) -> Self {
        RelayFactory {
            dialer,
            config: Arc::new(config),
        }
    }
}

impl fmt::Debug for RelayFactory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayFactory")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl ServerFactory for RelayFactory {
    type Protocol = RelayLeg;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<RelayLeg> {
        Some(RelayLeg::client(
            Arc::clone(&self.dialer),
            Arc::clone(&self.config),
        ))
    }
}

/// The upstream side's [`ClientFactory`] for one [`Dial`]: one attempt, no retries; a failed
/// attempt ends the client leg with its reason (Twisted's `ProxyClientFactory`).
#[derive(Debug)]
pub struct UpstreamFactory {
    dial: Option<Dial>,
    client: Handle<RelayMessage>,
}

impl UpstreamFactory {
    /// The factory for the upstream connection `dial` asks for.
    pub fn new(dial: Dial) -> Self {
        UpstreamFactory {
            client: dial.client.clone(),
            dial: Some(dial),
        }
    }
}

impl ClientFactory for UpstreamFactory {
    type Protocol = RelayLeg;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<RelayLeg> {
        self.dial.take().map(RelayLeg::upstream)
    }

    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        let _ = self.client.send(RelayMessage::Failed(reason.clone()));
        Retry::Stop
    }
}
