//! The handle `listen_udp` gives back: the bound address, messages, stop, and the protocol at
//! the end.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use loomwork::datagram::DatagramProtocol;
use tokio::sync::mpsc::{self, error::TrySendError, Receiver, Sender};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How many posted messages may wait for an endpoint; more are given back to the sender.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;

/// Stop requests, strongest last, so a later abort overrides an earlier close.
pub(crate) const CLOSE: u8 = 1;
pub(crate) const ABORT: u8 = 2;

/// The task's side of the mailbox.
pub(crate) struct Mailbox<M> {
    pub(crate) messages: Receiver<M>,
    /// Wakes the task for a stop request; a notification sent while the task is busy is kept
    /// (one is enough).
    pub(crate) wake: Arc<Notify>,
    pub(crate) stop: Arc<AtomicU8>,
}

pub(crate) fn mailbox<M>() -> (UdpHandle<M>, Mailbox<M>) {
    let (message_tx, messages) = mpsc::channel(MAILBOX_CAPACITY);
    let wake = Arc::new(Notify::new());
    let stop = Arc::new(AtomicU8::new(0));
    let handle = UdpHandle {
        messages: message_tx,
        wake: Arc::clone(&wake),
        stop: Arc::clone(&stop),
    };
    (
        handle,
        Mailbox {
            messages,
            wake,
            stop,
        },
    )
}

/// A cloneable, thread-safe way to reach a running endpoint: post messages, ask it to stop.
pub struct UdpHandle<M> {
    messages: Sender<M>,
    wake: Arc<Notify>,
    stop: Arc<AtomicU8>,
}

impl<M> UdpHandle<M> {
    /// Posts a message for `DatagramProtocol::message`; gives it back when the endpoint has
    /// ended or its mailbox is full.
    pub fn send(&self, message: M) -> Result<(), M> {
        self.messages.try_send(message).map_err(|err| match err {
            TrySendError::Full(m) | TrySendError::Closed(m) => m,
        })
    }

    /// Asks the endpoint to close gracefully: queued sends go out, then `stop_protocol`.
    /// Sending them may take at most the endpoint's
    /// [`Config::close_timeout`](loomwork::datagram::Config::close_timeout); past it the rest
    /// is dropped and `stop_protocol` hears `TimedOut(Close)`.
    pub fn close(&self) {
        self.request(CLOSE);
    }

    /// Asks the endpoint to stop at once, dropping queued sends (a datagram waiting for room
    /// in a full send buffer too): it ends promptly whatever the network does, and
    /// `stop_protocol` hears `Aborted`.
    pub fn abort(&self) {
        self.request(ABORT);
    }

    /// True once the endpoint has ended.
    pub fn is_finished(&self) -> bool {
        self.messages.is_closed()
    }

    fn request(&self, level: u8) {
        self.stop.fetch_max(level, Ordering::AcqRel);
        self.wake.notify_one();
    }
}

impl<M> Clone for UdpHandle<M> {
    fn clone(&self) -> Self {
        UdpHandle {
            messages: self.messages.clone(),
            wake: Arc::clone(&self.wake),
            stop: Arc::clone(&self.stop),
        }
    }
}

impl<M> std::fmt::Debug for UdpHandle<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpHandle")
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// A running datagram endpoint (a task on a tokio runtime). Dropping it detaches the task: it
/// runs until its protocol closes it.
pub struct UdpEndpoint<P: DatagramProtocol> {
    local: SocketAddr,
    handle: UdpHandle<P::Message>,
    task: Option<JoinHandle<P>>,
}

impl<P: DatagramProtocol> UdpEndpoint<P> {
    pub(crate) fn new(
        local: SocketAddr,
        handle: UdpHandle<P::Message>,
        task: JoinHandle<P>,
    ) -> Self {
        UdpEndpoint {
            local,
            handle,
            task: Some(task),
        }
    }

    /// The address the socket is bound to (Twisted `getHost`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Posts a message; see [`UdpHandle::send`].
    pub fn send(&self, message: P::Message) -> Result<(), P::Message> {
        self.handle.send(message)
    }

    /// A handle for other tasks and threads.
    pub fn handle(&self) -> UdpHandle<P::Message> {
        self.handle.clone()
    }

    /// Asks the endpoint to close gracefully (Twisted `stopListening`); see
    /// [`UdpHandle::close`] for how long it may take.
    pub fn stop(&self) {
        self.handle.close();
    }

    /// Asks the endpoint to stop at once, dropping queued sends; see [`UdpHandle::abort`].
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// True once the endpoint has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().map_or(true, |t| t.is_finished())
    }

    /// Waits for the endpoint to end and gives the protocol back, to read its results.
    ///
    /// # Panics
    /// When the endpoint's task panicked (the panic is passed on), or when its runtime shut
    /// down before it ended.
    pub async fn join(mut self) -> P {
        match self.task.take() {
            Some(task) => match task.await {
                Ok(protocol) => protocol,
                Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
                Err(err) => panic!("loomwork-tokio endpoint task: {err}"),
            },
            // `task` is only taken here, and `join` consumes the handle.
            None => unreachable!("UdpEndpoint::join called twice"),
        }
    }
}

impl<P: DatagramProtocol> std::fmt::Debug for UdpEndpoint<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpEndpoint")
            .field("local", &self.local)
            .finish_non_exhaustive()
    }
}
