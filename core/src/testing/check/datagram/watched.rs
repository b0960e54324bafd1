//! `Watched`: the wrapper the datagram checks put around a user's protocol to see its side of
//! the lifecycle, callback by callback, without the protocol knowing.

use alloc::format;
use alloc::string::String;
use core::net::SocketAddr;

use bytes::Bytes;

use crate::datagram::{Command, DatagramProtocol, DatagramTransport};
use crate::reason::Reason;
use crate::timer::TimerId;

/// A user's datagram protocol, with a record of how the endpoint called it and of the
/// datagrams it lost by sending after its own close.
pub(super) struct Watched<P> {
    pub(super) inner: P,
    starts: u32,
    stops: u32,
    /// The reason `stop_protocol` was given.
    pub(super) stop_reason: Option<Reason>,
    /// The first contract breach seen, with the callback it happened in.
    pub(super) breach: Option<String>,
}

impl<P> Watched<P> {
    pub(super) fn new(inner: P) -> Self {
        Watched {
            inner,
            starts: 0,
            stops: 0,
            stop_reason: None,
            breach: None,
        }
    }

    /// How many times `start_protocol` ran.
    pub(super) fn start_count(&self) -> u32 {
        self.starts
    }

    /// How many times `stop_protocol` ran.
    pub(super) fn stop_count(&self) -> u32 {
        self.stops
    }

    fn breach(&mut self, what: String) {
        if self.breach.is_none() {
            self.breach = Some(what);
        }
    }

    /// Checks the lifecycle before a callback: `start_protocol` first, nothing after
    /// `stop_protocol`.
    fn entering(&mut self, callback: &str) {
        if self.starts == 0 {
            self.breach(format!("{callback} ran before start_protocol"));
        }
        if self.stops > 0 {
            self.breach(format!("{callback} ran after stop_protocol"));
        }
    }

    /// Runs one callback of the protocol and looks at what it did through `tx`.
    fn call(
        &mut self,
        callback: &str,
        tx: &mut DatagramTransport<'_>,
        body: impl FnOnce(&mut P, &mut DatagramTransport<'_>),
    ) {
        let after_close = tx.stats().sends_after_close;
        body(&mut self.inner, tx);
        // Every callback runs only while the endpoint is open, so a send refused as closed
        // follows the protocol's own close in the same callback: it knew.
        let lost = tx.stats().sends_after_close - after_close;
        if lost > 0 {
            self.breach(format!(
                "sent after closing (in {callback}): {lost} datagram(s) refused and lost"
            ));
        }
    }
}

impl<P: DatagramProtocol> DatagramProtocol for Watched<P> {
    type Message = P::Message;

    fn start_protocol(&mut self, tx: &mut DatagramTransport<'_>) {
        self.starts += 1;
        if self.starts > 1 {
            self.breach(format!("start_protocol ran {} times", self.starts));
        }
        if self.stops > 0 {
            self.breach("start_protocol ran after stop_protocol".into());
        }
        self.call("start_protocol", tx, |p, tx| p.start_protocol(tx));
    }

    fn datagram_received(
        &mut self,
        data: Bytes,
        from: SocketAddr,
        truncated: bool,
        tx: &mut DatagramTransport<'_>,
    ) {
        self.entering("datagram_received");
        self.call("datagram_received", tx, |p, tx| {
            p.datagram_received(data, from, truncated, tx)
        });
    }

    fn connection_refused(&mut self, tx: &mut DatagramTransport<'_>) {
        self.entering("connection_refused");
        self.call("connection_refused", tx, |p, tx| p.connection_refused(tx));
    }

    fn send_failed(
        &mut self,
        to: Option<SocketAddr>,
        reason: &Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        self.entering("send_failed");
        self.call("send_failed", tx, |p, tx| p.send_failed(to, reason, tx));
    }

    fn command_failed(
        &mut self,
        command: &Command,
        reason: &Reason,
        tx: &mut DatagramTransport<'_>,
    ) {
        self.entering("command_failed");
        self.call("command_failed", tx, |p, tx| {
            p.command_failed(command, reason, tx)
        });
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut DatagramTransport<'_>) {
        self.entering("timer_fired");
        self.call("timer_fired", tx, |p, tx| p.timer_fired(timer, tx));
    }

    fn message(&mut self, message: P::Message, tx: &mut DatagramTransport<'_>) {
        self.entering("message");
        self.call("message", tx, |p, tx| p.message(message, tx));
    }

    fn stop_protocol(&mut self, reason: &Reason) {
        self.entering("stop_protocol");
        self.stops += 1;
        self.stop_reason = Some(reason.clone());
        self.inner.stop_protocol(reason);
    }
}
