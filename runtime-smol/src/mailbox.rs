//! Connection handles over a channel: the runtime's side of `loomwork::stream::Handle`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_channel::{Receiver, Sender};
use loomwork::stream::{Control, Handle, Mailbox, Stats};

/// What a handle can post to its connection's task.
pub(crate) enum Envelope<M> {
    /// For `Protocol::message`.
    Message(M),
    /// A close or abort request.
    Control(Control),
}

/// A [`Mailbox`] that queues into an unbounded channel; the connection's task waits on the
/// receiving end, so a post wakes it at once. Once the task has ended the receiver is gone and
/// posts hand the message back.
struct ChannelMailbox<M> {
    sender: Sender<Envelope<M>>,
    stats: StatsSlot,
}

/// Where a connection's task publishes its counters for [`Handle::stats`].
#[derive(Clone, Default)]
pub(crate) struct StatsSlot(Arc<Mutex<Stats>>);

impl StatsSlot {
    /// Copies `stats` in: one uncontended lock per turn of the connection's loop.
    pub(crate) fn publish(&self, stats: &Stats) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if *slot != *stats {
            slot.clone_from(stats);
        }
    }

    fn read(&self) -> Stats {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// What a connection's task reads: its handle's messages, and where to publish its counters.
pub(crate) struct Inbox<M> {
    pub(crate) receiver: Receiver<Envelope<M>>,
    pub(crate) stats: StatsSlot,
}

impl<M: Send> Mailbox<M> for ChannelMailbox<M> {
    fn post(&self, message: M) -> Result<(), M> {
        self.sender
            .try_send(Envelope::Message(message))
            .map_err(|err| match err.into_inner() {
                Envelope::Message(message) => message,
                // try_send hands back exactly what it was given.
                Envelope::Control(_) => unreachable!("a message was sent"),
            })
    }

    fn control(&self, control: Control) -> bool {
        self.sender.try_send(Envelope::Control(control)).is_ok()
    }

    fn stats(&self) -> Option<Stats> {
        Some(self.stats.read())
    }
}

/// Connection ids, unique across every server and client of this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh handle for a connection to `peer`, and the inbox its task reads.
pub(crate) fn new_handle<M: Send + 'static>(peer: SocketAddr) -> (Handle<M>, Inbox<M>) {
    let (sender, receiver) = async_channel::unbounded();
    let stats = StatsSlot::default();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mailbox = ChannelMailbox {
        sender,
        stats: stats.clone(),
    };
    let handle = Handle::new(id, peer, Arc::new(mailbox));
    (handle, Inbox { receiver, stats })
}
