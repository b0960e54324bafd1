//! `TrafficLog`: reports a connection's traffic and events through the `log` facade (Twisted
//! `TrafficLoggingFactory` / `SpewingFactory`, PO-7). Feature `log`.
//!
//! Why `log` rather than `tracing`, for the whole project: the core is `no_std` and must stay
//! small; `log` is a dependency-free, `no_std` facade whose disabled records cost one load and
//! compare of a static level, with no spans, subscribers or macros that expand into per-callsite
//! registration. Applications on `tracing` still see every record through `tracing-log`, so
//! nothing is lost for them; the reverse bridge would force `tracing-core` on every user.

use bytes::BytesMut;

use crate::reason::Reason;
use crate::stream::{Protocol, Transport};
use crate::timer::TimerId;

/// The `log` target every record goes to, so it can be switched on alone
/// (`RUST_LOG=loomwork::traffic=debug` with `env_logger`).
pub const TARGET: &str = "loomwork::traffic";

/// Wraps a protocol and logs its connection's events (debug) and byte counts (trace) under
/// the target `loomwork::traffic`, tagged with a label of your choice (a connection number,
/// the peer).
///
/// Payloads are never logged, only sizes: logs are no place for user data, and Twisted's
/// payload eliding mixes bytes and str (KW-9). When the level is off, each event costs one
/// comparison against `log`'s static maximum level; without the `log` feature the type does not
/// exist at all.
///
/// ```
/// use loomwork::policy::TrafficLog;
/// # use loomwork::stream::{Protocol, Transport};
/// # struct Echo;
/// # impl Protocol for Echo {
/// #     type Message = ();
/// #     fn data_received(&mut self, d: &mut bytes::BytesMut, _: &mut Transport<'_>) { d.clear(); }
/// # }
/// let factory = |peer: core::net::SocketAddr| TrafficLog::new(Echo, peer.to_string());
/// # let _ = factory;
/// ```
#[derive(Debug)]
pub struct TrafficLog<P, L = alloc::string::String> {
    inner: P,
    label: L,
}

impl<P: Protocol, L: core::fmt::Display> TrafficLog<P, L> {
    /// Logs `inner`'s traffic under `label`.
    pub fn new(inner: P, label: L) -> Self {
        TrafficLog { inner, label }
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// Runs one callback and traces what it queued.
    fn forward(
        &mut self,
        tx: &mut Transport<'_, P::Message>,
        call: impl FnOnce(&mut P, &mut Transport<'_, P::Message>),
    ) {
        let queued = tx.queued_bytes();
        let closing = tx.is_closing();
        call(&mut self.inner, tx);
        let written = tx.queued_bytes().saturating_sub(queued);
        if written > 0 {
            log::trace!(target: TARGET, "{} S {written} bytes", self.label);
        }
        if !closing && tx.is_closing() {
            log::debug!(target: TARGET, "{} S * close requested", self.label);
        }
    }
}

impl<P: Protocol, L: core::fmt::Display> Protocol for TrafficLog<P, L> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        log::debug!(target: TARGET, "{} * connected (peer {:?})", self.label, tx.peer());
        self.forward(tx, |p, tx| p.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        log::trace!(target: TARGET, "{} C {} bytes", self.label, data.len());
        self.forward(tx, |p, tx| p.data_received(data, tx));
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        log::debug!(target: TARGET, "{} C * end of stream", self.label);
        self.forward(tx, |p, tx| p.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.timer_fired(timer, tx));
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.message(message, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        log::debug!(target: TARGET, "{} pause producing ({} bytes queued)", self.label, tx.queued_bytes());
        self.forward(tx, |p, tx| p.pause_producing(tx));
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        log::debug!(target: TARGET, "{} resume producing", self.label);
        self.forward(tx, |p, tx| p.resume_producing(tx));
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        // Logged by `forward` as our side's close, like a close the protocol starts itself.
        self.forward(tx, |p, tx| p.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        log::debug!(target: TARGET, "{} * connection lost: {reason}", self.label);
        self.inner.connection_lost(reason);
    }
}
