//! `Throttled`: read and write byte-rate limits for one connection, or shared by a server
//! (Twisted `ThrottlingFactory`, PO-3).

use alloc::sync::Arc;

use bytes::BytesMut;

use crate::policy::{Budget, Rate, RateLimit};
use crate::reason::Reason;
use crate::stream::{Protocol, Transport};
use crate::time::Instant;
use crate::timer::TimerId;

/// Wraps a protocol with read and write byte-rate limits.
///
/// **Reads**: the wrapped protocol is offered only as many buffered bytes as the read budget
/// allows (plus those it has already seen and left unconsumed, so a frame longer than one burst
/// still completes). Bytes over budget stay in the receive buffer, reading is held (the kernel
/// pushes back on the peer) and one timer wakes the connection at the instant the budget has
/// refilled: nothing is dropped and nothing polls. Bytes are charged when first shown.
///
/// **Writes**: what the wrapped protocol queues is charged to the write budget; once it is
/// overdrawn the protocol gets `pause_producing` until the debt is paid, as Twisted does with
/// registered producers (PO-3). A protocol that ignores `pause_producing` is not stopped, but
/// every byte is still charged, so its debt only grows.
///
/// Budgets are any [`Budget`]: an `Arc<RateLimit>` per connection
/// ([`Throttled::new`]) or one `Arc<RateLimit>` cloned into every connection of a server, so
/// they share a single rate ([`Throttled::with_budgets`]). Time spent held is added to
/// [`Stats::time_throttled`](crate::stream::Stats::time_throttled).
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::policy::{Rate, Throttled};
/// use loomwork::stream::{Config, Connection, Protocol, Transport};
/// use loomwork::Instant;
///
/// #[derive(Default)]
/// struct Count(usize);
/// impl Protocol for Count {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
///         self.0 += data.len();
///         data.clear();
///     }
/// }
///
/// // 1,000 bytes per second, 100 at once.
/// let rate = Rate::per_second(1_000).with_burst(100);
/// let addr = "127.0.0.1:1".parse().unwrap();
/// let mut conn = Connection::new(Throttled::new(Count::default(), Some(rate), None), Config::default());
/// conn.handle_connected(Instant::ZERO, addr, addr);
/// conn.handle_data(Instant::ZERO, &[0; 300]);
/// assert_eq!(conn.protocol().inner().0, 100); // one burst now, the rest waits
/// assert!(!conn.wants_read());                // the kernel holds the peer back meanwhile
/// assert_eq!(conn.next_timeout(), Some(Instant::from_millis(100)));
/// conn.handle_timeout(Instant::from_millis(100));
/// assert_eq!(conn.protocol().inner().0, 200);
/// conn.handle_timeout(Instant::from_millis(200));
/// assert_eq!(conn.protocol().inner().0, 300); // all of it, at 1,000 bytes per second
/// assert!(conn.wants_read());
/// ```
#[derive(Debug)]
pub struct Throttled<P, B = Arc<RateLimit>> {
    inner: P,
    read: Option<B>,
    write: Option<B>,
    /// Bytes at the front of the receive buffer the protocol has seen and not consumed.
    offered: usize,
    /// Our hold on reading and the timer that lifts it.
    read_hold: Option<TimerId>,
    /// Our pause of the protocol's producing and the timer that lifts it.
    write_hold: Option<TimerId>,
    /// The transport asked the protocol to pause (its write queue is above the high mark).
    transport_paused: bool,
    /// Since when any hold has been on, for `Stats::time_throttled`.
    held_since: Option<Instant>,
}

impl<P: Protocol> Throttled<P> {
    /// Limits this connection alone to `read` and `write` bytes per second (`None`: no limit).
    pub fn new(inner: P, read: Option<Rate>, write: Option<Rate>) -> Self {
        Self::with_budgets(
            inner,
            read.map(RateLimit::shared),
            write.map(RateLimit::shared),
        )
    }
}

impl<P: Protocol, B: Budget> Throttled<P, B> {
    /// Limits the connection with the given budgets: clone one `Arc<RateLimit>` into every
    /// connection of a server to give them one shared rate.
    ///
    /// ```
    /// use loomwork::policy::{Rate, RateLimit, Throttled};
    /// # use loomwork::stream::{Protocol, Transport};
    /// # struct Echo;
    /// # impl Protocol for Echo {
    /// #     type Message = ();
    /// #     fn data_received(&mut self, d: &mut bytes::BytesMut, _: &mut Transport<'_>) { d.clear(); }
    /// # }
    /// use loomwork::stream::ServerFactory;
    /// let server_wide = RateLimit::shared(Rate::per_second(10 * 1024 * 1024));
    /// let mut factory = move |_peer: core::net::SocketAddr| {
    ///     Throttled::with_budgets(Echo, Some(server_wide.clone()), None)
    /// };
    /// assert!(factory.build_protocol("127.0.0.1:9".parse().unwrap()).is_some());
    /// ```
    pub fn with_budgets(inner: P, read: Option<B>, write: Option<B>) -> Self {
        Throttled {
            inner,
            read,
            write,
            offered: 0,
            read_hold: None,
            write_hold: None,
            transport_paused: false,
            held_since: None,
        }
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// True while reads are held for lack of read budget.
    pub fn is_read_throttled(&self) -> bool {
        self.read_hold.is_some()
    }

    /// True while the protocol is paused for lack of write budget.
    pub fn is_write_throttled(&self) -> bool {
        self.write_hold.is_some()
    }

    /// Runs one callback of the wrapped protocol and charges what it queued.
    fn forward(
        &mut self,
        tx: &mut Transport<'_, P::Message>,
        call: impl FnOnce(&mut P, &mut Transport<'_, P::Message>),
    ) {
        let queued = tx.queued_bytes();
        call(&mut self.inner, tx);
        let written = tx.queued_bytes().saturating_sub(queued);
        self.charge_writes(written, tx);
    }

    fn charge_writes(&mut self, written: usize, tx: &mut Transport<'_, P::Message>) {
        let Some(budget) = &self.write else {
            return;
        };
        let now = tx.now();
        budget.charge(now, written as u64);
        if self.write_hold.is_some() || tx.is_closing() || budget.available(now) > 0 {
            return;
        }
        // Overdrawn: pause the producer until the debt is paid.
        let at = budget.ready_at(now, 1);
        self.write_hold = Some(tx.call_at(at));
        self.note_hold_change(tx);
        if !self.transport_paused {
            self.inner.pause_producing(tx);
        }
    }

    fn end_write_hold(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.write_hold = None;
        self.note_hold_change(tx);
        if !self.transport_paused {
            self.forward(tx, |p, tx| p.resume_producing(tx));
        }
    }

    fn end_read_hold(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.read_hold = None;
        self.note_hold_change(tx);
        // Buffered bytes come back through `data_received` right after this callback.
        tx.release_reading();
    }

    /// Keeps `Stats::time_throttled` up to date as holds start and end.
    fn note_hold_change(&mut self, tx: &mut Transport<'_, P::Message>) {
        let held = self.read_hold.is_some() || self.write_hold.is_some();
        let now = tx.now();
        match (held, self.held_since) {
            (true, None) => self.held_since = Some(now),
            (false, Some(since)) => {
                self.held_since = None;
                tx.stats_mut().time_throttled += now.saturating_duration_since(since);
            }
            _ => {}
        }
    }
}

impl<P: Protocol, B: Budget> Protocol for Throttled<P, B> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        let now = tx.now();
        // Bytes already shown and left unconsumed are shown again for free; new ones are
        // charged when shown, so a protocol waiting for the rest of a frame sees the window
        // grow only as fast as the budget refills.
        let allowed = match &self.read {
            None => data.len(),
            Some(budget) => {
                let fresh = usize::try_from(budget.available(now)).unwrap_or(usize::MAX);
                let allowed = data.len().min(self.offered.saturating_add(fresh));
                budget.charge(now, allowed.saturating_sub(self.offered) as u64);
                allowed
            }
        };
        let withheld = data.split_off(allowed);
        self.forward(tx, |p, tx| p.data_received(data, tx));
        self.offered = data.len();
        data.unsplit(withheld);
        let Some(budget) = &self.read else {
            return;
        };
        let waiting = data.len().saturating_sub(self.offered);
        if waiting > 0 && self.read_hold.is_none() && !tx.is_closing() {
            let at = budget.ready_at(now, waiting as u64);
            tx.hold_reading();
            self.read_hold = Some(tx.call_at(at));
            self.note_hold_change(tx);
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        if self.read_hold == Some(timer) {
            self.end_read_hold(tx);
        } else if self.write_hold == Some(timer) {
            self.end_write_hold(tx);
        } else {
            self.forward(tx, |p, tx| p.timer_fired(timer, tx));
        }
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.message(message, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.transport_paused = true;
        if self.write_hold.is_none() {
            self.inner.pause_producing(tx);
        }
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.transport_paused = false;
        if self.write_hold.is_none() {
            self.forward(tx, |p, tx| p.resume_producing(tx));
        }
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.inner.connection_lost(reason);
    }
}
