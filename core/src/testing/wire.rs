//! One direction of an in-memory byte stream, and the object-safe view of a connection it
//! moves bytes between. Shared by [`Pair`](crate::testing::Pair) and by multi-connection
//! simulations (the conformance suite's memory runtime).

use alloc::vec::Vec;

use crate::reason::Reason;
use crate::stream::{Action, Connection, Protocol};
use crate::time::Instant;

/// The object-safe subset of [`Connection`] that an in-memory network drives, so connections of
/// different protocol types can live in one collection.
pub trait StreamEnd {
    /// See [`Connection::wants_read`].
    fn wants_read(&self) -> bool;
    /// See [`Connection::is_closed`].
    fn is_closed(&self) -> bool;
    /// See [`Connection::handle_data`].
    fn handle_data(&mut self, now: Instant, data: &[u8]);
    /// See [`Connection::handle_read_closed`].
    fn handle_read_closed(&mut self, now: Instant);
    /// See [`Connection::handle_error`].
    fn handle_error(&mut self, now: Instant, reason: Reason);
    /// See [`Connection::handle_timeout`].
    fn handle_timeout(&mut self, now: Instant);
    /// See [`Connection::next_timeout`].
    fn next_timeout(&self) -> Option<Instant>;
    /// See [`Connection::poll_action`].
    fn poll_action(&mut self) -> Option<Action>;
    /// See [`Connection::reason`].
    fn reason(&self) -> Option<&Reason>;
    /// See [`Connection::close`].
    fn close(&mut self, now: Instant);
    /// See [`Connection::abort`].
    fn abort(&mut self, now: Instant);
    /// Appends up to `max` queued bytes to `out` and reports them written; returns how many.
    fn write_into(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) -> usize;
}

impl<P: Protocol> StreamEnd for Connection<P> {
    fn wants_read(&self) -> bool {
        Connection::wants_read(self)
    }
    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }
    fn handle_data(&mut self, now: Instant, data: &[u8]) {
        Connection::handle_data(self, now, data)
    }
    fn handle_read_closed(&mut self, now: Instant) {
        Connection::handle_read_closed(self, now)
    }
    fn handle_error(&mut self, now: Instant, reason: Reason) {
        Connection::handle_error(self, now, reason)
    }
    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now)
    }
    fn next_timeout(&self) -> Option<Instant> {
        Connection::next_timeout(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        Connection::poll_action(self)
    }
    fn reason(&self) -> Option<&Reason> {
        Connection::reason(self)
    }
    fn close(&mut self, now: Instant) {
        Connection::close(self, now)
    }
    fn abort(&mut self, now: Instant) {
        Connection::abort(self, now)
    }
    fn write_into(&mut self, now: Instant, out: &mut Vec<u8>, max: usize) -> usize {
        let before = out.len();
        for chunk in self.poll_write() {
            let take = chunk.len().min(max - (out.len() - before));
            out.extend_from_slice(&chunk[..take]);
            if out.len() - before == max {
                break;
            }
        }
        let n = out.len() - before;
        if n > 0 {
            self.handle_written(now, n);
        }
        n
    }
}

/// One direction of an in-memory stream: bytes in flight plus FIN/RST, with a capacity like a
/// kernel's socket buffers so that a reader that stops reading pushes back on the writer.
#[derive(Debug, Default)]
pub struct Wire {
    bytes: Vec<u8>,
    fin: bool,
    reset: bool,
    eof_delivered: bool,
}

impl Wire {
    /// Moves the writer's queued bytes in (up to `capacity` in flight) and carries out its
    /// socket actions. True if anything happened.
    pub fn transmit(&mut self, writer: &mut dyn StreamEnd, now: Instant, capacity: usize) -> bool {
        let mut moved = false;
        let room = capacity.saturating_sub(self.bytes.len());
        if room > 0 && !self.fin && !self.reset {
            moved |= writer.write_into(now, &mut self.bytes, room) > 0;
        }
        while let Some(action) = writer.poll_action() {
            moved = true;
            match action {
                Action::ShutdownWrite | Action::Close => self.fin = true,
                Action::Abort => {
                    self.reset = true;
                    self.bytes.clear();
                }
            }
        }
        moved
    }

    /// Delivers bytes in flight (at most `max_read` per read) while the reader wants them,
    /// then EOF, or a reset at once. True if anything happened.
    pub fn receive(&mut self, reader: &mut dyn StreamEnd, now: Instant, max_read: usize) -> bool {
        if reader.is_closed() {
            // A closed socket discards whatever still arrives (see `pump_both` for the reset
            // this provokes).
            let moved = !self.bytes.is_empty();
            self.bytes.clear();
            return moved;
        }
        if self.reset {
            self.reset = false;
            reader.handle_error(now, Reason::Reset);
            return true;
        }
        let mut moved = false;
        let max_read = max_read.max(1);
        while reader.wants_read() && !self.bytes.is_empty() {
            let n = self.bytes.len().min(max_read);
            let chunk: Vec<u8> = self.bytes.drain(..n).collect();
            reader.handle_data(now, &chunk);
            moved = true;
        }
        if self.fin && self.bytes.is_empty() && !self.eof_delivered && reader.wants_read() {
            self.eof_delivered = true;
            reader.handle_read_closed(now);
            moved = true;
        }
        moved
    }

    /// Marks the writing side as closed (FIN) without a writer, as when a listener accepts a
    /// socket and closes it at once.
    pub fn shut(&mut self) {
        self.fin = true;
    }

    /// Moves everything that can move between `a` and `b` at `now`, one round in each
    /// direction. True if anything happened.
    ///
    /// Models TCP's rule that closing a socket with input still unread answers with a reset:
    /// the closer's own bytes still in flight are destroyed and the other side sees
    /// [`Reason::Reset`]. A runtime that closes without draining loses data here just as it
    /// would on a real socket.
    pub fn pump_both(
        a: &mut dyn StreamEnd,
        b: &mut dyn StreamEnd,
        a_to_b: &mut Wire,
        b_to_a: &mut Wire,
        now: Instant,
        capacity: usize,
        max_read: usize,
    ) -> bool {
        let wires = [a_to_b, b_to_a];
        Wire::pump_gated(a, b, wires, now, capacity, max_read, [true, true]).moved
    }

    /// [`pump_both`](Self::pump_both) with a gate per direction (`[a_to_b, b_to_a]`): a
    /// closed gate holds that direction's bytes, FIN and reset in flight (a stalled path);
    /// its writer still fills the wire up to `capacity`.
    pub(crate) fn pump_gated(
        a: &mut dyn StreamEnd,
        b: &mut dyn StreamEnd,
        [a_to_b, b_to_a]: [&mut Wire; 2],
        now: Instant,
        capacity: usize,
        max_read: usize,
        deliver: [bool; 2],
    ) -> Pumped {
        let before = [a_to_b.in_flight(), b_to_a.in_flight()];
        let mut moved = a_to_b.transmit(a, now, capacity);
        moved |= b_to_a.transmit(b, now, capacity);
        // `transmit` only adds bytes: the growth is what each writer handed over.
        let sent = [
            a_to_b.in_flight().saturating_sub(before[0]),
            b_to_a.in_flight().saturating_sub(before[1]),
        ];
        moved |= reset_if_closed_unread(a, b_to_a, a_to_b);
        moved |= reset_if_closed_unread(b, a_to_b, b_to_a);
        if deliver[0] {
            moved |= a_to_b.receive(b, now, max_read);
        }
        if deliver[1] {
            moved |= b_to_a.receive(a, now, max_read);
        }
        Pumped { moved, sent }
    }

    /// Bytes in flight.
    pub fn in_flight(&self) -> usize {
        self.bytes.len()
    }
}

/// What one [`Wire::pump_gated`] round did.
pub(crate) struct Pumped {
    /// Anything happened.
    pub(crate) moved: bool,
    /// Bytes each writer (`[a, b]`) handed to its wire.
    pub(crate) sent: [usize; 2],
}

/// If `closer` is closed while `incoming` still holds bytes for it, its socket answers with a
/// reset: its outgoing bytes in flight are destroyed and the peer will see the reset.
fn reset_if_closed_unread(
    closer: &dyn StreamEnd,
    incoming: &mut Wire,
    outgoing: &mut Wire,
) -> bool {
    if !closer.is_closed() || incoming.bytes.is_empty() || outgoing.reset || outgoing.eof_delivered
    {
        return false;
    }
    incoming.bytes.clear();
    outgoing.bytes.clear();
    outgoing.reset = true;
    true
}
