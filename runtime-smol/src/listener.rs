//! Listening sockets and the accept loop: one task per listening socket.

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_executor::Task;
use async_io::{Async, Timer};
use futures_lite::future;
use loomwork::stream::Protocol;
use loomwork::stream::{Config, Connection, ServerFactory};
use loomwork::MonotonicClock;
use loomwork_std::ListenConfig;

use crate::driver::drive;
use crate::mailbox::{new_handle, Inbox};
use crate::registry::{Registry, Ticket};
use crate::socket;

/// Accepts taken in a row before yielding to the executor (Twisted DF-21 accepts up to 100 per
/// readable event), so a connection storm cannot starve established connections.
const ACCEPTS_PER_WAKE: u32 = 64;

/// First and longest pause after an accept error such as EMFILE: the error will repeat until
/// some connection closes, so retrying at once would only spin.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Binds the listening sockets `config` asks for on `addr` (see
/// [`loomwork_std::bind_listeners`]: both runtimes bind the same way) and registers them with
/// the reactor.
pub(crate) fn bind(addr: SocketAddr, config: &ListenConfig) -> io::Result<Vec<Async<TcpListener>>> {
    loomwork_std::bind_listeners(addr, config)?
        .into_iter()
        .map(Async::new)
        .collect()
}

/// The message type of the protocols a factory builds.
pub(crate) type MessageOf<F> = <<F as ServerFactory>::Protocol as Protocol>::Message;

/// Everything a connection task needs, built by the accept loop.
pub(crate) struct Accepted<F: ServerFactory> {
    stream: Async<TcpStream>,
    conn: Connection<F::Protocol>,
    inbox: Inbox<MessageOf<F>>,
    peer: SocketAddr,
    factory: Arc<Mutex<F>>,
    ticket: Ticket<MessageOf<F>>,
    clock: MonotonicClock,
}

/// The connection task: runs the connection, closes the socket, then tells the factory.
///
/// The state is boxed so that the task's future holds one pointer to it (see [`drive`]).
pub(crate) async fn serve<F: ServerFactory>(mut accepted: Box<Accepted<F>>) {
    let state = &mut *accepted;
    let ended = drive(&state.stream, &mut state.conn, &state.inbox, state.clock).await;
    let Accepted {
        stream,
        conn,
        inbox,
        peer,
        factory,
        ticket,
        clock: _,
    } = *accepted;
    // The protocol and its mailbox go first. (The core has already lingered for the peer's
    // EOF where needed, so closing now is never a reset that could eat our reply.)
    drop((conn, inbox));
    ticket.leave();
    lock(&factory).connection_closed(peer, &ended.reason);
    drop(factory);
    drop(stream);
    // Last: once every ticket is gone, a shutdown knows every task and descriptor is gone.
    drop(ticket);
}

/// Accepts connections on `listener` until the task is cancelled.
pub(crate) async fn accept_loop<F, S>(
    listener: Async<TcpListener>,
    factory: Arc<Mutex<F>>,
    registry: Arc<Registry<MessageOf<F>>>,
    config: Config,
    spawn: S,
) where
    F: ServerFactory,
    MessageOf<F>: Send + 'static,
    // Supplied by the public `listen_tcp_*` function, which knows the executor and whether
    // tasks must be `Send`.
    S: Fn(Box<Accepted<F>>) -> Task<()>,
{
    let clock = MonotonicClock::new();
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut accepted_in_row = 0;
    loop {
        let (stream, peer) = match listener.read_with(|l| l.accept()).await {
            Ok(pair) => pair,
            Err(err) if is_transient(&err) => continue,
            Err(_) => {
                // Out of descriptors or memory: wait for some to be released.
                Timer::after(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF_MIN;
        if let Some(accepted) = admit(stream, peer, &factory, &registry, &config, clock) {
            spawn(accepted).detach();
        }
        accepted_in_row += 1;
        if accepted_in_row >= ACCEPTS_PER_WAKE {
            accepted_in_row = 0;
            future::yield_now().await;
        }
    }
}

/// Registers an accepted socket with the reactor, asks the factory for a protocol (PR-2) and
/// connects it. `None`: refused or unusable; the socket is closed at once.
fn admit<F>(
    stream: TcpStream,
    peer: SocketAddr,
    factory: &Arc<Mutex<F>>,
    registry: &Arc<Registry<MessageOf<F>>>,
    config: &Config,
    clock: MonotonicClock,
) -> Option<Box<Accepted<F>>>
where
    F: ServerFactory,
    MessageOf<F>: Send + 'static,
{
    socket::tune(&stream);
    let local = stream.local_addr().ok()?;
    // Registered before the factory is asked, so that a protocol once built always runs.
    let stream = Async::new(stream).ok()?;
    let protocol = lock(factory).build_protocol(peer)?;
    let (handle, inbox) = new_handle(peer);
    let ticket = registry.register(handle.clone());
    let mut conn = Connection::new(protocol, config.clone());
    conn.set_handle(handle);
    conn.handle_connected(clock.now(), local, peer);
    Some(Box::new(Accepted {
        stream,
        conn,
        inbox,
        peer,
        factory: Arc::clone(factory),
        ticket,
        clock,
    }))
}

/// Errors about one failed handshake rather than about the listener.
fn is_transient(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
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
    use loomwork::stream::Transport;

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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        let factory = Arc::new(Mutex::new(|_| Echo));
        let (registry, _all_done) = Registry::new();
        let accepted = admit(
            stream,
            peer,
            &factory,
            &registry,
            &Config::default(),
            MonotonicClock::new(),
        )
        .expect("the factory accepts");
        let task = serve(accepted);
        let size = std::mem::size_of_val(&task);
        let protocol = std::mem::size_of::<Connection<Echo>>();
        let envelope = std::mem::size_of::<Envelope<()>>();
        println!(
            "connection task future: {size} bytes (Connection<Echo> {protocol}, envelope {envelope})"
        );
        assert!(size <= 1024, "connection future grew to {size} bytes");
        drop(client);
    }
}
