//! The handle `listen_udp` gives back: the bound address, messages, stop, and the protocol at
//! the end.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use loomwork::datagram::DatagramProtocol;

use crate::wait::Wakeup;

/// How many posted messages may wait for an endpoint; more are given back to the sender.
pub(crate) const MAILBOX_CAPACITY: usize = 1024;

/// Stop requests, strongest last, so a later abort overrides an earlier close.
pub(crate) const RUN: u8 = 0;
pub(crate) const CLOSE: u8 = 1;
pub(crate) const ABORT: u8 = 2;

/// What the endpoint's thread and everyone holding a handle share.
#[derive(Debug)]
pub(crate) struct Shared<M> {
    pub(crate) wakeup: Wakeup,
    pub(crate) messages: Mutex<VecDeque<M>>,
    pub(crate) stop: AtomicU8,
    pub(crate) finished: AtomicBool,
}

impl<M> Shared<M> {
    pub(crate) fn new(wakeup: Wakeup) -> Self {
        Shared {
            wakeup,
            messages: Mutex::new(VecDeque::new()),
            stop: AtomicU8::new(RUN),
            finished: AtomicBool::new(false),
        }
    }

    pub(crate) fn take_messages(&self, max: usize) -> Vec<M> {
        let mut queue = self.messages.lock().unwrap_or_else(|e| e.into_inner());
        let n = queue.len().min(max);
        queue.drain(..n).collect()
    }
}

/// A cloneable, thread-safe way to reach a running endpoint: post messages, ask it to stop.
pub struct UdpHandle<M> {
    shared: Arc<Shared<M>>,
}

impl<M> UdpHandle<M> {
    pub(crate) fn new(shared: Arc<Shared<M>>) -> Self {
        UdpHandle { shared }
    }

    /// Posts a message for `DatagramProtocol::message`; gives it back when the endpoint has
    /// ended or its mailbox is full.
    pub fn send(&self, message: M) -> Result<(), M> {
        if self.shared.finished.load(Ordering::Acquire) {
            return Err(message);
        }
        {
            let mut queue = self
                .shared
                .messages
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if queue.len() >= MAILBOX_CAPACITY {
                return Err(message);
            }
            queue.push_back(message);
        }
        self.shared.wakeup.notify();
        Ok(())
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
        self.shared.finished.load(Ordering::Acquire)
    }

    fn request(&self, level: u8) {
        self.shared.stop.fetch_max(level, Ordering::AcqRel);
        self.shared.wakeup.notify();
    }
}

impl<M> Clone for UdpHandle<M> {
    fn clone(&self) -> Self {
        UdpHandle {
            shared: Arc::clone(&self.shared),
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

/// A running datagram endpoint (one thread). Dropping the handle detaches the endpoint: it
/// runs until its protocol closes it.
pub struct UdpEndpoint<P: DatagramProtocol> {
    local: SocketAddr,
    handle: UdpHandle<P::Message>,
    thread: JoinHandle<P>,
}

impl<P: DatagramProtocol> UdpEndpoint<P> {
    pub(crate) fn new(
        local: SocketAddr,
        handle: UdpHandle<P::Message>,
        thread: JoinHandle<P>,
    ) -> Self {
        UdpEndpoint {
            local,
            handle,
            thread,
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

    /// A handle for other threads.
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
        self.thread.is_finished()
    }

    /// Waits for the endpoint to end and gives the protocol back, to read its results.
    /// A panic in the protocol is re-raised here.
    pub fn join(self) -> P {
        match self.thread.join() {
            Ok(protocol) => protocol,
            Err(panic) => std::panic::resume_unwind(panic),
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
