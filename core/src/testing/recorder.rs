//! `Recorder`: one stream protocol, no peer; Twisted's `StringTransport` (TH-1) with a clock
//! (TH-4) and a working connection handle.

use alloc::collections::VecDeque;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::reason::Reason;
use crate::stream::{Action, Config, Connection, Control, Handle, Mailbox, Protocol};
use crate::testing::virtual_time;
use crate::testing::MemoryMailbox;
use crate::time::Instant;

/// How many rounds (reads, messages, writes) one [`Recorder::step`] runs at most, so that a
/// protocol that keeps posting to itself cannot hang a test inside one call.
const MAX_ROUNDS: usize = 64;

/// Room a read offers at least, like a runtime's read (smaller than their 64 KiB, as tests keep
/// many recorders): enough that a small partial frame is moved out of it when the connection
/// waits ([`Connection::poll_spare_buffer`]).
const READ_ROOM: usize = 4096;

/// How many steps [`Recorder::run_until_idle`] takes at most before giving up on idleness.
const MAX_IDLE_STEPS: usize = 10_000;

/// How much of what the protocol writes the recorder's peer takes, per [`Recorder::step`].
///
/// This stands for the peer's reading plus the kernel buffers between: what it does not take
/// stays in the connection's write queue, where it counts against the high-water mark and the
/// cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PeerReads {
    /// Everything written, at once, as Twisted's `StringTransport` does.
    #[default]
    All,
    /// Nothing: a peer that never reads. The write queue grows until `pause_producing` and,
    /// for a protocol that ignores it, [`WriteError::QueueFull`](crate::stream::WriteError::QueueFull).
    Nothing,
    /// At most this many bytes per step.
    AtMost(usize),
}

/// How a [`Recorder`] is set up.
#[derive(Clone, Debug)]
pub struct RecorderConfig {
    /// The connection's settings.
    pub connection: Config,
    /// Our address (default `10.0.0.1:12345`, Twisted's `StringTransport` host, DF-20).
    pub local: SocketAddr,
    /// The peer's address (default `192.168.1.1:54321`, DF-20).
    pub peer: SocketAddr,
    /// How much the peer takes of what is written.
    pub peer_reads: PeerReads,
    /// The virtual time the connection is made at.
    pub start: Instant,
    /// The id of the connection's [`Handle`].
    pub handle_id: u64,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            connection: Config::default(),
            local: SocketAddr::from(([10, 0, 0, 1], 12_345)),
            peer: SocketAddr::from(([192, 168, 1, 1], 54_321)),
            peer_reads: PeerReads::All,
            start: Instant::ZERO,
            handle_id: 1,
        }
    }
}

/// One stream protocol with no peer: feed it bytes, move a virtual clock, read back what it
/// wrote, whether and how it closed, and why. Twisted's `StringTransport` (TH-1) and
/// `task.Clock` (TH-4) in one.
///
/// The recorder runs a real [`Connection`], so everything the runtimes guarantee holds here
/// too: backpressure, the write cap, the close deadline and linger, `connection_lost` exactly
/// once. It plays the runtime's part:
/// - the connection gets a working [`Handle`] before `connection_made`; what is posted
///   through it (or with [`post`](Self::post)), and close or abort requests, are delivered on
///   the next [`step`](Self::step), in order;
/// - the peer's bytes ([`receive`](Self::receive), one call per read) wait, as in a kernel
///   buffer, while the protocol has paused reading, and the EOF
///   ([`receive_eof`](Self::receive_eof)) comes after them;
/// - the peer takes what is written as [`PeerReads`] says (by default everything);
/// - socket actions are recorded in order ([`actions`](Self::actions)).
///
/// Every input ends with one [`step`](Self::step). Time moves only with
/// [`advance`](Self::advance) and [`advance_to`](Self::advance_to).
///
/// A graceful close behaves as on a socket: once flushed, the protocol has ended
/// ([`is_ended`](Self::is_ended)) and our side is shut down ([`Action::ShutdownWrite`]); the
/// socket closes ([`Action::Close`]) when the peer's EOF arrives or
/// [`Config::close_linger`] has passed.
///
/// ```
/// use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
/// use loomwork::testing::Recorder;
/// # use loomwork::bytes::Bytes;
/// # struct LineEcho;
/// # impl FrameHandler for LineEcho {
/// #     type Codec = LineCodec;
/// #     type Message = ();
/// #     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
/// #         let _ = tx.send_frame(line);
/// #     }
/// # }
///
/// let mut rec = Recorder::new(Framed::new(LineEcho, LineCodec::new()));
/// rec.receive(b"hel");
/// assert!(rec.written().is_empty()); // half a line: nothing yet
/// rec.receive(b"lo\r\n");
/// assert_eq!(rec.take_written(), "hello\r\n");
/// ```
pub struct Recorder<P: Protocol> {
    conn: Connection<P>,
    mailbox: Arc<MemoryMailbox<P::Message>>,
    handle: Handle<P::Message>,
    now: Instant,
    peer_reads: PeerReads,
    /// The peer's reads not yet read by the connection (it paused reading), in order.
    unread: VecDeque<Vec<u8>>,
    /// The peer shut down its side; delivered once `unread` is empty.
    eof_pending: bool,
    /// Read storage the connection gave up while it waited ([`Connection::poll_spare_buffer`]),
    /// lent to it again for the next read: the runtimes' way of reading, so every test and
    /// check runs protocols over it.
    spare: Option<BytesMut>,
    written: BytesMut,
    actions: Vec<Action>,
    /// The socket failed under the connection ([`fail`](Self::fail)): its closing sends no FIN.
    failed: bool,
}

impl<P: Protocol> Recorder<P>
where
    P::Message: Send + 'static,
{
    /// `protocol`, connected at time zero with the default [`RecorderConfig`].
    pub fn new(protocol: P) -> Self {
        Self::with_config(protocol, RecorderConfig::default())
    }

    /// `protocol`, connected as `config` says: the handle is given first, then
    /// `connection_made` runs, then one [`step`](Self::step).
    pub fn with_config(protocol: P, config: RecorderConfig) -> Self {
        let mailbox = Arc::new(MemoryMailbox::new());
        let handle = Handle::new(
            config.handle_id,
            config.peer,
            Arc::clone(&mailbox) as Arc<dyn Mailbox<P::Message>>,
        );
        let mut conn = Connection::new(protocol, config.connection);
        conn.set_handle(handle.clone());
        conn.handle_connected(config.start, config.local, config.peer);
        let mut recorder = Recorder {
            conn,
            mailbox,
            handle,
            now: config.start,
            peer_reads: config.peer_reads,
            unread: VecDeque::new(),
            eof_pending: false,
            spare: None,
            written: BytesMut::new(),
            actions: Vec::new(),
            failed: false,
        };
        recorder.step();
        recorder
    }
}

impl<P: Protocol> Recorder<P> {
    // ----- inputs -------------------------------------------------------------------------

    /// The peer sent `data`: one read, delivered now unless the protocol has paused reading.
    pub fn receive(&mut self, data: &[u8]) {
        if !data.is_empty() {
            self.unread.push_back(data.to_vec());
        }
        self.step();
    }

    /// The peer shut down its writing side: `read_closed` runs after the bytes it sent before.
    pub fn receive_eof(&mut self) {
        self.eof_pending = true;
        self.step();
    }

    /// The peer reset the connection: `connection_lost` gets [`Reason::Reset`]; bytes the
    /// protocol had not read yet are lost, as on a real socket.
    pub fn reset(&mut self) {
        self.fail(Reason::Reset);
    }

    /// The socket failed with `reason` (see [`Connection::handle_error`]).
    pub fn fail(&mut self, reason: Reason) {
        self.unread.clear();
        if !self.conn.is_closed() {
            self.failed = true;
            self.conn.handle_error(self.now, reason);
        }
        self.step();
    }

    /// Posts `message` through the connection's handle; it is delivered in this call's step,
    /// after anything posted before it. Gives it back if the connection has ended.
    pub fn post(&mut self, message: P::Message) -> Result<(), P::Message> {
        let posted = self.mailbox.post(message);
        self.step();
        posted
    }

    /// Asks for a graceful close through the handle, as a server shutdown would; false if the
    /// connection has ended.
    pub fn close(&mut self) -> bool {
        let asked = self.mailbox.control(Control::Close);
        self.step();
        asked
    }

    /// Asks for an abort through the handle; false if the connection has ended.
    pub fn abort(&mut self) -> bool {
        let asked = self.mailbox.control(Control::Abort);
        self.step();
        asked
    }

    /// Moves the clock forward by `by`, firing every deadline on the way at its own time (so
    /// a timer's effects, and the peer's reads, happen before a later timer fires).
    pub fn advance(&mut self, by: Duration) {
        self.advance_to(self.now + by);
    }

    /// Moves the clock to `at` (no-op if it is not later), as [`advance`](Self::advance) does.
    pub fn advance_to(&mut self, at: Instant) {
        virtual_time::advance_to(self, at);
    }

    /// Steps until nothing more happens without time passing (bounded, so that a protocol
    /// that keeps posting to itself cannot hang the test). True if anything happened.
    pub fn run_until_idle(&mut self) -> bool {
        let mut moved = false;
        for _ in 0..MAX_IDLE_STEPS {
            if !self.step() {
                break;
            }
            moved = true;
        }
        moved
    }

    /// Changes how much the peer takes from now on (a peer that starts reading, say).
    pub fn set_peer_reads(&mut self, peer_reads: PeerReads) {
        self.peer_reads = peer_reads;
    }

    /// One turn of a runtime's loop at the current time: feed the reads and EOF the
    /// connection will take, deliver posted messages and controls, let the peer take its
    /// share of the writes ([`PeerReads::AtMost`] counts per step), record socket actions;
    /// repeated while anything moves, up to a bound. True if anything happened.
    pub fn step(&mut self) -> bool {
        let mut budget = match self.peer_reads {
            PeerReads::All => usize::MAX,
            PeerReads::Nothing => 0,
            PeerReads::AtMost(n) => n,
        };
        let mut moved = false;
        for _ in 0..MAX_ROUNDS {
            let mut round = self.feed();
            round |= self.deliver_mail();
            let took = self.drain_writes(budget);
            budget -= took;
            round |= took > 0;
            while let Some(action) = self.conn.poll_action() {
                self.actions.push(action);
                round = true;
            }
            if self.conn.is_ended() {
                // Posts after the end are refused from now on.
                self.mailbox.close();
            }
            if !round {
                break;
            }
            moved = true;
        }
        moved
    }

    // ----- outputs ------------------------------------------------------------------------

    /// Takes what reached the peer since the last take.
    pub fn take_written(&mut self) -> Bytes {
        self.written.split().freeze()
    }

    /// What reached the peer since the last [`take_written`](Self::take_written).
    pub fn written(&self) -> &[u8] {
        &self.written
    }

    /// The socket actions carried out so far, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// True once our writing side is shut down by a half-close or an orderly close: the peer
    /// would read EOF after [`written`](Self::written). An abort, or the [`Action::Close`]
    /// that follows a socket failure ([`reset`](Self::reset), [`fail`](Self::fail)), sends
    /// no EOF.
    pub fn is_write_shut(&self) -> bool {
        self.actions.iter().any(|a| match a {
            Action::ShutdownWrite => true,
            Action::Close => !self.failed,
            Action::Abort => false,
        })
    }

    /// True once the socket is done ([`Action::Close`] or [`Action::Abort`] carried out).
    pub fn is_closed(&self) -> bool {
        self.conn.is_closed()
    }

    /// True once the protocol has ended (`connection_lost` has run); see
    /// [`Connection::is_ended`].
    pub fn is_ended(&self) -> bool {
        self.conn.is_ended()
    }

    /// Why the connection ended, once it has.
    pub fn reason(&self) -> Option<&Reason> {
        self.conn.reason()
    }

    /// The connection's next deadline: its earliest protocol timer, or the close deadline or
    /// linger while closing.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.conn.next_timeout()
    }

    /// The virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Bytes written but not taken by the peer yet.
    pub fn queued_bytes(&self) -> usize {
        self.conn.queued_bytes()
    }

    /// Bytes the peer sent that the connection has not read yet (it paused reading).
    pub fn unread_bytes(&self) -> usize {
        self.unread.iter().map(Vec::len).sum()
    }

    /// The connection's handle, as the protocol sees it with `tx.handle()`.
    pub fn handle(&self) -> &Handle<P::Message> {
        &self.handle
    }

    /// The protocol.
    pub fn protocol(&self) -> &P {
        self.conn.protocol()
    }

    /// The protocol, mutably.
    pub fn protocol_mut(&mut self) -> &mut P {
        self.conn.protocol_mut()
    }

    /// The connection (for its stats, say).
    pub fn connection(&self) -> &Connection<P> {
        &self.conn
    }

    /// The connection, mutably, to feed it inputs the recorder has no method for. Call
    /// [`step`](Self::step) afterwards to record what they caused.
    pub fn connection_mut(&mut self) -> &mut Connection<P> {
        &mut self.conn
    }

    // ----- internals ----------------------------------------------------------------------

    /// Sets the clock without firing anything: for drivers that keep many recorders on one
    /// clock and fire their deadlines themselves (the checks' session).
    pub(crate) fn set_clock(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Hands the connection the reads (then the EOF) it wants now. A closed socket discards
    /// what still arrives.
    fn feed(&mut self) -> bool {
        if self.conn.is_closed() {
            let moved = !self.unread.is_empty() || self.eof_pending;
            self.unread.clear();
            self.eof_pending = false;
            return moved;
        }
        let mut moved = false;
        while self.conn.wants_read() {
            let Some(read) = self.unread.pop_front() else {
                break;
            };
            let spare = &mut self.spare;
            let _ = self.conn.handle_data_with(self.now, |buf| {
                // As loomwork-net's `read_pooled`: an empty buffer may be swapped for lent
                // storage, and the read appends.
                if buf.is_empty() && buf.capacity() < read.len() {
                    if let Some(lent) = spare.take() {
                        *buf = lent;
                    }
                }
                // Room for more than this read, as a runtime's read offers: what is left over
                // is what the connection gives up when it waits.
                buf.reserve(read.len().max(READ_ROOM));
                buf.extend_from_slice(&read);
                Ok::<(), core::convert::Infallible>(())
            });
            moved = true;
        }
        // The connection waits for more now: its storage goes back to the lender.
        if let Some(spare) = self.conn.poll_spare_buffer() {
            self.spare = Some(spare);
        }
        if self.eof_pending && self.unread.is_empty() && self.conn.wants_read() {
            self.eof_pending = false;
            self.conn.handle_read_closed(self.now);
            moved = true;
        }
        moved
    }

    /// Delivers what was posted before this call; what those deliveries post waits for the
    /// next round.
    fn deliver_mail(&mut self) -> bool {
        let mail = self.mailbox.take(usize::MAX);
        let moved = !mail.is_empty();
        for delivery in mail {
            delivery.deliver_to(&mut self.conn, self.now);
        }
        moved
    }

    /// Lets the peer take up to `max` queued bytes; returns how many it took.
    fn drain_writes(&mut self, max: usize) -> usize {
        let before = self.written.len();
        for chunk in self.conn.poll_write() {
            let room = max - (self.written.len() - before);
            if room == 0 {
                break;
            }
            self.written
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let took = self.written.len() - before;
        if took > 0 {
            self.conn.handle_written(self.now, took);
        }
        took
    }
}

impl<P: Protocol> virtual_time::VirtualTime for Recorder<P> {
    fn clock(&mut self) -> &mut Instant {
        &mut self.now
    }
    fn next_timeout(&self) -> Option<Instant> {
        self.conn.next_timeout()
    }
    fn handle_timeout(&mut self) {
        self.conn.handle_timeout(self.now);
    }
    fn step(&mut self) -> bool {
        Recorder::step(self)
    }
}

impl<P: Protocol> Drop for Recorder<P> {
    fn drop(&mut self) {
        // The handle may have been cloned out of the recorder: posts from now on are refused.
        self.mailbox.close();
    }
}

impl<P: Protocol + core::fmt::Debug> core::fmt::Debug for Recorder<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Recorder")
            .field("now", &self.now)
            .field("connection", &self.conn)
            .field("written", &self.written.len())
            .field("actions", &self.actions)
            .finish_non_exhaustive()
    }
}
