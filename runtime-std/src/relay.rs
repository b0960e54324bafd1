//! Relays on loomwork-std: a [`Dialer`] that runs each relay's upstream leg on the thread of
//! its client leg, as a companion of that connection (see [`crate::companion`]).

use std::any::Any;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use loomwork::connector::{self, Connector};
use loomwork::relay::{Dial, Dialer, RelayLeg, RelayMessage, UpstreamFactory};
use loomwork::stream::{Config, Connection, Handle};
use loomwork::{Instant, MonotonicClock};
use loomwork_net::dial::{finish_connect, start_connect, Dial as Dialed};
use loomwork_net::{next_connection_id, reason_from_io};

use crate::companion::{Companion, CompanionJob};
use crate::driver::{Turn, Wire};
use crate::mailbox::ThreadMailbox;
use crate::wait::{Readiness, Wakeup, Watch};

/// A [`Dialer`] for [`RelayFactory`](loomwork::relay::RelayFactory) that connects each relay's
/// upstream leg to `upstream`, with `connector`'s attempt timeout (one attempt, no retries)
/// and the connection settings `config`.
///
/// The upstream leg runs on the client leg's own thread, driven by the same loop and sleeping
/// in the same `poll(2)` (it is attached through the client leg's handle): the two legs pass
/// their bytes without waking another thread, where two threads would cost a context switch
/// per relayed chunk. The connect itself does not block that thread either. A client leg that
/// is not a loomwork-std connection has its upstream leg dialed by
/// [`connect_tcp_with`](crate::connect_tcp_with) on a thread of its own instead.
///
/// ```
/// use loomwork::relay::{RelayConfig, RelayFactory};
/// use loomwork::{connector, stream::Config};
/// use std::time::Duration;
///
/// let upstream = "127.0.0.1:9".parse()?;
/// let dialer = loomwork_std::relay_dialer(upstream, connector::Config::default(), Config::default());
/// let relay = RelayFactory::new(dialer, RelayConfig::default());
/// let server = loomwork_std::listen_tcp("127.0.0.1:0".parse()?, relay)?;
/// server.shutdown(Duration::ZERO);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn relay_dialer(upstream: SocketAddr, connector: connector::Config, config: Config) -> Dialer {
    // One copy for every upstream leg this dialer starts.
    let config = Arc::new(config);
    Arc::new(move |dial: Dial| -> Box<dyn Any + Send> {
        let client = dial.client.clone();
        let stop = Arc::new(Stop::default());
        // The request waits here until the client leg's thread builds the companion, so that a
        // refused job gives it back for the fallback.
        let slot = Arc::new(Mutex::new(Some(dial)));
        let job = {
            let (slot, stop, connector, config) = (
                Arc::clone(&slot),
                Arc::clone(&stop),
                connector.clone(),
                Arc::clone(&config),
            );
            CompanionJob::new(move |wakeup: Arc<Wakeup>| -> Box<dyn Companion> {
                let _ = stop.waker.set(Arc::clone(&wakeup));
                match take(&slot) {
                    Some(dial) => Box::new(Upstream {
                        addr: upstream,
                        connector: Connector::new(UpstreamFactory::new(dial), connector),
                        config,
                        wakeup,
                        stop,
                        stop_applied: false,
                        state: State::Waiting,
                    }),
                    // Unreachable: only this job takes the request, and a job runs once.
                    None => Box::new(Done),
                }
            })
        };
        match client.attach(Box::new(job)) {
            Ok(()) => Box::new(Attempt(stop)),
            Err(job) => {
                drop(job);
                match take(&slot) {
                    Some(dial) => Box::new(crate::connect_tcp_with(
                        upstream,
                        UpstreamFactory::new(dial),
                        connector.clone(),
                        Config::clone(&config),
                    )),
                    // Unreachable: a job given back was never started.
                    None => Box::new(()),
                }
            }
        }
    })
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// What the client leg keeps of its upstream attempt, and the companion sees.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    /// The thread the companion runs on, once it runs.
    waker: OnceLock<Arc<Wakeup>>,
}

/// The token the [`Dialer`] returns: dropping it stops an attempt still pending (as dropping
/// a [`Client`](crate::Client) does); an upstream leg already connected runs on until it
/// hears from the client leg.
struct Attempt(Arc<Stop>);

impl Drop for Attempt {
    fn drop(&mut self) {
        self.0.stopped.store(true, Ordering::Release);
        if let Some(waker) = self.0.waker.get() {
            waker.notify();
        }
    }
}

/// A relay's upstream leg as a companion: the [`Connector`] loop of `connect_tcp` (without
/// blocking in `connect(2)`), then the connection, driven like the thread's own.
struct Upstream {
    addr: SocketAddr,
    connector: Connector<UpstreamFactory>,
    config: Arc<Config>,
    wakeup: Arc<Wakeup>,
    stop: Arc<Stop>,
    stop_applied: bool,
    state: State,
}

enum State {
    /// Between attempts (or before the first).
    Waiting,
    /// An attempt in progress: the socket is writable (or in error) once it is over.
    Dialing { socket: TcpStream, done: bool },
    /// The connection is up.
    Connected(Box<Leg>),
}

/// An established upstream connection.
struct Leg {
    conn: Connection<RelayLeg>,
    wire: Wire<RelayLeg>,
    mailbox: Arc<ThreadMailbox<RelayMessage>>,
}

impl Drop for Leg {
    fn drop(&mut self) {
        // Later posts are refused, and the handles no longer hold the thread's wake-up.
        self.mailbox.close();
    }
}

impl Upstream {
    fn apply_stop(&mut self) {
        if !self.stop_applied && self.stop.stopped.load(Ordering::Acquire) {
            self.stop_applied = true;
            self.connector.stop_trying();
        }
    }

    /// Starts an attempt; a connection made at once is set up before returning.
    fn dial(&mut self, clock: &MonotonicClock) {
        match start_connect(self.addr) {
            Ok(Dialed::InProgress(socket)) => {
                self.state = State::Dialing {
                    socket,
                    done: false,
                };
            }
            Ok(Dialed::Connected(socket)) => self.connected(socket, clock),
            Err(err) => self.failed(&err, clock),
        }
    }

    fn failed(&mut self, err: &io::Error, clock: &MonotonicClock) {
        self.state = State::Waiting;
        self.connector
            .handle_connect_failed(clock.now(), reason_from_io(err));
    }

    /// Starts the upstream leg on a connected socket, as `connect_tcp` does.
    fn connected(&mut self, socket: TcpStream, clock: &MonotonicClock) {
        self.state = State::Waiting;
        let peer = socket.peer_addr().unwrap_or(self.addr);
        self.connector.handle_connected(clock.now(), peer);
        let Some(protocol) = self.connector.poll_protocol() else {
            // Refused by the factory: the connector counted it as lost; the socket closes.
            return;
        };
        let mailbox = Arc::new(ThreadMailbox::for_companion(Arc::clone(&self.wakeup)));
        let handle = Handle::new(next_connection_id(), peer, Arc::clone(&mailbox) as _);
        let mut conn = Connection::new(protocol, Arc::clone(&self.config));
        conn.set_handle(handle);
        match Wire::start(&mut conn, socket, (None, peer), clock) {
            Ok(wire) => {
                self.state = State::Connected(Box::new(Leg {
                    conn,
                    wire,
                    mailbox,
                }));
            }
            Err(reason) => {
                mailbox.close();
                drop(conn);
                self.apply_stop();
                self.connector.handle_connection_lost(clock.now(), reason);
            }
        }
    }

    /// The connector's part of a turn: stop requests, deadlines, actions, a finished attempt.
    fn drive_connector(&mut self, clock: &MonotonicClock) -> Turn {
        // The first attempt starts on the first turn (later calls are ignored).
        self.connector.start(clock.now());
        loop {
            self.apply_stop();
            let now = clock.now();
            if self.connector.next_timeout().is_some_and(|at| at <= now) {
                self.connector.handle_timeout(now);
            }
            while let Some(action) = self.connector.poll_action() {
                // Any earlier attempt is abandoned (its socket closed) on either action.
                if matches!(self.state, State::Dialing { .. }) {
                    self.state = State::Waiting;
                }
                if action == connector::Action::Dial {
                    self.dial(clock);
                }
            }
            match std::mem::replace(&mut self.state, State::Waiting) {
                State::Dialing { socket, done: true } => {
                    match finish_connect(&socket) {
                        Ok(()) => self.connected(socket, clock),
                        Err(err) => self.failed(&err, clock),
                    }
                    continue;
                }
                State::Connected(leg) => {
                    self.state = State::Connected(leg);
                    return Turn::Busy;
                }
                other => self.state = other,
            }
            if self.connector.is_ended() && matches!(self.state, State::Waiting) {
                return Turn::Ended;
            }
            return if self
                .connector
                .next_timeout()
                .is_some_and(|at| at <= clock.now())
            {
                Turn::Busy
            } else {
                Turn::Idle
            };
        }
    }
}

impl Companion for Upstream {
    fn turn(&mut self, clock: &MonotonicClock) -> Turn {
        if let State::Connected(leg) = &mut self.state {
            let Leg {
                conn,
                wire,
                mailbox,
            } = &mut **leg;
            // A companion's mailbox takes no jobs, so none are delivered.
            let turn = wire.turn(conn, mailbox, clock, &mut Vec::new());
            mailbox.publish(conn.stats());
            if turn != Turn::Ended {
                return turn;
            }
            let reason = conn.reason().cloned().unwrap_or(loomwork::Reason::Lost);
            // Closes the mailbox, then the socket.
            self.state = State::Waiting;
            // A stop requested while connected is applied before the loss is reported (RC-7).
            self.apply_stop();
            self.connector.handle_connection_lost(clock.now(), reason);
        }
        self.drive_connector(clock)
    }

    fn watch(&self) -> Option<Watch<'_>> {
        match &self.state {
            State::Waiting => None,
            State::Dialing { socket, .. } => Some(Watch::new(socket, false, true)),
            State::Connected(leg) => leg.wire.watch(&leg.conn),
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::Connected(leg) => leg.conn.next_timeout(),
            _ => self.connector.next_timeout(),
        }
    }

    fn handle_ready(&mut self, ready: Readiness, clock: &MonotonicClock) {
        match &mut self.state {
            State::Waiting => {}
            State::Dialing { done, .. } => *done |= ready.writable,
            State::Connected(leg) => {
                let Leg { conn, wire, .. } = &mut **leg;
                if let Err(err) = wire.take_readiness(conn, ready, clock) {
                    conn.handle_error(clock.now(), reason_from_io(&err));
                }
            }
        }
    }

    fn handle_error(&mut self, err: &io::Error, clock: &MonotonicClock) {
        match &mut self.state {
            State::Waiting => {}
            State::Dialing { .. } => self.failed(err, clock),
            State::Connected(leg) => leg.conn.handle_error(clock.now(), reason_from_io(err)),
        }
    }
}

/// A companion with nothing to do.
struct Done;

impl Companion for Done {
    fn turn(&mut self, _: &MonotonicClock) -> Turn {
        Turn::Ended
    }

    fn watch(&self) -> Option<Watch<'_>> {
        None
    }

    fn next_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_ready(&mut self, _: Readiness, _: &MonotonicClock) {}

    fn handle_error(&mut self, _: &io::Error, _: &MonotonicClock) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use loomwork::bytes::Bytes;
    use loomwork::stream::{Control, Mailbox};
    use loomwork::Reason;
    use std::sync::mpsc;

    /// A client leg that is no loomwork-std connection: takes messages, refuses jobs.
    struct Foreign(Mutex<mpsc::Sender<RelayMessage>>);

    impl Mailbox<RelayMessage> for Foreign {
        fn post(&self, message: RelayMessage) -> Result<(), RelayMessage> {
            let _ = self.0.lock().unwrap().send(message);
            Ok(())
        }
        fn control(&self, _: Control) -> bool {
            true
        }
    }

    #[test]
    fn a_client_leg_that_refuses_the_job_gets_an_upstream_on_its_own_thread() {
        let (messages, message_rx) = mpsc::channel();
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let client = Handle::new(0, peer, Arc::new(Foreign(Mutex::new(messages))) as _);
        let nobody = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dialer = relay_dialer(nobody, connector::Config::default(), Config::default());
        let token = dialer(Dial {
            client,
            peer,
            local: peer,
            preamble: Bytes::new(),
            window: 1024,
        });
        let client = token
            .downcast::<crate::Client<UpstreamFactory>>()
            .expect("the fallback returns the connect_tcp client");
        let failed = message_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap();
        assert!(
            matches!(failed, RelayMessage::Failed(Reason::Refused)),
            "{failed:?}"
        );
        client.join();
    }
}
