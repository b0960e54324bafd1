//! What happens to one accepted socket: ask the factory, then run the connection on a thread
//! of its own (a new one, or one whose connection has ended and that waits in the pool) and
//! report its end back to the factory.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use loomwork::stream::ServerMessage;
use loomwork::stream::{Config, Connection, Handle, ServerFactory};
use loomwork::MonotonicClock;
use loomwork_net::listen::Accepted;
use loomwork_net::{next_connection_id, reason_from_io};

use crate::mailbox::ThreadMailbox;
use crate::pool::Job;
use crate::registry::Registry;
use crate::wait::Wakeup;

use crate::driver;

/// What every accept loop and connection thread of one server shares.
pub(crate) struct Shared<F: ServerFactory> {
    factory: Mutex<F>,
    pub(crate) registry: Arc<Registry<ServerMessage<F>>>,
    /// One copy for every connection of the server.
    config: Arc<Config>,
    clock: MonotonicClock,
}

impl<F> Shared<F>
where
    F: ServerFactory + Send + 'static,
    F::Protocol: Send + 'static,
    ServerMessage<F>: Send + 'static,
{
    pub(crate) fn new(factory: F, config: Config) -> Self {
        Shared {
            factory: Mutex::new(factory),
            registry: Arc::new(Registry::new()),
            config: Arc::new(config),
            clock: MonotonicClock::new(),
        }
    }

    /// Handles one accepted socket, with the wake-up descriptor that was made for it before
    /// `accept(2)` (so that no socket is ever accepted and then dropped for want of one).
    pub(crate) fn start(self: &Arc<Self>, accepted: Accepted, wakeup: Arc<Wakeup>) -> Started<F> {
        let Some(protocol) = self.factory().build_protocol(accepted.peer) else {
            // Refused (Twisted PR-2): dropping the stream closes it; no callback runs.
            return Started::Refused(wakeup);
        };
        let arrival = Arrival {
            protocol,
            accepted,
            wakeup,
        };
        match self.launch(arrival) {
            Ok(()) => Started::Running,
            Err((arrival, _)) => Started::NoThread(arrival),
        }
    }

    /// Starts the thread of an accepted connection. When the system has no thread to give
    /// (`EAGAIN`, `ENOMEM`), the connection is handed back whole, socket and protocol, for
    /// the accept loop to retry after a pause: a peer that was accepted is served late, never
    /// reset for want of a resource of ours.
    pub(crate) fn launch(
        self: &Arc<Self>,
        arrival: Arrival<F>,
    ) -> Result<(), (Arrival<F>, io::Error)> {
        let mailbox = Arc::new(ThreadMailbox::new(Arc::clone(&arrival.wakeup)));
        let id = next_connection_id();
        let handle = Handle::new(id, arrival.accepted.peer, Arc::clone(&mailbox) as _);
        // Before the thread exists, so that its departure can never come first.
        self.registry.arrive(handle.clone());
        // `spawn` drops its closure when it fails: the connection waits in a slot the closure
        // only shares, so that it can be taken back.
        let slot = Arc::new(Mutex::new(Some(arrival)));
        let (shared, job_slot) = (Arc::clone(self), Arc::clone(&slot));
        let thread_mailbox = Arc::clone(&mailbox);
        let job: Job = Box::new(move || {
            let taken = take(&job_slot);
            drop(job_slot);
            if let Some(arrival) = taken {
                shared.serve(arrival, handle, &thread_mailbox);
            }
        });
        // A thread whose connection has ended may be waiting for this one (see `pool`).
        let Err(job) = self.registry.pool.hand_over(job) else {
            return Ok(());
        };
        let registry = Arc::clone(&self.registry);
        let spawned = thread::Builder::new()
            .name("loomwork-conn".into())
            .spawn(move || registry.pool.serve(job));
        match spawned {
            Ok(thread) => {
                self.registry.keep_thread(thread);
                Ok(())
            }
            Err(err) => {
                mailbox.close();
                self.registry.depart(id);
                match take(&slot) {
                    Some(arrival) => Err((arrival, err)),
                    // Unreachable: a thread that was never created took nothing.
                    None => Ok(()),
                }
            }
        }
    }

    /// Gives up on a connection that never got a thread (the server is stopping): the socket
    /// closes, and the factory hears why, as for any connection it built a protocol for.
    pub(crate) fn abandon(&self, arrival: Arrival<F>, err: &io::Error) {
        let Arrival {
            protocol, accepted, ..
        } = arrival;
        let peer = accepted.peer;
        drop((protocol, accepted));
        self.factory().connection_closed(peer, &reason_from_io(err));
    }

    /// The body of a connection thread.
    fn serve(
        &self,
        arrival: Arrival<F>,
        handle: Handle<ServerMessage<F>>,
        mailbox: &ThreadMailbox<ServerMessage<F>>,
    ) {
        let Arrival {
            protocol,
            accepted,
            wakeup,
        } = arrival;
        let Accepted {
            stream,
            peer,
            local,
        } = accepted;
        let mut connection = Connection::new(protocol, Arc::clone(&self.config));
        let id = handle.id();
        // Runs even if the protocol panics, so that shutdown never waits for a dead thread.
        let _departure = Departure {
            registry: &self.registry,
            mailbox,
            id,
        };
        connection.set_handle(handle);
        let addresses = (Some(local), peer);
        let (reason, mut companions) = driver::run(
            &mut connection,
            stream,
            addresses,
            &wakeup,
            mailbox,
            &self.clock,
        );
        drop(connection);
        mailbox.close();
        self.factory().connection_closed(peer, &reason);
        // A relay's upstream leg still has to hear that this one ended, and close. The
        // connection stays in the registry meanwhile, so that a shutdown waits for it.
        companions.finish(&wakeup, &self.clock);
    }

    fn factory(&self) -> MutexGuard<'_, F> {
        // A factory that panicked is still the factory the user gave us; keep serving.
        self.factory.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An accepted connection with everything it needs but its thread.
pub(crate) struct Arrival<F: ServerFactory> {
    protocol: F::Protocol,
    accepted: Accepted,
    wakeup: Arc<Wakeup>,
}

/// What [`Shared::start`] made of an accepted socket.
pub(crate) enum Started<F: ServerFactory> {
    /// The connection runs on its own thread.
    Running,
    /// The factory refused the peer (the socket is closed); the unused wake-up is given back
    /// for the next connection.
    Refused(Arc<Wakeup>),
    /// No thread could be started: the connection is given back, to be started later.
    NoThread(Arrival<F>),
}

/// Takes what `slot` holds, even from a poisoned lock (nothing panics while holding it).
fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Removes a connection from the registry when its thread ends, however it ends.
struct Departure<'a, M> {
    registry: &'a Registry<M>,
    mailbox: &'a ThreadMailbox<M>,
    id: u64,
}

impl<M> Drop for Departure<'_, M> {
    fn drop(&mut self) {
        self.mailbox.close();
        self.registry.depart(self.id);
    }
}
