//! `MemoryMailbox`: the in-memory [`Mailbox`] behind the handles of connections that a test
//! driver steps itself (the [`Recorder`](crate::testing::Recorder), a virtual network).

use alloc::collections::VecDeque;

use crate::stream::{Connection, Control, Mailbox, Protocol};
use crate::time::Instant;

/// A message or a control, queued in one mailbox so that a message posted before a close is
/// handled before that close, as the runtimes do.
#[derive(Debug)]
pub enum Delivery<M> {
    /// For [`Protocol::message`].
    Message(M),
    /// A close or abort asked for through the handle.
    Control(Control),
}

impl<M> Delivery<M> {
    /// Hands this delivery to `conn`, as a runtime would on its next turn.
    pub fn deliver_to<P: Protocol<Message = M>>(self, conn: &mut Connection<P>, now: Instant) {
        match self {
            Delivery::Message(message) => conn.handle_message(now, message),
            Delivery::Control(control) => conn.handle_control(now, control),
        }
    }
}

/// A connection handle's mailbox for drivers that step connections themselves: posting only
/// queues (there is nothing to wake), and the driver takes what is queued when it next steps
/// the connection. Once [`close`](Self::close)d (the connection has ended) posts are refused,
/// so a late message comes back to its sender instead of vanishing.
///
/// ```
/// use std::sync::Arc;
/// use loomwork::stream::{Control, Handle, Mailbox};
/// use loomwork::testing::{Delivery, MemoryMailbox};
///
/// let mailbox = Arc::new(MemoryMailbox::<&str>::new());
/// let handle = Handle::new(1, "127.0.0.1:1".parse().unwrap(), mailbox.clone());
/// handle.send("hi").unwrap();
/// assert!(handle.close());
/// let queued: Vec<_> = mailbox.take(usize::MAX).into();
/// assert!(matches!(queued[..], [Delivery::Message("hi"), Delivery::Control(Control::Close)]));
/// mailbox.close();
/// assert_eq!(handle.send("late"), Err("late"));
/// ```
pub struct MemoryMailbox<M> {
    /// `None` once closed.
    inbox: spin::Mutex<Option<VecDeque<Delivery<M>>>>,
}

impl<M> MemoryMailbox<M> {
    /// An open, empty mailbox.
    pub fn new() -> Self {
        MemoryMailbox {
            inbox: spin::Mutex::new(Some(VecDeque::new())),
        }
    }

    /// Queues a message; gives it back once the mailbox is closed.
    pub fn post(&self, message: M) -> Result<(), M> {
        self.push(message, Delivery::Message)
    }

    /// Queues a close or abort; false once the mailbox is closed.
    pub fn control(&self, control: Control) -> bool {
        self.push(control, Delivery::Control).is_ok()
    }

    /// Up to `max` of the oldest deliveries; later ones (and whatever handling these posts)
    /// wait for the next call. Nothing once closed.
    pub fn take(&self, max: usize) -> VecDeque<Delivery<M>> {
        let mut inbox = self.inbox.lock();
        let Some(queue) = inbox.as_mut() else {
            return VecDeque::new();
        };
        if queue.len() <= max {
            return core::mem::take(queue);
        }
        queue.drain(..max).collect()
    }

    /// Refuses posts from now on and drops what was still queued.
    pub fn close(&self) {
        let leftover = self.inbox.lock().take();
        // Dropped outside the lock: a message's destructor may post again.
        drop(leftover);
    }

    fn push<T>(&self, item: T, wrap: impl FnOnce(T) -> Delivery<M>) -> Result<(), T> {
        match self.inbox.lock().as_mut() {
            Some(queue) => {
                queue.push_back(wrap(item));
                Ok(())
            }
            None => Err(item),
        }
    }
}

impl<M> Default for MemoryMailbox<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Send> Mailbox<M> for MemoryMailbox<M> {
    fn post(&self, message: M) -> Result<(), M> {
        MemoryMailbox::post(self, message)
    }
    fn control(&self, control: Control) -> bool {
        MemoryMailbox::control(self, control)
    }
}
