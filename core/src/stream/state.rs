//! The stream connection's lifecycle: one state enum and the one function that moves it.
//!
//! Every change to where a connection is in its life goes through [`State::on`], which is pure:
//! it takes the state and an [`Event`] and returns the next state and the [`Effects`] the
//! connection must carry out (tell the protocol it ended, drop the queue, hand the runtime a
//! socket action). Nothing here calls the protocol, so the whole table can be tested over every
//! (state, event) pair without a connection.

use core::time::Duration;

use crate::reason::{Reason, Timeout};
use crate::stream::Action;
use crate::time::Instant;

/// Where a connection is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Built, not yet connected.
    Pending,
    /// Connected; reading (until the peer's EOF) and writing.
    Open(Halves),
    /// Graceful close requested: no more reading, flushing the queue until `deadline`.
    Closing {
        reason: Reason,
        deadline: Option<Instant>,
        halves: Halves,
    },
    /// Flushed and `connection_lost` delivered, our writing side shut down: reading and
    /// discarding the peer's input until its EOF or `deadline`, because closing a socket with
    /// unread input makes the kernel send a reset, which can destroy our own reply in flight.
    Lingering { deadline: Instant },
    /// Over: the terminal socket action has been queued.
    Closed,
}

/// The two directions of an open connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Halves {
    /// The peer shut down its writing side (we read EOF).
    pub(crate) peer_eof: bool,
    /// Our writing side.
    pub(crate) write: WriteSide,
}

/// Our writing side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteSide {
    Open,
    /// Shut down once the queue is empty.
    ShutdownRequested,
    /// The runtime has been told to shut it down.
    Shutdown,
}

/// Something that moves a connection along its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The socket is connected.
    Connected,
    /// The peer shut down its writing side.
    PeerEof,
    /// The protocol asked to half-close once the queue drains.
    ShutdownRequested,
    /// A graceful close was asked for, to be reported with this reason.
    CloseRequested(Reason),
    /// The write queue is empty.
    Drained,
    /// An abort was asked for (by the protocol, a wrapper, a handle or the runtime's owner).
    Abort(Reason),
    /// The socket failed.
    Failed(Reason),
    /// Time has passed.
    Tick(Instant),
}

/// What a transition asks the connection to do, in this order: end the protocol, then queue
/// the socket actions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Effects {
    /// Deliver `connection_lost` with this reason; the protocol's life is over.
    pub(crate) ended: Option<Reason>,
    /// Drop whatever is queued for writing: it will never be sent.
    pub(crate) discard_queue: bool,
    /// Tell the runtime to shut down our writing side.
    pub(crate) shutdown_write: bool,
    /// The terminal socket action ([`Action::Close`] or [`Action::Abort`]).
    pub(crate) socket: Option<Action>,
}

impl Effects {
    /// Adds what a later transition asks for. A connection ends once, so at most one of the
    /// two has `ended` or a terminal `socket` action.
    pub(crate) fn merge(&mut self, later: Effects) {
        self.ended = self.ended.take().or(later.ended);
        self.discard_queue |= later.discard_queue;
        self.shutdown_write |= later.shutdown_write;
        self.socket = self.socket.or(later.socket);
    }
}

/// What the transition function needs to know besides the state and the event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context {
    pub(crate) now: Instant,
    pub(crate) close_timeout: Option<Duration>,
    pub(crate) close_linger: Option<Duration>,
}

impl State {
    /// The one transition function: the next state and what to do about it. Events that make
    /// no sense in the current state (data after close, a second close) change nothing.
    pub(crate) fn on(self, event: Event, cx: Context) -> (State, Effects) {
        use Event as E;
        use State as S;
        let none = Effects::default;
        match (self, event) {
            (S::Pending, E::Connected) => (
                S::Open(Halves {
                    peer_eof: false,
                    write: WriteSide::Open,
                }),
                none(),
            ),
            (S::Open(_) | S::Closing { .. }, E::Abort(reason)) => {
                (S::Closed, ended(reason, Action::Abort))
            }
            (S::Open(_) | S::Closing { .. }, E::Failed(reason)) => {
                (S::Closed, ended(reason, Action::Close))
            }
            (S::Open(mut halves), E::PeerEof) => {
                halves.peer_eof = true;
                (S::Open(halves), none())
            }
            (S::Open(mut halves), E::ShutdownRequested) => {
                halves.request_shutdown();
                (S::Open(halves), none())
            }
            (
                S::Closing {
                    reason,
                    deadline,
                    mut halves,
                },
                E::ShutdownRequested,
            ) => {
                halves.request_shutdown();
                (
                    S::Closing {
                        reason,
                        deadline,
                        halves,
                    },
                    none(),
                )
            }
            (S::Open(halves), E::CloseRequested(reason)) => (
                S::Closing {
                    reason,
                    deadline: cx.close_timeout.map(|t| cx.now + t),
                    halves,
                },
                none(),
            ),
            (S::Open(mut halves), E::Drained) => {
                let mut effects = none();
                effects.shutdown_write = halves.flush_shutdown();
                if halves.peer_eof && halves.write == WriteSide::Shutdown {
                    // Both directions are closed and nothing is left to send: a clean end.
                    effects.ended = Some(Reason::Done);
                    effects.socket = Some(Action::Close);
                    return (S::Closed, effects);
                }
                (S::Open(halves), effects)
            }
            (
                S::Closing {
                    reason, mut halves, ..
                },
                E::Drained,
            ) => {
                let mut effects = none();
                effects.shutdown_write = halves.flush_shutdown();
                effects.ended = Some(reason);
                let linger = cx.close_linger.filter(|_| !halves.peer_eof);
                match linger {
                    Some(linger) => {
                        // Shut our side so the peer sees our EOF, then wait for its own.
                        effects.shutdown_write |= halves.write != WriteSide::Shutdown;
                        (
                            S::Lingering {
                                deadline: cx.now + linger,
                            },
                            effects,
                        )
                    }
                    None => {
                        effects.socket = Some(Action::Close);
                        (S::Closed, effects)
                    }
                }
            }
            (
                S::Closing {
                    deadline: Some(deadline),
                    ..
                },
                E::Tick(now),
            ) if now >= deadline => (
                S::Closed,
                ended(Reason::TimedOut(Timeout::Close), Action::Abort),
            ),
            (S::Lingering { .. }, E::PeerEof | E::Failed(_)) => (S::Closed, socket(Action::Close)),
            (S::Lingering { deadline }, E::Tick(now)) if now >= deadline => {
                (S::Closed, socket(Action::Close))
            }
            (S::Lingering { .. }, E::Abort(_)) => (S::Closed, socket(Action::Abort)),
            (state, _) => (state, none()),
        }
    }

    /// True while the protocol is running: connected and `connection_lost` not yet delivered.
    pub(crate) fn is_live(&self) -> bool {
        matches!(self, State::Open(_) | State::Closing { .. })
    }

    /// The directions of a live connection.
    pub(crate) fn halves(&self) -> Option<&Halves> {
        match self {
            State::Open(halves) | State::Closing { halves, .. } => Some(halves),
            _ => None,
        }
    }

    /// The close deadline while closing gracefully, or the linger deadline.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            State::Closing { deadline, .. } => *deadline,
            State::Lingering { deadline } => Some(*deadline),
            _ => None,
        }
    }
}

impl Halves {
    fn request_shutdown(&mut self) {
        if self.write == WriteSide::Open {
            self.write = WriteSide::ShutdownRequested;
        }
    }

    /// With the queue empty, a requested shutdown happens now; true if it did.
    fn flush_shutdown(&mut self) -> bool {
        let due = self.write == WriteSide::ShutdownRequested;
        if due {
            self.write = WriteSide::Shutdown;
        }
        due
    }
}

/// The protocol ends with `reason` and the socket gets `action`; an abort or a failure drops
/// the queue, a graceful end has flushed it already.
fn ended(reason: Reason, action: Action) -> Effects {
    Effects {
        ended: Some(reason),
        discard_queue: true,
        shutdown_write: false,
        socket: Some(action),
    }
}

fn socket(action: Action) -> Effects {
    Effects {
        socket: Some(action),
        ..Effects::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use alloc::vec::Vec;

    fn states() -> Vec<State> {
        let halves = |peer_eof, write| Halves { peer_eof, write };
        let mut all = vec![
            State::Pending,
            State::Lingering {
                deadline: Instant::from_millis(10),
            },
            State::Closed,
        ];
        for peer_eof in [false, true] {
            for write in [
                WriteSide::Open,
                WriteSide::ShutdownRequested,
                WriteSide::Shutdown,
            ] {
                all.push(State::Open(halves(peer_eof, write)));
                for deadline in [None, Some(Instant::from_millis(10))] {
                    all.push(State::Closing {
                        reason: Reason::Done,
                        deadline,
                        halves: halves(peer_eof, write),
                    });
                }
            }
        }
        all
    }

    fn events() -> Vec<Event> {
        vec![
            Event::Connected,
            Event::PeerEof,
            Event::ShutdownRequested,
            Event::CloseRequested(Reason::Done),
            Event::Drained,
            Event::Abort(Reason::Aborted),
            Event::Failed(Reason::Reset),
            Event::Tick(Instant::ZERO),
            Event::Tick(Instant::from_millis(10)),
        ]
    }

    fn cx(linger: Option<u64>) -> Context {
        Context {
            now: Instant::from_millis(5),
            close_timeout: Some(Duration::from_millis(100)),
            close_linger: linger.map(Duration::from_millis),
        }
    }

    #[test]
    fn every_state_and_event_keeps_the_lifecycle_rules() {
        for linger in [None, Some(50)] {
            for state in states() {
                for event in events() {
                    let (next, effects) = state.clone().on(event.clone(), cx(linger));
                    let why = alloc::format!("{state:?} + {event:?} -> {next:?}, {effects:?}");
                    // The protocol ends only from a live state, and always leaves it.
                    if effects.ended.is_some() {
                        assert!(state.is_live() && !next.is_live(), "{why}");
                    }
                    if state.is_live() && !next.is_live() {
                        assert!(effects.ended.is_some(), "{why}");
                    }
                    // A terminal action is given exactly when the state becomes Closed.
                    assert_eq!(
                        effects.socket.is_some(),
                        next == State::Closed && state != State::Closed,
                        "{why}"
                    );
                    // Closed absorbs everything; Pending leaves only when connected.
                    if state == State::Closed {
                        assert_eq!((&next, &effects), (&State::Closed, &Effects::default()));
                    }
                    if state == State::Pending && event != Event::Connected {
                        assert_eq!(next, State::Pending, "{why}");
                    }
                    // Nothing but a graceful drain or a deadline reaches Lingering.
                    if let State::Lingering { .. } = next {
                        let from_closing = matches!(state, State::Closing { .. });
                        assert!(from_closing || state == next, "{why}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_drained_graceful_close_lingers_only_while_the_peer_may_still_send() {
        let closing = |peer_eof| State::Closing {
            reason: Reason::Done,
            deadline: None,
            halves: Halves {
                peer_eof,
                write: WriteSide::Open,
            },
        };
        let (next, effects) = closing(false).on(Event::Drained, cx(Some(50)));
        assert_eq!(
            next,
            State::Lingering {
                deadline: Instant::from_millis(55)
            }
        );
        assert!(effects.shutdown_write && effects.socket.is_none());
        let (next, effects) = closing(true).on(Event::Drained, cx(Some(50)));
        assert_eq!(next, State::Closed);
        assert_eq!(effects.socket, Some(Action::Close));
    }
}
