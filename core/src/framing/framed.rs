//! `Framed`: turns a frame handler into a stream [`Protocol`], Twisted's receivers as one type.

use core::fmt;
use core::ops::{Deref, DerefMut};

use bytes::{Bytes, BytesMut};

use crate::framing::{Decoder, EncodeError, Encoded, Encoder, FrameError, Recovery, WireFrame};
use crate::reason::Reason;
use crate::stream::{copies, Protocol, Transport, WriteError};
use crate::timer::TimerId;

/// What a framed protocol writes: the frame-level twin of [`Protocol`].
///
/// Wrap it in [`Framed`] to get a `Protocol`. Every callback gets a [`FrameTransport`], which
/// is the connection's [`Transport`] (through `Deref`) plus [`send_frame`](FrameTransport::send_frame),
/// raw mode and framer switching.
///
/// ```
/// use bytes::Bytes;
/// use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
///
/// /// Twisted's classic line echo: `sendLine(line)` for every `lineReceived(line)`.
/// struct LineEcho;
///
/// impl FrameHandler for LineEcho {
///     type Codec = LineCodec;
///     type Message = ();
///     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
///         if line == "quit" {
///             tx.lose_connection(); // lines after this one are not delivered (LR-7)
///         } else {
///             let _ = tx.send_frame(line);
///         }
///     }
/// }
///
/// let protocol = Framed::new(LineEcho, LineCodec::new());
/// # let _ = protocol;
/// ```
pub trait FrameHandler {
    /// The framing: any [`Decoder`] + [`Encoder`], built-in or the user's own.
    type Codec: Decoder + Encoder;
    /// Messages posted through connection handles (see [`Protocol::Message`]).
    type Message;

    /// The connection is established (Twisted `connectionMade`).
    fn connection_made(&mut self, tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>) {
        let _ = tx;
    }

    /// A complete frame arrived (`lineReceived`, `stringReceived`).
    fn frame_received(
        &mut self,
        frame: Bytes,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    );

    /// Bytes arrived in raw mode (`rawDataReceived`, LR-8): consume what you use, leave the
    /// rest for the next call or for the framer if you switch back with
    /// [`FrameTransport::set_frame_mode`] (LR-9).
    ///
    /// The default discards everything: override it if you use raw mode.
    fn raw_data_received(
        &mut self,
        data: &mut BytesMut,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    ) {
        let _ = tx;
        data.clear();
    }

    /// The peer broke the framing (an over-long frame under [`Recovery::Close`], or malformed
    /// bytes): the buffer is already dropped and no more frames are decoded.
    ///
    /// The default closes gracefully with the typed reason (`LimitExceeded { limit:
    /// FrameLength, .. }` or `Reason::Protocol`): replies to earlier frames are still flushed
    /// (LR-6, NS-6, IN-2, FR-2).
    fn frame_error(
        &mut self,
        error: FrameError,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    ) {
        tx.lose_connection_with(Reason::from(error));
    }

    /// An over-long frame was dropped under [`Recovery::Skip`]; decoding goes on.
    fn frame_skipped(
        &mut self,
        error: FrameError,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    ) {
        let _ = (error, tx);
    }

    /// The peer closed its writing side; the default closes (see [`Protocol::read_closed`]).
    fn read_closed(&mut self, tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>) {
        tx.lose_connection();
    }

    /// A timer set through the transport is due.
    fn timer_fired(
        &mut self,
        timer: TimerId,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    ) {
        let _ = (timer, tx);
    }

    /// A message posted through a connection handle.
    fn message(
        &mut self,
        message: Self::Message,
        tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>,
    ) {
        let _ = (message, tx);
    }

    /// The write queue is above the high-water mark; the default stops reading (PP-2).
    fn pause_producing(&mut self, tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>) {
        tx.pause_reading();
    }

    /// The write queue drained; the default reads again, and frames already buffered are
    /// delivered without waiting for new bytes (PP-7).
    fn resume_producing(&mut self, tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>) {
        tx.resume_reading();
    }

    /// A graceful close was asked from outside (a server shutdown, say): the last chance to
    /// send a frame. The default closes at once; the connection closes right after in any
    /// case (see [`Protocol::close_requested`]).
    fn close_requested(&mut self, tx: &mut FrameTransport<'_, '_, Self::Codec, Self::Message>) {
        tx.lose_connection();
    }

    /// The connection is gone; called exactly once, last.
    fn connection_lost(&mut self, reason: &Reason) {
        let _ = reason;
    }
}

/// A [`Protocol`] that decodes the byte stream into frames for a [`FrameHandler`].
///
/// Frames are split off the connection's receive buffer in place and handed over as `Bytes`
/// without copying. One rule for every framing (where Twisted's receivers disagree, KW-5):
/// frames stop being delivered as soon as the transport is closing (LR-7, LO-3) or reading is
/// paused; paused frames stay buffered and are delivered on resume (PP-7). Any framing can
/// hand over to raw mode or to another framing from inside a callback, and every byte not yet
/// consumed is passed on (LR-8, LR-9).
///
/// Memory: a frame is buffered whole before it is delivered, and the connection refuses to
/// hold more than [`Config::max_receive_buffer`](crate::stream::Config::max_receive_buffer)
/// (1 MiB by default) unconsumed. Keep the framing's maximum below that limit, or raise the
/// limit with it; otherwise a legitimately long frame closes the connection with
/// `LimitExceeded { limit: ReceiveBuffer, .. }` rather than `FrameLength`. The built-in
/// framings' defaults (16,384 and 99,999 bytes) are far below it.
pub struct Framed<H: FrameHandler> {
    handler: H,
    framing: Framing<H::Codec>,
}

/// The adapter's own state, lent to the handler inside [`FrameTransport`].
struct Framing<C> {
    codec: C,
    mode: Mode,
    /// A fatal frame error happened: input is dropped until the handler switches framing.
    failed: bool,
    /// Inside `data_received`: the decode loop will see mode changes by itself.
    decoding: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Frames,
    Raw,
}

impl<H: FrameHandler> Framed<H> {
    /// Frames the connection with `codec` and hands the frames to `handler`.
    pub fn new(handler: H, codec: H::Codec) -> Self {
        Framed {
            handler,
            framing: Framing {
                codec,
                mode: Mode::Frames,
                failed: false,
                decoding: false,
            },
        }
    }

    /// The frame handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The frame handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The codec in use.
    pub fn codec(&self) -> &H::Codec {
        &self.framing.codec
    }

    /// True while in raw mode.
    pub fn is_raw_mode(&self) -> bool {
        self.framing.mode == Mode::Raw
    }

    /// Runs `f` with the handler and a frame transport; the shape of every non-data callback.
    fn with_tx(
        &mut self,
        tx: &mut Transport<'_, H::Message>,
        f: impl FnOnce(&mut H, &mut FrameTransport<'_, '_, H::Codec, H::Message>),
    ) {
        let mut ftx = FrameTransport {
            tx,
            framing: &mut self.framing,
            buf: None,
        };
        f(&mut self.handler, &mut ftx);
    }

    /// The decode loop: frames (or raw data) until the buffer runs dry, the transport closes
    /// or pauses, or the framing fails.
    fn pump(&mut self, buf: &mut BytesMut, tx: &mut Transport<'_, H::Message>) {
        loop {
            if tx.is_closing() || !tx.is_reading() {
                return;
            }
            if self.framing.failed {
                buf.clear();
                return;
            }
            match self.framing.mode {
                Mode::Raw => {
                    if buf.is_empty() {
                        return;
                    }
                    self.handler.raw_data_received(
                        buf,
                        &mut FrameTransport {
                            tx,
                            framing: &mut self.framing,
                            buf: None,
                        },
                    );
                    if self.framing.mode == Mode::Raw {
                        // Whatever the handler left is its to keep for the next read.
                        return;
                    }
                }
                Mode::Frames => {
                    let before = buf.len();
                    match self.framing.codec.decode(buf) {
                        Ok(Some(frame)) => {
                            let progressed = buf.len() < before;
                            tx.stats_mut().frames_received += 1;
                            self.handler.frame_received(
                                frame,
                                &mut FrameTransport {
                                    tx,
                                    framing: &mut self.framing,
                                    buf: Some(buf),
                                },
                            );
                            if !progressed {
                                // A custom decoder produced a frame from nothing; looping
                                // again could never end.
                                return;
                            }
                        }
                        Ok(None) => return,
                        Err(error) => {
                            tx.stats_mut().frames_rejected += 1;
                            let mut ftx = FrameTransport {
                                tx,
                                framing: &mut self.framing,
                                buf: None,
                            };
                            if ftx.framing.codec.recovery(&error) == Recovery::Skip {
                                self.handler.frame_skipped(error, &mut ftx);
                            } else {
                                ftx.framing.failed = true;
                                buf.clear();
                                self.handler.frame_error(error, &mut ftx);
                            }
                        }
                    }
                }
            }
        }
    }
}

impl<H: FrameHandler + fmt::Debug> fmt::Debug for Framed<H>
where
    H::Codec: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framed")
            .field("handler", &self.handler)
            .field("codec", &self.framing.codec)
            .field("mode", &self.framing.mode)
            .field("failed", &self.framing.failed)
            .finish()
    }
}

impl<H: FrameHandler> Protocol for Framed<H> {
    type Message = H::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.connection_made(tx));
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, Self::Message>) {
        self.framing.decoding = true;
        self.pump(data, tx);
        self.framing.decoding = false;
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.read_closed(tx));
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.timer_fired(timer, tx));
    }

    fn message(&mut self, message: Self::Message, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.message(message, tx));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.pause_producing(tx));
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.resume_producing(tx));
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, Self::Message>) {
        self.with_tx(tx, |h, tx| h.close_requested(tx));
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.handler.connection_lost(reason);
    }
}

/// The transport a [`FrameHandler`] acts through: everything of [`Transport`] (by `Deref`),
/// plus sending frames and switching between framing and raw mode.
pub struct FrameTransport<'t, 'a, C, M = ()> {
    tx: &'t mut Transport<'a, M>,
    framing: &'t mut Framing<C>,
    /// The receive buffer, lent while a frame is being delivered (for `clear_buffer`).
    buf: Option<&'t mut BytesMut>,
}

impl<'a, C, M> Deref for FrameTransport<'_, 'a, C, M> {
    type Target = Transport<'a, M>;
    fn deref(&self) -> &Self::Target {
        self.tx
    }
}

impl<C, M> DerefMut for FrameTransport<'_, '_, C, M> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.tx
    }
}

impl<C: Decoder + Encoder, M> FrameTransport<'_, '_, C, M> {
    /// Frames `payload` and queues it; the header, payload and trailer go out in one vectored
    /// write, the payload without a copy.
    ///
    /// All or nothing: a payload the peer's decoder would reject is refused with
    /// [`SendError::Encode`], and a frame that does not fit under
    /// [`Config::max_queued`](crate::stream::Config::max_queued) is refused whole.
    pub fn send_frame(&mut self, payload: impl Into<Bytes>) -> Result<(), SendError> {
        let encoded = self.framing.codec.encode(payload.into())?;
        self.send_encoded(encoded)
    }

    /// Queues an already framed payload (all or nothing, like [`send_frame`](Self::send_frame)).
    pub fn send_encoded(&mut self, encoded: Encoded) -> Result<(), SendError> {
        let header = encoded.header.as_slice();
        // Exactly what the three writes below will cost, so that either all are queued or
        // none is (the payload and trailer follow `write`'s rule: copied up to 256 bytes).
        let parts = [
            (header.len(), true),
            (encoded.payload.len(), copies(&encoded.payload)),
            (encoded.trailer.len(), copies(&encoded.trailer)),
        ];
        let bound = self.tx.state.queue.cost_bound_all(&parts);
        self.tx
            .state
            .check_writable(bound, |queue| queue.cost_of_all(&parts))?;
        // Checked once for all three: queue them without checking each again.
        let queue = &mut self.tx.state.queue;
        queue.push_slice(header);
        queue.push(encoded.payload);
        queue.push(encoded.trailer);
        self.tx.stats_mut().frames_sent += 1;
        Ok(())
    }

    /// Frames `payload` once into a [`WireFrame`]: its header, payload and trailer in one
    /// buffer, ready to be sent to any number of connections with
    /// [`send_wire`](Self::send_wire) without being copied again.
    pub fn encode_wire(&mut self, payload: impl Into<Bytes>) -> Result<WireFrame, EncodeError> {
        Ok(WireFrame::from(self.framing.codec.encode(payload.into())?))
    }

    /// Queues a frame encoded once for many connections: the queue holds a reference-counted
    /// clone of its buffer, never a copy (see
    /// [`Transport::write_shared`](crate::stream::Transport::write_shared)). All or nothing.
    ///
    /// The frame must have been encoded with this connection's framing; nothing checks it.
    pub fn send_wire(&mut self, frame: &WireFrame) -> Result<(), SendError> {
        self.tx.write_shared(frame.bytes().clone())?;
        self.tx.stats_mut().frames_sent += 1;
        Ok(())
    }

    /// From now on, received bytes go to
    /// [`raw_data_received`](FrameHandler::raw_data_received) instead of the framer. Called
    /// from `frame_received`, the rest of the buffer is delivered raw at once (LR-8).
    pub fn set_raw_mode(&mut self) {
        self.framing.mode = Mode::Raw;
        self.framing.failed = false;
        self.reparse();
    }

    /// Back to framing: the bytes left in the buffer are parsed as frames (LR-9). Not
    /// recursive: the running decode loop picks them up (LR-10).
    pub fn set_frame_mode(&mut self) {
        self.framing.mode = Mode::Frames;
        self.framing.failed = false;
        self.framing.codec.reset();
        self.reparse();
    }

    /// Hands the stream over to another framing, which parses the bytes left in the buffer,
    /// and switches to frame mode. Returns the previous codec.
    pub fn set_codec(&mut self, codec: C) -> C {
        let old = core::mem::replace(&mut self.framing.codec, codec);
        self.set_frame_mode();
        old
    }

    /// True while in raw mode.
    pub fn is_raw_mode(&self) -> bool {
        self.framing.mode == Mode::Raw
    }

    /// The codec, for settings that may change between frames (LR-1: delimiter, maximum).
    pub fn codec(&self) -> &C {
        &self.framing.codec
    }

    /// The codec, mutably.
    pub fn codec_mut(&mut self) -> &mut C {
        &mut self.framing.codec
    }

    /// Takes every buffered byte not yet decoded (a partial frame and anything after it) and
    /// returns it, like Twisted's `clearLineBuffer` (LR-11), for every framing.
    pub fn clear_buffer(&mut self) -> Bytes {
        self.framing.codec.reset();
        match self.buf.as_deref_mut() {
            Some(buf) => buf.split().freeze(),
            None => self.tx.take_received().freeze(),
        }
    }

    /// Outside the decode loop (timers, messages), a mode change must still reach bytes that
    /// are already buffered: have the connection offer them again (PP-7's redelivery).
    fn reparse(&mut self) {
        if !self.framing.decoding && self.tx.is_reading() {
            self.tx.pause_reading();
            self.tx.resume_reading();
        }
    }
}

/// Why [`FrameTransport::send_frame`] refused a frame; nothing was queued.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The peer's decoder would reject the frame.
    Encode(EncodeError),
    /// The connection refused the write (closed, or the queue is full).
    Write(WriteError),
}

impl From<EncodeError> for SendError {
    fn from(error: EncodeError) -> Self {
        SendError::Encode(error)
    }
}

impl From<WriteError> for SendError {
    fn from(error: WriteError) -> Self {
        SendError::Write(error)
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Encode(error) => write!(f, "cannot send frame: {error}"),
            SendError::Write(error) => write!(f, "cannot send frame: {error}"),
        }
    }
}

impl core::error::Error for SendError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SendError::Encode(error) => Some(error),
            SendError::Write(error) => Some(error),
        }
    }
}
