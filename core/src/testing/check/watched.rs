//! `Watched`: the wrapper the checks put around a user's protocol to see its side of the
//! contract, callback by callback, without the protocol knowing.

use alloc::format;
use alloc::string::String;

use bytes::BytesMut;

use crate::reason::Reason;
use crate::stream::{Protocol, Transport};
use crate::timer::TimerId;

/// A user's protocol, with a record of how the connection called it and of what it did that
/// breaks the contract a runtime cannot enforce.
pub(crate) struct Watched<P> {
    pub(crate) inner: P,
    made: u32,
    lost: u32,
    /// The reason `connection_lost` was given.
    pub(crate) lost_reason: Option<Reason>,
    /// A write of ours was refused as over the queue's cap and the protocol has not stopped
    /// reading since.
    refused_while_reading: bool,
    /// The first contract breach seen, with the callback it happened in.
    pub(crate) breach: Option<String>,
    /// Whether losing writes (refused after a close, or over the cap while reading on) is a
    /// breach.
    report_lost_writes: bool,
}

impl<P> Watched<P> {
    pub(crate) fn new(inner: P, report_lost_writes: bool) -> Self {
        Watched {
            report_lost_writes,
            inner,
            made: 0,
            lost: 0,
            lost_reason: None,
            refused_while_reading: false,
            breach: None,
        }
    }

    fn breach(&mut self, what: String) {
        if self.breach.is_none() {
            self.breach = Some(what);
        }
    }

    /// Checks the lifecycle before a callback: `connection_made` first, nothing after
    /// `connection_lost`.
    fn entering(&mut self, callback: &str) {
        if self.made == 0 {
            self.breach(format!("{callback} ran before connection_made"));
        }
        if self.lost > 0 {
            self.breach(format!("{callback} ran after connection_lost"));
        }
    }

    /// Runs one callback of the protocol and looks at what it did through `tx`.
    fn call<M>(
        &mut self,
        callback: &str,
        tx: &mut Transport<'_, M>,
        body: impl FnOnce(&mut P, &mut Transport<'_, M>),
    ) {
        let after_close = tx.stats().writes_after_close;
        let over_cap = tx.stats().writes_over_cap;
        body(&mut self.inner, tx);
        // A message comes from elsewhere (a broadcast, a timer of another connection) and
        // cannot know that this connection has just stopped writing: a write it makes then is
        // a race every fan-out has, not a bug. Anywhere else the protocol knows it closed.
        if self.report_lost_writes
            && callback != "message"
            && tx.stats().writes_after_close > after_close
        {
            self.breach(format!(
                "wrote after its writing side had closed (in {callback}): the bytes are lost"
            ));
        }
        if tx.stats().writes_over_cap > over_cap {
            self.refused_while_reading = true;
        }
        if !tx.is_reading() || tx.is_closing() {
            self.refused_while_reading = false;
        }
    }
}

impl<P: Protocol> Protocol for Watched<P> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.made += 1;
        if self.made > 1 {
            self.breach(format!("connection_made ran {} times", self.made));
        }
        self.call("connection_made", tx, |p, tx| p.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        self.entering("data_received");
        let refused_before = self.refused_while_reading;
        let offered = data.len();
        self.call("data_received", tx, |p, tx| p.data_received(data, tx));
        if self.report_lost_writes && refused_before && data.len() < offered && !tx.is_closing() {
            self.breach(format!(
                "went on consuming input ({} bytes) after a write was refused as over the \
                 queue's cap, without pausing reading or closing: its replies are dropped or \
                 buffered without bound (the default pause_producing pauses reading)",
                offered - data.len()
            ));
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.entering("read_closed");
        self.call("read_closed", tx, |p, tx| p.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        self.entering("timer_fired");
        self.call("timer_fired", tx, |p, tx| p.timer_fired(timer, tx));
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        self.entering("message");
        self.call("message", tx, |p, tx| p.message(message, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.entering("pause_producing");
        self.call("pause_producing", tx, |p, tx| p.pause_producing(tx));
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.entering("resume_producing");
        self.call("resume_producing", tx, |p, tx| p.resume_producing(tx));
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.entering("close_requested");
        self.call("close_requested", tx, |p, tx| p.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.entering("connection_lost");
        self.lost += 1;
        self.lost_reason = Some(reason.clone());
        self.inner.connection_lost(reason);
    }
}

impl<P> Watched<P> {
    /// How many times `connection_lost` ran.
    pub(crate) fn lost_count(&self) -> u32 {
        self.lost
    }

    /// How many times `connection_made` ran.
    pub(crate) fn made_count(&self) -> u32 {
        self.made
    }
}
