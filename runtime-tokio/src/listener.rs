//! Listening sockets and the accept loop: one task per listening socket.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use loomwork::stream::ServerMessage;
use loomwork::stream::{Config, Connection, ServerFactory};
use loomwork::MonotonicClock;
use loomwork_net::listen::{self, bind_listeners, classify_accept_error, AcceptFailure};
use loomwork_net::tokio_fd::register;
use loomwork_net::{AcceptBackoff, ListenConfig, ACCEPT_BATCH};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::companion::Companions;
use crate::driver::drive;
use crate::mailbox::{new_handle, Inbox};
use crate::registry::{Registry, Ticket};

/// Binds the listening sockets `config` asks for on `addr` (loomwork-net's
/// `bind_listeners`, so every runtime binds the same way) and registers them with the
/// current runtime's reactor (the caller has entered it).
pub(crate) fn bind(
    addr: SocketAddr,
    config: &ListenConfig,
) -> io::Result<Vec<AsyncFd<TcpListener>>> {
    bind_listeners(addr, config)?
        .into_iter()
        .map(|listener| register(listener, Interest::READABLE))
        .collect()
}

/// Everything a connection task needs, built by the accept loop.
pub(crate) struct Accepted<F: ServerFactory> {
    stream: AsyncFd<TcpStream>,
    conn: Connection<F::Protocol>,
    inbox: Inbox<ServerMessage<F>>,
    factory: Arc<Mutex<F>>,
    ticket: Ticket<ServerMessage<F>>,
    /// Work attached to the connection (a relay's upstream leg), run in its task.
    companions: Companions,
    clock: MonotonicClock,
}

/// The connection task: runs the connection, closes the socket, then tells the factory.
///
/// The state is boxed so that the task's future holds one pointer to it (see [`drive`]).
pub(crate) async fn serve<F: ServerFactory>(mut accepted: Box<Accepted<F>>) {
    let state = &mut *accepted;
    let ended = drive(
        &state.stream,
        &mut state.conn,
        &state.inbox,
        &mut state.companions,
        state.clock,
    )
    .await;
    let Accepted {
        stream,
        conn,
        inbox,
        factory,
        ticket,
        mut companions,
        clock: _,
    } = *accepted;
    // The protocol and its mailbox go first. (The core has already lingered for the peer's
    // EOF where needed, so closing now is never a reset that could eat our reply.)
    drop((conn, inbox));
    // The factory hears of the socket's peer, as `build_protocol` did: the registry's handle
    // has it (always there until this ticket leaves), so the task keeps no copy of its own.
    if let Some(registered) = ticket.leave() {
        lock(&factory).connection_closed(registered.peer(), &ended.reason);
    }
    drop(factory);
    // Deregisters from the reactor and closes the socket.
    drop(stream);
    // A relay's upstream leg still has to hear that this one ended, and close.
    companions.finish().await;
    // Last: once every ticket is gone, a shutdown knows every task and descriptor is gone.
    drop(ticket);
}

/// Accepts connections on `listener` until the task is aborted.
pub(crate) async fn accept_loop<F, S>(
    listener: AsyncFd<TcpListener>,
    factory: Arc<Mutex<F>>,
    registry: Arc<Registry<ServerMessage<F>>>,
    config: Arc<Config>,
    spawn: S,
) where
    F: ServerFactory,
    ServerMessage<F>: Send + 'static,
    // Supplied by the public `listen_tcp_*` function, which knows where tasks run and whether
    // they must be `Send`.
    S: Fn(Box<Accepted<F>>),
{
    let clock = MonotonicClock::new();
    let mut backoff = AcceptBackoff::new();
    let mut accepted_in_row = 0;
    let Ok(bound) = listener.get_ref().local_addr() else {
        return;
    };
    loop {
        // `async_io` waits for readability, accepts, and on `EAGAIN` forgets the readiness and
        // waits again.
        let accepted = match listener
            .async_io(Interest::READABLE, |l| listen::accept(l, bound))
            .await
        {
            Ok(accepted) => accepted,
            Err(err) => match classify_accept_error(&err) {
                AcceptFailure::Drained | AcceptFailure::Transient => continue,
                AcceptFailure::Exhausted => {
                    // Out of descriptors or memory: wait for some to be released.
                    tokio::time::sleep(backoff.failed()).await;
                    continue;
                }
            },
        };
        backoff.succeeded();
        if let Some(accepted) = admit(accepted, &factory, &registry, &config, clock) {
            spawn(accepted);
        }
        accepted_in_row += 1;
        if accepted_in_row >= ACCEPT_BATCH {
            accepted_in_row = 0;
            tokio::task::yield_now().await;
        }
    }
}

/// Registers an accepted socket with the reactor, asks the factory for a protocol (PR-2) and
/// connects it. `None`: refused or unusable; the socket is closed at once.
fn admit<F>(
    accepted: listen::Accepted,
    factory: &Arc<Mutex<F>>,
    registry: &Arc<Registry<ServerMessage<F>>>,
    config: &Arc<Config>,
    clock: MonotonicClock,
) -> Option<Box<Accepted<F>>>
where
    F: ServerFactory,
    ServerMessage<F>: Send + 'static,
{
    let listen::Accepted {
        stream,
        peer,
        local,
    } = accepted;
    // Registered before the factory is asked, so that a protocol once built always runs.
    let stream = register(stream, Interest::READABLE | Interest::WRITABLE).ok()?;
    let protocol = lock(factory).build_protocol(peer)?;
    let (handle, inbox) = new_handle(peer);
    let ticket = registry.register(handle.clone());
    let mut conn = Connection::new(protocol, Arc::clone(config));
    conn.set_handle(handle);
    conn.handle_connected(clock.now(), local, peer);
    Some(Box::new(Accepted {
        stream,
        conn,
        inbox,
        factory: Arc::clone(factory),
        ticket,
        companions: Companions::default(),
        clock,
    }))
}

/// Locks the factory, even if a callback panicked while holding it: the factory's own state
/// is the user's business, and accepting must go on.
pub(crate) fn lock<F>(factory: &Mutex<F>) -> std::sync::MutexGuard<'_, F> {
    factory
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::Envelope;
    use loomwork::bytes::BytesMut;
    use loomwork::stream::{Protocol, Transport};

    struct Echo;
    impl Protocol for Echo {
        type Message = ();
        fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
            let _ = tx.write(data.split().freeze());
        }
    }

    /// A connection task's whole state lives in its future: keep it small, since thousands
    /// of idle connections each hold one (the goal is ≤ 2 KiB per idle connection in all).
    #[test]
    fn connection_task_future_is_small() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _enter = rt.enter();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let bound = listener.local_addr().unwrap();
        let accepted = listen::accept(&listener, bound).unwrap();
        let factory = Arc::new(Mutex::new(|_| Echo));
        let (registry, _all_done) = crate::registry::new_registry();
        let accepted = admit(
            accepted,
            &factory,
            &registry,
            &Arc::new(Config::default()),
            MonotonicClock::new(),
        )
        .expect("the factory accepts");
        let task = serve(accepted);
        let size = std::mem::size_of_val(&task);
        let protocol = std::mem::size_of::<Connection<Echo>>();
        let envelope = std::mem::size_of::<Envelope<()>>();
        let state = std::mem::size_of::<Accepted<fn(SocketAddr) -> Echo>>();
        println!(
            "connection task future: {size} bytes (Connection<Echo> {protocol}, envelope \
             {envelope}); boxed connection state: {state} bytes"
        );
        assert!(size <= 1024, "connection future grew to {size} bytes");
        drop(client);
    }
}
