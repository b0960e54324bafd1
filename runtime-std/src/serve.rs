//! What happens to one accepted socket: ask the factory, then run the connection on its own
//! thread and report its end back to the factory.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;

use loomwork::stream::ServerMessage;
use loomwork::stream::{Config, Connection, Handle, ServerFactory};
use loomwork::MonotonicClock;
use loomwork_net::reason_from_io;

use crate::mailbox::ThreadMailbox;
use crate::registry::Registry;
use crate::wait::Wakeup;
use crate::{driver, next_connection_id};

/// What every accept loop and connection thread of one server shares.
pub(crate) struct Shared<F: ServerFactory> {
    factory: Mutex<F>,
    pub(crate) registry: Arc<Registry<ServerMessage<F>>>,
    config: Config,
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
            config,
            clock: MonotonicClock::new(),
        }
    }

    /// Handles one accepted socket. An error means the system is short of resources (no
    /// wake-up descriptor, no thread); the socket has been closed and the accept loop should back off.
    pub(crate) fn start(self: &Arc<Self>, stream: TcpStream, peer: SocketAddr) -> io::Result<()> {
        let Some(protocol) = self.factory().build_protocol(peer) else {
            // Refused (Twisted PR-2): dropping the stream closes it; no callback runs.
            return Ok(());
        };
        let wakeup = match Wakeup::new() {
            Ok(wakeup) => Arc::new(wakeup),
            Err(err) => {
                self.factory()
                    .connection_closed(peer, &reason_from_io(&err));
                return Err(err);
            }
        };
        let mailbox = Arc::new(ThreadMailbox::new(Arc::clone(&wakeup)));
        let id = next_connection_id();
        let handle = Handle::new(id, peer, Arc::clone(&mailbox) as _);
        self.registry.arrive(handle.clone());
        let shared = Arc::clone(self);
        let thread_mailbox = Arc::clone(&mailbox);
        let spawned = thread::Builder::new()
            .name(format!("loomwork-conn-{id}"))
            .spawn(move || {
                let connection = Connection::new(protocol, shared.config.clone());
                shared.serve(connection, handle, stream, &wakeup, &thread_mailbox);
            });
        match spawned {
            Ok(thread) => {
                self.registry.keep_thread(thread);
                Ok(())
            }
            Err(err) => {
                // The closure, and with it the socket and the protocol, was dropped unrun.
                mailbox.close();
                self.factory()
                    .connection_closed(peer, &reason_from_io(&err));
                self.registry.depart(id);
                Err(err)
            }
        }
    }

    /// The body of a connection thread.
    fn serve(
        &self,
        mut connection: Connection<F::Protocol>,
        handle: Handle<ServerMessage<F>>,
        stream: TcpStream,
        wakeup: &Wakeup,
        mailbox: &ThreadMailbox<ServerMessage<F>>,
    ) {
        let (id, peer) = (handle.id(), handle.peer());
        // Runs even if the protocol panics, so that shutdown never waits for a dead thread.
        let _departure = Departure {
            registry: &self.registry,
            mailbox,
            id,
        };
        connection.set_handle(handle);
        let reason = driver::run(&mut connection, stream, peer, wakeup, mailbox, &self.clock);
        drop(connection);
        mailbox.close();
        self.factory().connection_closed(peer, &reason);
    }

    fn factory(&self) -> MutexGuard<'_, F> {
        // A factory that panicked is still the factory the user gave us; keep serving.
        self.factory.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
