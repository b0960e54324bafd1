//! Connection handles over a channel: the runtime's side of `loomwork::stream::Handle`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_channel::{Receiver, Sender};
use loomwork::stream::{Control, Handle, Mailbox};

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
}

/// Connection ids, unique across every server and client of this process.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A fresh handle for a connection to `peer`, and the inbox its task reads.
pub(crate) fn new_handle<M: Send + 'static>(
    peer: SocketAddr,
) -> (Handle<M>, Receiver<Envelope<M>>) {
    let (sender, inbox) = async_channel::unbounded();
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let handle = Handle::new(id, peer, Arc::new(ChannelMailbox { sender }));
    (handle, inbox)
}
