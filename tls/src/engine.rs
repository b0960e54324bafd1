//! The engine under [`Tls`](crate::Tls): rustls's states carried out against the outer
//! transport and the plaintext connection of the wrapped protocol.

use alloc::{boxed::Box, string::String, vec::Vec};
use core::time::Duration;

use bytes::BytesMut;
use loomwork::stream::{Action, Connection, Protocol, Transport, WriteError};
use loomwork::{Instant, Limit, Reason, TimerId};
use rustls::client::ClientConnectionData;
use rustls::server::ServerConnectionData;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, ReadEarlyData, UnbufferedStatus, WriteTraffic,
};

use crate::info::TlsInfo;

/// Plaintext encrypted in one go: several full records, written to the outer connection as
/// one buffer.
const MAX_BATCH: usize = 64 * 1024;

/// The largest record a peer may send: 2^14 bytes of plaintext plus 2048 of expansion
/// (RFC 8446 §5.2, RFC 5246 §6.2.3), plus the 5-byte header.
const MAX_RECORD: usize = 5 + 16 * 1024 + 2048;

/// How `P` comes to be once the handshake has finished.
pub(crate) enum Builder<P: Protocol> {
    Make(Box<dyn FnOnce(&TlsInfo) -> P + Send>),
    Ready(P),
    /// STARTTLS: `P` already runs on this connection, which waits here during the handshake
    /// and is then told what it established through `started`.
    Connected {
        connection: Box<Connection<P>>,
        started: fn(&mut P, &TlsInfo),
    },
}

/// A close that `P` asked for and that waits for `close_notify` to be encoded.
pub(crate) enum Closing {
    /// Half-close: `close_notify`, then shut down the outer writing side.
    Shutdown,
    /// Close: `close_notify`, then close the outer connection reporting this reason.
    Close(Reason),
}

/// Everything but rustls's connection and the incoming records, so both can be borrowed at
/// once.
pub(crate) struct Layer<P: Protocol> {
    pub(crate) builder: Option<Builder<P>>,
    pub(crate) inner: Option<Connection<P>>,
    /// Encoded records not yet handed to the outer connection.
    pub(crate) outgoing: BytesMut,
    /// Plaintext gathered from `P`'s queue for one encryption.
    pub(crate) plain: Vec<u8>,
    /// Plaintext decrypted and not yet handed to `P`.
    pub(crate) received: Vec<u8>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) handshake_timer: Option<TimerId>,
    /// Armed when `P`'s connection starts closing: the whole close (flushing `P`'s queue,
    /// `close_notify`, the outer flush) must fit in one close deadline, not one per layer.
    pub(crate) close_timer: Option<TimerId>,
    /// The outer timer standing for `P`'s next deadline, and that deadline.
    pub(crate) inner_timer: Option<(TimerId, Instant)>,
    pub(crate) error: Option<rustls::Error>,
    pub(crate) info: Option<TlsInfo>,
    /// The client's name for the server, or the SNI a server saw.
    pub(crate) server_name: Option<String>,
    pub(crate) is_server: bool,
    pub(crate) first_record_seen: bool,
    pub(crate) closing: Option<Closing>,
    pub(crate) close_notify_sent: bool,
    pub(crate) write_shut: bool,
    pub(crate) peer_closed: bool,
    /// Whether this layer holds the outer connection's reading.
    pub(crate) holding: bool,
    pub(crate) producing: bool,
    /// A close was asked from outside: everything `P` queued is encrypted now, whatever the
    /// outer queue holds, since the outer connection closes right after and produces no more.
    pub(crate) draining: bool,
    /// A close was asked from outside while the handshake was under way: rustls has no
    /// session to send `close_notify` on yet, so the close waits for the handshake to finish
    /// (within the close deadline, which the outer connection keeps: see
    /// `Transport::defer_close`), and the peer sees a clean end instead of a truncation.
    pub(crate) close_after_handshake: bool,
    /// No more TLS work: failed, closed, aborted or the outer connection ended.
    pub(crate) over: bool,
    pub(crate) now: Instant,
}

/// What one state of rustls's machine leaves to do.
pub(crate) enum Step {
    /// Ask rustls again.
    Again,
    /// Nothing to do until more input.
    Idle,
    /// rustls may send application data, and `P` does not exist yet: the handshake may have
    /// just finished.
    Writable,
    /// Plaintext arrived (in [`Layer::received`]).
    Received,
    /// The peer sent `close_notify`.
    PeerClosed,
    Failed(rustls::Error),
}

impl<P: Protocol> Layer<P> {
    /// A layer waiting for its handshake (or, for STARTTLS's plaintext phase, for `inner`).
    pub(crate) fn new(
        builder: Option<Builder<P>>,
        error: Option<rustls::Error>,
        server_name: Option<String>,
        is_server: bool,
    ) -> Self {
        Layer {
            builder,
            inner: None,
            outgoing: BytesMut::new(),
            plain: Vec::new(),
            received: Vec::new(),
            handshake_timeout: Some(crate::DEFAULT_HANDSHAKE_TIMEOUT),
            handshake_timer: None,
            close_timer: None,
            inner_timer: None,
            error,
            info: None,
            server_name,
            is_server,
            first_record_seen: false,
            closing: None,
            close_notify_sent: false,
            write_shut: false,
            peer_closed: false,
            holding: false,
            producing: true,
            draining: false,
            close_after_handshake: false,
            over: false,
            now: Instant::ZERO,
        }
    }

    /// `P`'s connection: running, or waiting for a STARTTLS handshake to finish.
    pub(crate) fn connection(&self) -> Option<&Connection<P>> {
        match (&self.inner, &self.builder) {
            (Some(inner), _) => Some(inner),
            (None, Some(Builder::Connected { connection, .. })) => Some(connection.as_ref()),
            _ => None,
        }
    }

    /// `P`'s connection, mutably: running, or waiting for a STARTTLS handshake to finish.
    pub(crate) fn connection_mut(&mut self) -> Option<&mut Connection<P>> {
        match (&mut self.inner, &mut self.builder) {
            (Some(inner), _) => Some(inner),
            (None, Some(Builder::Connected { connection, .. })) => Some(connection.as_mut()),
            _ => None,
        }
    }

    /// STARTTLS's plaintext phase: moves what `P` queued to `outgoing` unencrypted, at most
    /// `limit` bytes (the bytes written before an upgrade request), otherwise while the outer
    /// queue is below its high-water mark.
    pub(crate) fn write_plain(&mut self, limit: Option<usize>, tx: &Transport<'_, P::Message>) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        let high_water = tx.config().high_water;
        let mut left = limit.unwrap_or(usize::MAX);
        while left > 0
            && inner.wants_write()
            && (limit.is_some()
                || self.draining
                || (self.producing && tx.queued_memory() + self.outgoing.len() <= high_water))
        {
            let mut moved = 0;
            for chunk in inner.poll_write() {
                let room = (MAX_BATCH - moved).min(left - moved);
                if room == 0 {
                    break;
                }
                let take = chunk.get(..room).unwrap_or(chunk);
                self.outgoing.extend_from_slice(take);
                moved += take.len();
            }
            if moved == 0 {
                break;
            }
            inner.handle_written(self.now, moved);
            left -= moved;
        }
    }

    /// Carries out one state of rustls's machine; returns how much of `incoming` it consumed
    /// and what is left to do.
    pub(crate) fn handle<D: EarlyData>(
        &mut self,
        status: UnbufferedStatus<'_, '_, D>,
        tx: &mut Transport<'_, P::Message>,
    ) -> (usize, Step) {
        let mut discard = status.discard;
        let state = match status.state {
            Ok(state) => state,
            Err(error) => return (discard, Step::Failed(error)),
        };
        let step = match state {
            ConnectionState::ReadTraffic(mut traffic) => {
                while let Some(record) = traffic.next_record() {
                    match record {
                        Ok(record) => {
                            discard += record.discard;
                            self.received.extend_from_slice(record.payload);
                        }
                        Err(error) => return (discard, Step::Failed(error)),
                    }
                }
                Step::Received
            }
            ConnectionState::ReadEarlyData(mut early) => {
                // 0-RTT data can be replayed by an attacker; this layer does not offer it to
                // the protocol (it is only sent when the server's config enables it).
                discard += D::drain(&mut early);
                Step::Again
            }
            ConnectionState::EncodeTlsData(mut encode) => {
                self.encode(|out| encode.encode(out));
                Step::Again
            }
            ConnectionState::TransmitTlsData(transmit) => {
                self.flush(tx);
                transmit.done();
                Step::Again
            }
            ConnectionState::PeerClosed => Step::PeerClosed,
            ConnectionState::WriteTraffic(mut traffic) => match self.inner.is_some() {
                true => self.write_traffic(&mut traffic, tx),
                // A TLS 1.3 server may write before the client's last flight; this layer
                // waits for it, so that the client is verified before the protocol exists.
                false => Step::Writable,
            },
            _ => Step::Idle,
        };
        (discard, step)
    }

    /// Encrypts what `P` queued (while the outer queue has room) and the `close_notify` of a
    /// close it asked for.
    pub(crate) fn write_traffic<D>(
        &mut self,
        traffic: &mut WriteTraffic<'_, D>,
        tx: &mut Transport<'_, P::Message>,
    ) -> Step {
        let Some(inner) = self.inner.as_mut() else {
            return Step::Idle;
        };
        let mut progressed = false;
        let high_water = tx.config().high_water;
        while !self.close_notify_sent
            && inner.wants_write()
            && (self.draining
                || (self.producing && tx.queued_memory() + self.outgoing.len() <= high_water))
        {
            self.plain.clear();
            for chunk in inner.poll_write() {
                let room = MAX_BATCH - self.plain.len();
                if room == 0 {
                    break;
                }
                self.plain
                    .extend_from_slice(chunk.get(..room).unwrap_or(chunk));
            }
            let plain = &self.plain;
            let mut result = Ok(());
            encode_into(
                &mut self.outgoing,
                plain.len() + plain.len() / 256 + 64,
                |out| match traffic.encrypt(plain, out) {
                    Ok(n) => Ok(n),
                    Err(EncryptError::InsufficientSize(size)) => Err(Some(size.required_size)),
                    Err(EncryptError::EncryptExhausted) => {
                        result = Err(rustls::Error::EncryptError);
                        Err(None)
                    }
                },
            );
            if let Err(error) = result {
                return Step::Failed(error);
            }
            inner.handle_written(self.now, self.plain.len());
            progressed = true;
        }
        if self.closing.is_some() && !self.close_notify_sent && !inner.wants_write() {
            encode_into(&mut self.outgoing, 64, |out| {
                traffic.queue_close_notify(out).map_err(|err| match err {
                    EncryptError::InsufficientSize(size) => Some(size.required_size),
                    _ => None,
                })
            });
            self.close_notify_sent = true;
            progressed = true;
        }
        if progressed {
            Step::Again
        } else {
            Step::Idle
        }
    }

    /// Encodes a record that rustls hands out into `outgoing`.
    pub(crate) fn encode(
        &mut self,
        mut encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>,
    ) {
        encode_into(&mut self.outgoing, 4096, |out| match encode(out) {
            Ok(n) => Ok(n),
            Err(EncodeError::InsufficientSize(size)) => Err(Some(size.required_size)),
            Err(_) => Err(None),
        });
    }

    /// Encodes the next state's record if it is one (an alert after a failure).
    pub(crate) fn encode_alert<D>(&mut self, status: UnbufferedStatus<'_, '_, D>) {
        if let Ok(ConnectionState::EncodeTlsData(mut encode)) = status.state {
            self.encode(|out| encode.encode(out));
        }
    }

    /// Hands the decrypted plaintext to `P`.
    pub(crate) fn deliver(&mut self) {
        if self.received.is_empty() {
            return;
        }
        if let Some(inner) = self.inner.as_mut() {
            inner.handle_data(self.now, &self.received);
        }
        self.received.clear();
    }

    /// True while records should be taken: during the handshake, and while `P` reads.
    pub(crate) fn reading_wanted(&self) -> bool {
        match &self.inner {
            None => true,
            Some(inner) => inner.wants_read(),
        }
    }

    /// Carries out the socket actions `P`'s connection asks for.
    pub(crate) fn poll_inner(&mut self, tx: &mut Transport<'_, P::Message>) {
        let Some(inner) = self.inner.as_mut() else {
            return;
        };
        while let Some(action) = inner.poll_action() {
            let reason = inner.reason().cloned();
            match action {
                Action::Abort => {
                    if !self.over {
                        self.over = true;
                        self.outgoing.clear();
                        tx.abort_connection_with(reason.unwrap_or(Reason::Aborted));
                    }
                }
                Action::Close => {
                    self.closing = Some(Closing::Close(reason.unwrap_or(Reason::Done)))
                }
                Action::ShutdownWrite => {
                    if !self.write_shut {
                        self.closing = Some(Closing::Shutdown);
                    }
                }
            }
        }
    }

    /// Once `close_notify` is encoded, carries out the close `P` asked for.
    pub(crate) fn finish_close(&mut self, tx: &mut Transport<'_, P::Message>) {
        if !self.close_notify_sent || self.over {
            return;
        }
        match self.closing.take() {
            Some(Closing::Shutdown) => {
                self.flush(tx);
                self.write_shut = true;
                tx.shutdown_write();
            }
            Some(Closing::Close(reason)) => {
                self.flush(tx);
                self.over = true;
                tx.lose_connection_with(reason);
            }
            None => {}
        }
    }

    /// Ends `P` (if it lives) and the outer connection with `reason`, gracefully (what is
    /// queued is flushed) or by abort.
    pub(crate) fn end(&mut self, reason: Reason, tx: &mut Transport<'_, P::Message>, abort: bool) {
        if self.over {
            return;
        }
        self.over = true;
        let now = self.now;
        if let Some(inner) = self.connection_mut() {
            if !inner.is_ended() {
                inner.handle_error(now, reason.clone());
            }
        }
        if abort {
            tx.abort_connection_with(reason);
        } else {
            tx.lose_connection_with(reason);
        }
        self.settle(tx);
    }

    /// Hands the encoded records to the outer connection as one write.
    pub(crate) fn flush(&mut self, tx: &mut Transport<'_, P::Message>) {
        if self.outgoing.is_empty() {
            return;
        }
        let records = self.outgoing.split().freeze();
        if self.write_shut || self.over {
            return;
        }
        match tx.write(records) {
            Ok(()) => {}
            Err(WriteError::QueueFull { queued, max, .. }) => {
                // Records cannot be dropped without corrupting the stream.
                self.over = true;
                tx.abort_connection_with(Reason::LimitExceeded {
                    limit: Limit::WriteQueue,
                    max,
                    seen: queued,
                });
            }
            Err(_) => {}
        }
    }

    /// Holds the outer connection's reading while `P` does not read, and keeps one outer
    /// timer on `P`'s next deadline.
    pub(crate) fn settle(&mut self, tx: &mut Transport<'_, P::Message>) {
        let closing = self.inner.as_ref().is_some_and(Connection::is_closing);
        if closing && self.close_timer.is_none() && !self.over {
            if let Some(timeout) = tx.config().close_timeout {
                self.close_timer = Some(tx.call_later(timeout));
            }
        }
        let live = self
            .inner
            .as_ref()
            .filter(|inner| !self.over && !inner.is_ended());
        let hold = live.is_some_and(|inner| !inner.wants_read()) && !self.peer_closed;
        if hold != self.holding {
            self.holding = hold;
            if hold {
                tx.hold_reading();
            } else {
                tx.release_reading();
            }
        }
        let wanted = live.and_then(Connection::next_timeout);
        match (self.inner_timer, wanted) {
            (Some((_, at)), Some(want)) if at == want => {}
            (current, wanted) => {
                if let Some((timer, _)) = current {
                    tx.cancel_timer(timer);
                }
                self.inner_timer = wanted.map(|at| (tx.call_at(at), at));
            }
        }
    }
}

/// Early (0-RTT) data, which only a server receives.
pub(crate) trait EarlyData: Sized {
    /// Drops what arrived; returns how much more of the input to discard.
    fn drain(early: &mut ReadEarlyData<'_, '_, Self>) -> usize;
}

impl EarlyData for ServerConnectionData {
    fn drain(early: &mut ReadEarlyData<'_, '_, Self>) -> usize {
        let mut discard = 0;
        while let Some(record) = early.next_record() {
            match record {
                Ok(record) => discard += record.discard,
                Err(_) => break,
            }
        }
        discard
    }
}

impl EarlyData for ClientConnectionData {
    fn drain(_: &mut ReadEarlyData<'_, '_, Self>) -> usize {
        0
    }
}

/// The length of the record at the start of `data` once it is all there; a header announcing
/// more than any valid record is handed over at once, so that rustls refuses it.
pub(crate) fn record_len(data: &[u8]) -> Option<usize> {
    let header = data.get(..5)?;
    let len = 5 + usize::from(u16::from_be_bytes([header[3], header[4]]));
    if len > MAX_RECORD {
        return Some(data.len());
    }
    (data.len() >= len).then_some(len)
}

/// Appends what `encode` writes to `out`, growing the room to what it says it needs.
/// `encode` returns `Err(Some(needed))` when the room is too small, `Err(None)` to give up.
fn encode_into(
    out: &mut BytesMut,
    room: usize,
    mut encode: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) {
    let start = out.len();
    let mut room = room;
    for _ in 0..4 {
        out.resize(start + room, 0);
        match encode(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return;
            }
            Err(Some(needed)) if needed > room => room = needed,
            Err(_) => break,
        }
    }
    out.truncate(start);
}
