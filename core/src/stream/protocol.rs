//! The `Protocol` trait: what a user writes, one instance per connection (Twisted PR-1).

use bytes::BytesMut;

use crate::reason::Reason;
use crate::stream::Transport;
use crate::timer::TimerId;

/// A stream protocol: a plain state machine that reacts to connection events.
///
/// The driver ([`Connection`](crate::stream::Connection)) guarantees the Twisted lifecycle
/// (PR-1): `connection_made` first, then any number of the other callbacks, then
/// `connection_lost` exactly once, last. Every callback but `connection_lost` gets a
/// [`Transport`] to write, close, pause and set timers through.
///
/// `data_received` is handed the connection's receive buffer itself: take what you can use
/// (`split_to`, `split().freeze()`, `advance`) and leave the rest, which is kept and extended by
/// the next read. Chunk boundaries mean nothing (PR-4). A protocol that leaves more than
/// [`Config::max_receive_buffer`](crate::stream::Config::max_receive_buffer) unconsumed is closed
/// with a typed limit error, so memory stays bounded.
///
/// ```
/// use bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
///
/// /// Twisted's `Echo`: write back whatever arrives, without copying.
/// struct Echo;
///
/// impl Protocol for Echo {
///     type Message = ();
///     fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, Self::Message>) {
///         // The default `pause_producing` stops reading while our queue is full, so a
///         // peer that sends without reading cannot grow this queue without bound.
///         let _ = tx.write(data.split().freeze());
///     }
/// }
/// ```
pub trait Protocol {
    /// What other parts of the program can post to this connection through a runtime's
    /// connection handle (chat broadcast, a proxy's other leg). Use `()` when unused.
    type Message;

    /// The connection is established; the transport is ready (Twisted `connectionMade`).
    fn connection_made(&mut self, tx: &mut Transport<'_, Self::Message>) {
        let _ = tx;
    }

    /// Bytes arrived; `data` is the receive buffer (everything not consumed so far).
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, Self::Message>);

    /// The peer shut down its writing side (EOF). Our side may still write.
    ///
    /// The default closes gracefully: unlike Twisted (PR-7, KW-10) queued output is still
    /// flushed first. Override it to keep answering a half-closed peer.
    fn read_closed(&mut self, tx: &mut Transport<'_, Self::Message>) {
        tx.lose_connection();
    }

    /// A timer set with [`Transport::call_later`] or [`Transport::call_at`] is due.
    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, Self::Message>) {
        let _ = (timer, tx);
    }

    /// A message posted through a connection handle.
    fn message(&mut self, message: Self::Message, tx: &mut Transport<'_, Self::Message>) {
        let _ = (message, tx);
    }

    /// The write queue rose above the high-water mark: stop producing (Twisted PP-2).
    ///
    /// The default stops reading, which propagates the backpressure to the peer.
    fn pause_producing(&mut self, tx: &mut Transport<'_, Self::Message>) {
        tx.pause_reading();
    }

    /// The write queue drained to the low-water mark: produce again.
    ///
    /// The default resumes reading (undoing the default `pause_producing`).
    fn resume_producing(&mut self, tx: &mut Transport<'_, Self::Message>) {
        tx.resume_reading();
    }

    /// A graceful close was asked from outside the protocol: [`Connection::close`](crate::stream::Connection::close),
    /// a handle's [`close`](crate::stream::Handle::close), a server shutdown. The last chance
    /// to say something on the wire first (a goodbye line; a TLS layer's `close_notify`).
    ///
    /// The default closes at once, as [`lose_connection`](Transport::lose_connection) does.
    /// Whatever an override does, the connection closes gracefully right after this call (if
    /// the protocol has not closed it itself), so a shutdown cannot be refused. Not called when
    /// the protocol is already closing.
    fn close_requested(&mut self, tx: &mut Transport<'_, Self::Message>) {
        tx.lose_connection();
    }

    /// The connection is gone; called exactly once, last (Twisted `connectionLost`).
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = reason;
    }
}
