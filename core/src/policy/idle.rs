//! `IdleTimeout`: closes connections that stay silent both ways for too long (Twisted
//! `TimeoutFactory` / `TimeoutProtocol`, PO-6).

use core::time::Duration;

use bytes::BytesMut;

use crate::policy::IdleTimer;
use crate::reason::{Reason, Timeout};
use crate::stream::{Protocol, Transport};
use crate::timer::TimerId;

/// What an [`IdleTimeout`] does when the period passes without traffic.
///
/// Any `FnMut(&mut P, &mut IdleTimer, &mut Transport<'_, P::Message>)` closure is a hook.
pub trait OnIdle<P: Protocol> {
    /// The connection has been idle for a whole period. `timer` is no longer running: arm it
    /// again (say, after sending a keep-alive probe) to give the peer more time.
    fn timed_out(
        &mut self,
        protocol: &mut P,
        timer: &mut IdleTimer,
        tx: &mut Transport<'_, P::Message>,
    );

    /// Runs after every callback of the wrapped protocol: the place to carry out a change of
    /// timeout the protocol asked for (pulled from its own state, sans-IO style), so a protocol
    /// can lengthen, shorten or cancel its idle timeout from inside (TM-1). The default does
    /// nothing and compiles away.
    fn after_callback(
        &mut self,
        protocol: &mut P,
        timer: &mut IdleTimer,
        tx: &mut Transport<'_, P::Message>,
    ) {
        let _ = (protocol, timer, tx);
    }
}

/// The default [`OnIdle`] hook: close gracefully with `Reason::TimedOut(Timeout::Idle)`.
///
/// Twisted's `TimeoutProtocol` calls `loseConnection` (PO-6), which reports a clean close; the
/// typed reason tells the protocol and the factory why the connection ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseWhenIdle;

impl<P: Protocol> OnIdle<P> for CloseWhenIdle {
    fn timed_out(&mut self, _: &mut P, _: &mut IdleTimer, tx: &mut Transport<'_, P::Message>) {
        tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
    }
}

impl<P, F> OnIdle<P> for F
where
    P: Protocol,
    F: FnMut(&mut P, &mut IdleTimer, &mut Transport<'_, P::Message>),
{
    fn timed_out(
        &mut self,
        protocol: &mut P,
        timer: &mut IdleTimer,
        tx: &mut Transport<'_, P::Message>,
    ) {
        self(protocol, timer, tx)
    }
}

/// Wraps a protocol with an idle timeout that every byte in or out resets.
///
/// Traffic in is whatever reaches `data_received`; traffic out is whatever the wrapped
/// protocol queues, from any callback (Twisted resets on `write`, `writeSequence` and
/// `dataReceived`, PO-6). The timer is a transport timer, so it ends with the connection and
/// never fires into a closed one (PO-6's `AlreadyCalled` cannot happen).
///
/// What happens at the deadline, and any change of period the protocol asks for from inside,
/// is up to the [`OnIdle`] hook (by default: close with `TimedOut(Idle)`).
///
/// ```
/// use core::time::Duration;
/// use bytes::BytesMut;
/// use loomwork::policy::IdleTimeout;
/// use loomwork::stream::{Config, Connection, Protocol, Transport};
/// use loomwork::{Instant, Reason, Timeout};
///
/// struct Echo;
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
///         let _ = tx.write(data.split().freeze());
///     }
/// }
///
/// let addr = "127.0.0.1:1".parse().unwrap();
/// let idle = IdleTimeout::new(Echo, Duration::from_secs(30));
/// let mut conn = Connection::new(idle, Config::default());
/// conn.handle_connected(Instant::ZERO, addr, addr);
/// conn.handle_data(Instant::from_secs(20), b"ping");
/// conn.handle_written(Instant::from_secs(20), 4);
/// conn.handle_timeout(Instant::from_secs(30)); // reset at 20 s: nothing yet
/// assert!(!conn.is_closed());
/// conn.handle_timeout(Instant::from_secs(50));
/// assert_eq!(conn.reason(), Some(&Reason::TimedOut(Timeout::Idle)));
/// ```
#[derive(Debug)]
pub struct IdleTimeout<P, H = CloseWhenIdle> {
    inner: P,
    timer: IdleTimer,
    hook: H,
    reset_on_writes: bool,
}

impl<P: Protocol> IdleTimeout<P> {
    /// Closes `inner`'s connection after `period` without traffic (Twisted's default period is
    /// 30 minutes, DF-14).
    pub fn new(inner: P, period: Duration) -> Self {
        Self::with_hook(inner, Some(period), CloseWhenIdle)
    }
}

impl<P: Protocol, H: OnIdle<P>> IdleTimeout<P, H> {
    /// An idle timeout of `period` (`None`: off until [`set_timeout`](Self::set_timeout)) that
    /// calls `hook` when it passes.
    pub fn with_hook(inner: P, period: Option<Duration>, hook: H) -> Self {
        // Not running yet: `connection_made` starts it.
        let timer = IdleTimer::with_period(period);
        IdleTimeout {
            inner,
            timer,
            hook,
            reset_on_writes: true,
        }
    }

    /// Whether bytes the protocol queues count as traffic (the default, as in Twisted's
    /// `TimeoutProtocol`). Turn it off to time out peers that stay silent however much they
    /// are sent: a chat member who only listens, say.
    pub fn resetting_on_writes(mut self, on: bool) -> Self {
        self.reset_on_writes = on;
        self
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// The idle timer (its period and deadline).
    pub fn timer(&self) -> &IdleTimer {
        &self.timer
    }

    /// Changes the period from a callback of an enclosing wrapper; see
    /// [`IdleTimer::set_timeout`].
    pub fn set_timeout(
        &mut self,
        period: Option<Duration>,
        tx: &mut Transport<'_, P::Message>,
    ) -> Option<Duration> {
        self.timer.set_timeout(period, tx)
    }

    /// Runs one callback of the wrapped protocol, resetting the timer if it queued bytes.
    fn forward(
        &mut self,
        tx: &mut Transport<'_, P::Message>,
        call: impl FnOnce(&mut P, &mut Transport<'_, P::Message>),
    ) {
        let queued = tx.queued_bytes();
        call(&mut self.inner, tx);
        if self.reset_on_writes && tx.queued_bytes() > queued {
            self.timer.reset(tx);
        }
        self.hook
            .after_callback(&mut self.inner, &mut self.timer, tx);
    }
}

impl<P: Protocol, H: OnIdle<P>> Protocol for IdleTimeout<P, H> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.timer.start(tx);
        self.forward(tx, |p, tx| p.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        self.timer.reset(tx);
        self.forward(tx, |p, tx| p.data_received(data, tx));
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        if self.timer.owns(timer) {
            if self.timer.expired(timer, tx) {
                let (inner, idle, hook) = (&mut self.inner, &mut self.timer, &mut self.hook);
                hook.timed_out(inner, idle, tx);
            }
            return;
        }
        self.forward(tx, |p, tx| p.timer_fired(timer, tx));
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.message(message, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.inner.pause_producing(tx);
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.resume_producing(tx));
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.forward(tx, |p, tx| p.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.inner.connection_lost(reason);
    }
}
