//! Scripted peers: a protocol that plays a [`Script`] (send bytes or frames, wait for bytes, a
//! delimiter, EOF or time, half-close, close, abort) and records everything it receives, so a
//! test does not write that peer again.

#[cfg(test)]
mod tests;

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::SocketAddr;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use crate::connector::{ClientFactory, Retry};
use crate::framing::Encoder;
use crate::reason::Reason;
use crate::stream::{Protocol, ServerFactory, Transport};
use crate::time::Instant;
use crate::timer::TimerId;

/// One step of a [`Script`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (a frame already encoded, too).
    Send(Bytes),
    /// Wait until this many more bytes have arrived than earlier waits consumed; consume them.
    WaitBytes(usize),
    /// Wait until this delimiter arrives after what earlier waits consumed; consume up to and
    /// including it.
    WaitFor(Bytes),
    /// Wait for the peer's EOF.
    WaitEof,
    /// Wait this long (a protocol timer).
    Sleep(Duration),
    /// Shut down our writing side (half-close); reading goes on.
    ShutdownWrite,
    /// Close gracefully (flush, then close). Later steps never run.
    Close,
    /// Abort: the queue is discarded, the peer sees a reset. Later steps never run.
    Abort,
}

/// What a [`ScriptedPeer`] does, step by step, built with chained calls.
///
/// A wait consumes what it waited for, so `wait_for(b"\n").wait_for(b"\n")` waits for two
/// lines. Once the steps are done the peer keeps reading (and recording) until the
/// connection ends; if it reads EOF then, or while a wait for bytes can no longer be met, it
/// closes gracefully, as a protocol's default `read_closed` does.
///
/// ```
/// use loomwork::framing::LineCodec;
/// use loomwork::testing::{Script, Step};
///
/// let script = Script::new()
///     .send_frame(&mut LineCodec::new(), "hello")
///     .wait_for(b"\r\n")
///     .close();
/// assert_eq!(script.steps()[0], Step::Send("hello\r\n".into()));
/// assert_eq!(script.steps().len(), 3);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script {
    steps: Vec<Step>,
}

impl Script {
    /// An empty script: the peer only reads and records.
    pub fn new() -> Self {
        Script::default()
    }

    /// Appends any step.
    pub fn then(mut self, step: Step) -> Self {
        self.steps.push(step);
        self
    }

    /// Appends [`Step::Send`] (of a copy of `bytes`: `b"..."`, `"..."`, a `Vec` or `Bytes`).
    pub fn send(self, bytes: impl AsRef<[u8]>) -> Self {
        self.then(Step::Send(Bytes::copy_from_slice(bytes.as_ref())))
    }

    /// Appends [`Step::Send`] of `payload` framed by `encoder` (a line, a netstring, a
    /// length-prefixed frame).
    ///
    /// # Panics
    /// If `encoder` refuses the payload (too long, or a line holding its delimiter): the
    /// script itself is wrong. To send a malformed frame on purpose, [`send`](Self::send) its
    /// bytes.
    pub fn send_frame<E: Encoder>(self, encoder: &mut E, payload: impl Into<Bytes>) -> Self {
        let encoded = match encoder.encode(payload.into()) {
            Ok(encoded) => encoded,
            Err(e) => panic!("Script::send_frame: the encoder refused the payload: {e}"),
        };
        let mut wire = BytesMut::with_capacity(encoded.len());
        encoded.write_to(&mut wire);
        self.then(Step::Send(wire.freeze()))
    }

    /// Appends [`Step::WaitBytes`].
    pub fn wait_bytes(self, count: usize) -> Self {
        self.then(Step::WaitBytes(count))
    }

    /// Appends [`Step::WaitFor`].
    pub fn wait_for(self, delimiter: impl AsRef<[u8]>) -> Self {
        self.then(Step::WaitFor(Bytes::copy_from_slice(delimiter.as_ref())))
    }

    /// Appends [`Step::WaitEof`].
    pub fn wait_eof(self) -> Self {
        self.then(Step::WaitEof)
    }

    /// Appends [`Step::Sleep`].
    pub fn sleep(self, duration: Duration) -> Self {
        self.then(Step::Sleep(duration))
    }

    /// Appends [`Step::ShutdownWrite`].
    pub fn shutdown_write(self) -> Self {
        self.then(Step::ShutdownWrite)
    }

    /// Appends [`Step::Close`].
    pub fn close(self) -> Self {
        self.then(Step::Close)
    }

    /// Appends [`Step::Abort`].
    pub fn abort(self) -> Self {
        self.then(Step::Abort)
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
}

/// What a [`ScriptedPeer`] saw: every read with its time, EOF, how far the script got and how
/// the connection ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Transcript {
    /// The peer's address, once connected.
    pub peer: Option<SocketAddr>,
    /// When `connection_made` ran.
    pub connected_at: Option<Instant>,
    /// Every read, in order, with the time it arrived.
    pub reads: Vec<(Instant, Bytes)>,
    /// All the bytes received, joined.
    pub received: Vec<u8>,
    /// When the peer's EOF arrived.
    pub eof_at: Option<Instant>,
    /// Steps completed ([`Step::Close`] and [`Step::Abort`] count once carried out).
    pub steps_done: usize,
    /// Steps in the script.
    pub steps_total: usize,
    /// Writes the transport refused (after a close or half-close, over the queue cap).
    pub refused_writes: usize,
    /// Why the connection ended, once it has.
    pub reason: Option<Reason>,
}

impl Transcript {
    /// True once every step has been carried out.
    pub fn is_finished(&self) -> bool {
        self.steps_done == self.steps_total
    }
}

/// A protocol that plays a [`Script`] and records what comes back in a [`Transcript`].
///
/// Use it as the client of a [`Pair`](crate::testing::Pair), as a client or server in a
/// [`StreamNetwork`](crate::testing::StreamNetwork), under a
/// [`Recorder`](crate::testing::Recorder), or on a real runtime. Its messages are bytes,
/// written as they arrive (a test can make it speak out of turn through its handle).
/// [`ScriptedFactory`] gives each connection the same script and collects the transcripts.
///
/// A line echo server checked in a few lines:
///
/// ```
/// use core::time::Duration;
/// use loomwork::bytes::Bytes;
/// use loomwork::framing::{FrameHandler, FrameTransport, Framed, LineCodec};
/// use loomwork::testing::{Pair, PairConfig, Script, ScriptedPeer};
///
/// struct LineEcho;
/// impl FrameHandler for LineEcho {
///     type Codec = LineCodec;
///     type Message = ();
///     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
///         let _ = tx.send_frame(line);
///     }
/// }
///
/// let script = Script::new()
///     .send_frame(&mut LineCodec::new(), "hello")
///     .wait_for(b"\r\n")
///     .close();
/// let server = Framed::new(LineEcho, LineCodec::new());
/// let mut pair = Pair::new(ScriptedPeer::new(script), server, PairConfig::default());
/// pair.run(Duration::from_secs(5));
/// let seen = pair.client.protocol().transcript();
/// assert_eq!(seen.received, b"hello\r\n");
/// assert!(seen.is_finished() && seen.reason.as_ref().is_some_and(|r| r.is_clean()));
/// ```
#[derive(Debug)]
pub struct ScriptedPeer {
    steps: Vec<Step>,
    /// The next step.
    cursor: usize,
    /// Bytes of `transcript.received` consumed by waits.
    consumed: usize,
    /// The timer of the [`Step::Sleep`] in progress.
    sleeping: Option<TimerId>,
    transcript: Transcript,
    /// Where the transcript goes when the connection ends ([`ScriptedFactory`]).
    sink: Option<Arc<spin::Mutex<Shared>>>,
}

impl ScriptedPeer {
    /// A peer that will play `script` once connected.
    pub fn new(script: Script) -> Self {
        let transcript = Transcript {
            steps_total: script.steps.len(),
            ..Transcript::default()
        };
        ScriptedPeer {
            steps: script.steps,
            cursor: 0,
            consumed: 0,
            sleeping: None,
            transcript,
            sink: None,
        }
    }

    /// What it has seen so far.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// All the bytes received so far, joined.
    pub fn received(&self) -> &[u8] {
        &self.transcript.received
    }

    /// True once every step has been carried out.
    pub fn is_finished(&self) -> bool {
        self.transcript.is_finished()
    }

    /// Runs steps until one has to wait; closes if the peer's EOF means it would wait forever.
    fn play(&mut self, tx: &mut Transport<'_, Bytes>) {
        while let Some(step) = self.steps.get(self.cursor) {
            let unconsumed = &self.transcript.received[self.consumed..];
            match step {
                Step::Send(bytes) => {
                    if tx.write(bytes.clone()).is_err() {
                        self.transcript.refused_writes += 1;
                    }
                }
                Step::WaitBytes(count) if unconsumed.len() >= *count => self.consumed += count,
                Step::WaitFor(delimiter) => match find(unconsumed, delimiter) {
                    Some(at) => self.consumed += at + delimiter.len(),
                    None => break,
                },
                Step::WaitEof if self.transcript.eof_at.is_some() => {}
                Step::Sleep(duration) => {
                    if self.sleeping.is_none() {
                        self.sleeping = Some(tx.call_later(*duration));
                    }
                    return;
                }
                Step::WaitBytes(_) | Step::WaitEof => break,
                Step::ShutdownWrite => tx.shutdown_write(),
                Step::Close => {
                    tx.lose_connection();
                    self.finish_at(self.cursor + 1);
                    return;
                }
                Step::Abort => {
                    tx.abort_connection();
                    self.finish_at(self.cursor + 1);
                    return;
                }
            }
            self.finish_at(self.cursor + 1);
        }
        // Done, or waiting for bytes: after EOF nothing more will come.
        if self.transcript.eof_at.is_some() && !tx.is_closing() {
            tx.lose_connection();
        }
    }

    fn finish_at(&mut self, cursor: usize) {
        self.cursor = cursor;
        self.transcript.steps_done = cursor;
    }
}

impl Protocol for ScriptedPeer {
    type Message = Bytes;

    fn connection_made(&mut self, tx: &mut Transport<'_, Bytes>) {
        self.transcript.peer = tx.peer();
        self.transcript.connected_at = Some(tx.now());
        self.play(tx);
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, Bytes>) {
        let read = data.split().freeze();
        self.transcript.received.extend_from_slice(&read);
        self.transcript.reads.push((tx.now(), read));
        self.play(tx);
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, Bytes>) {
        self.transcript.eof_at = Some(tx.now());
        self.play(tx);
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, Bytes>) {
        if self.sleeping == Some(timer) {
            self.sleeping = None;
            self.finish_at(self.cursor + 1);
            self.play(tx);
        }
    }

    fn message(&mut self, bytes: Bytes, tx: &mut Transport<'_, Bytes>) {
        if tx.write(bytes).is_err() {
            self.transcript.refused_writes += 1;
        }
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.transcript.reason = Some(reason.clone());
        if let Some(sink) = &self.sink {
            sink.lock().transcripts.push(self.transcript.clone());
        }
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a [`ScriptedFactory`]'s connections report.
#[derive(Debug, Default)]
struct Shared {
    transcripts: Vec<Transcript>,
    failures: Vec<Reason>,
}

/// A factory that gives every connection a [`ScriptedPeer`] playing the same [`Script`], and
/// collects each one's [`Transcript`] when it ends. A [`ServerFactory`] for listeners and a
/// [`ClientFactory`] (which never retries) for connectors; clones share the transcripts, so
/// a test keeps a clone to read them after handing the factory over.
///
/// ```
/// use loomwork::stream::Config;
/// use loomwork::testing::{NetworkConfig, Script, ScriptedFactory, ScriptedPeer, StreamNetwork};
///
/// let greeter = ScriptedFactory::new(Script::new().send("hi\n").close());
/// let mut net = StreamNetwork::new(NetworkConfig::default());
/// let server = net.listen("10.0.0.1:23".parse().unwrap(), greeter.clone(), Config::default());
/// let addr = net.listener_addr(server).unwrap();
/// let a = net.dial(addr, ScriptedPeer::new(Script::new()), Config::default()).unwrap();
/// let b = net.dial(addr, ScriptedPeer::new(Script::new()), Config::default()).unwrap();
/// net.run_until_idle();
/// for id in [a, b] {
///     assert_eq!(net.protocol::<ScriptedPeer>(id).unwrap().received(), b"hi\n");
/// }
/// assert_eq!(greeter.transcripts().len(), 2);
/// assert!(greeter.transcripts().iter().all(|t| t.is_finished()));
/// ```
#[derive(Clone, Debug)]
pub struct ScriptedFactory {
    script: Script,
    shared: Arc<spin::Mutex<Shared>>,
}

impl ScriptedFactory {
    /// A factory handing out `script`.
    pub fn new(script: Script) -> Self {
        ScriptedFactory {
            script,
            shared: Arc::default(),
        }
    }

    /// The transcripts of the connections that have ended, in the order they ended.
    pub fn transcripts(&self) -> Vec<Transcript> {
        self.shared.lock().transcripts.clone()
    }

    /// As a client factory: why attempts failed, in order.
    pub fn failures(&self) -> Vec<Reason> {
        self.shared.lock().failures.clone()
    }

    fn peer(&self) -> ScriptedPeer {
        let mut peer = ScriptedPeer::new(self.script.clone());
        peer.sink = Some(Arc::clone(&self.shared));
        peer
    }
}

impl ServerFactory for ScriptedFactory {
    type Protocol = ScriptedPeer;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<ScriptedPeer> {
        Some(self.peer())
    }
}

impl ClientFactory for ScriptedFactory {
    type Protocol = ScriptedPeer;

    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<ScriptedPeer> {
        Some(self.peer())
    }

    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.shared.lock().failures.push(reason.clone());
        Retry::Stop
    }
}
