//! Companions: work a connection's thread drives beside the connection (a relay's upstream
//! leg, attached with [`Handle::attach`](loomwork::stream::Handle::attach)).
//!
//! A companion is a second state machine with a socket of its own, turned by the same loop as
//! the connection and sleeping in the same `poll(2)`: a relay's two legs then hand each other
//! their bytes without waking another thread, and a thread still sleeps in exactly one place.

use std::io;
use std::sync::Arc;

use loomwork::{Instant, MonotonicClock};

use crate::driver::Turn;
use crate::wait::{self, Readiness, Wakeup, Watch};

/// Non-blocking work that a connection's thread drives beside the connection until it ends.
///
/// The thread calls [`turn`](Self::turn) on every round of its loop; when the connection and
/// every companion are idle it sleeps in one `poll(2)` over all their sockets (each
/// companion's [`watch`](Self::watch)), until the earliest [`next_timeout`](Self::next_timeout) at
/// most, then hands each companion what its socket reported ([`handle_ready`](Self::handle_ready)).
/// Anything that should wake the companion (its mailbox) notifies the thread's [`Wakeup`],
/// which its [`CompanionJob`] receives.
pub(crate) trait Companion: Send {
    /// One round of work, without blocking.
    fn turn(&mut self, clock: &MonotonicClock) -> Turn;
    /// The socket to sleep on, and what for; `None` for none.
    fn watch(&self) -> Option<Watch<'_>>;
    /// When the companion must be turned at the latest, if ever.
    fn next_timeout(&self) -> Option<Instant>;
    /// What its [`watch`](Self::watch) reported in the last sleep.
    fn handle_ready(&mut self, ready: Readiness, clock: &MonotonicClock);
    /// The sleep itself failed (its `poll(2)` was refused): fail whatever waits on it.
    fn handle_error(&mut self, err: &io::Error, clock: &MonotonicClock);
}

/// The job type this runtime takes through [`Handle::attach`](loomwork::stream::Handle::attach):
/// builds the companion, given the wake-up of the thread that will drive it.
pub(crate) struct CompanionJob(Box<dyn FnOnce(Arc<Wakeup>) -> Box<dyn Companion> + Send>);

impl CompanionJob {
    pub(crate) fn new(
        build: impl FnOnce(Arc<Wakeup>) -> Box<dyn Companion> + Send + 'static,
    ) -> Self {
        CompanionJob(Box::new(build))
    }

    /// The companion, for the thread that `wakeup` wakes.
    pub(crate) fn start(self, wakeup: &Arc<Wakeup>) -> Box<dyn Companion> {
        (self.0)(Arc::clone(wakeup))
    }
}

/// The companions of one connection's thread (almost always none or one).
#[derive(Default)]
pub(crate) struct Companions(Vec<Box<dyn Companion>>);

impl Companions {
    pub(crate) fn push(&mut self, companion: Box<dyn Companion>) {
        self.0.push(companion);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Turns each companion once and drops those that ended; true if any has work left that
    /// needs no waiting.
    pub(crate) fn turn(&mut self, clock: &MonotonicClock) -> bool {
        let mut busy = false;
        self.0.retain_mut(|companion| match companion.turn(clock) {
            Turn::Ended => false,
            Turn::Busy => {
                busy = true;
                true
            }
            Turn::Idle => true,
        });
        busy
    }

    /// The earliest of the companions' deadlines.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.0
            .iter()
            .filter_map(|companion| companion.next_timeout())
            .min()
    }

    /// Sleeps in one `poll(2)` over `first` (the connection's socket, if any) and every
    /// companion's socket, hands the companions what theirs reported and returns what `first`
    /// reported.
    pub(crate) fn sleep(
        &mut self,
        wakeup: &Wakeup,
        first: Option<Watch<'_>>,
        timeout: Option<std::time::Duration>,
        clock: &MonotonicClock,
    ) -> io::Result<Readiness> {
        const INLINE: usize = 4;
        let count = self.0.len() + 1;
        let mut inline_ready = [Readiness::default(); INLINE];
        let mut heap_ready = Vec::new();
        let ready: &mut [Readiness] = if count <= INLINE {
            &mut inline_ready[..count]
        } else {
            heap_ready.resize(count, Readiness::default());
            &mut heap_ready
        };
        {
            let mut inline_watches = [None; INLINE];
            let mut heap_watches = Vec::new();
            let watches: &mut [Option<Watch<'_>>] = if count <= INLINE {
                &mut inline_watches[..count]
            } else {
                heap_watches.resize(count, None);
                &mut heap_watches
            };
            watches[0] = first;
            for (slot, companion) in watches[1..].iter_mut().zip(&self.0) {
                *slot = companion.watch();
            }
            wait::sleep_many(wakeup, watches, ready, timeout)?;
        }
        for (companion, found) in self.0.iter_mut().zip(&ready[1..]) {
            companion.handle_ready(*found, clock);
        }
        Ok(ready[0])
    }

    /// Runs the companions to their end, on their own (after the connection has ended: a
    /// relay's other leg still has to hear it and close).
    pub(crate) fn finish(&mut self, wakeup: &Wakeup, clock: &MonotonicClock) {
        let _owner = wait::Owner::new(wakeup);
        loop {
            let busy = self.turn(clock);
            if self.is_empty() {
                return;
            }
            if busy {
                continue;
            }
            let timeout = match self.next_timeout() {
                Some(at) if at <= clock.now() => continue,
                Some(at) => Some(clock.until(at)),
                None => None,
            };
            if let Err(err) = self.sleep(wakeup, None, timeout, clock) {
                for companion in &mut self.0 {
                    companion.handle_error(&err, clock);
                }
            }
        }
    }
}
