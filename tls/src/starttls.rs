//! `StartTls`: a connection that begins in plaintext and switches to TLS when its protocol
//! asks (Twisted's `ITLSTransport.startTLS`).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;

use bytes::{Bytes, BytesMut};
use loomwork::framing::{FrameHandler, Framed};
#[cfg(feature = "log")]
use loomwork::policy::TrafficLog;
use loomwork::policy::{Budget, IdleTimeout, Limited, OnIdle, Throttled};
use loomwork::stream::{Connection, Protocol, Transport};
use loomwork::{Reason, TimerId};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

use crate::engine::Layer;
use crate::layer::{plaintext_connection, DEFAULT_HANDSHAKE_TIMEOUT};
use crate::{Tls, TlsInfo};

/// A protocol that can ask for its connection to switch to TLS (STARTTLS).
///
/// [`StartTls`] asks [`take_upgrade`](Self::take_upgrade) after each of the protocol's
/// callbacks; the protocol answers once with the [`UpgradeRequest`] it made in that callback.
/// A [`FrameHandler`] implements this trait and its [`Framed`] protocol forwards it, so a line
/// protocol asks for the switch from `frame_received`:
///
/// ```
/// use loomwork::bytes::Bytes;
/// use loomwork::framing::{FrameHandler, FrameTransport, LineCodec};
/// use loomwork_tls::{StartTlsProtocol, UpgradeRequest};
///
/// /// Twisted's `starttls_server.py`: echoes lines; `STARTTLS` gets `READY`, then TLS.
/// #[derive(Default)]
/// struct Server {
///     upgrade: Option<UpgradeRequest>,
/// }
///
/// impl FrameHandler for Server {
///     type Codec = LineCodec;
///     type Message = ();
///     fn frame_received(&mut self, line: Bytes, tx: &mut FrameTransport<'_, '_, LineCodec>) {
///         if line == "STARTTLS" && self.upgrade.is_none() {
///             let _ = tx.send_frame("READY"); // still plaintext: written before the request
///             // What follows the command in the buffer is the client's first TLS record.
///             let rest = tx.clear_buffer();
///             self.upgrade = Some(UpgradeRequest::new(tx, rest));
///         } else {
///             let _ = tx.send_frame(line);
///         }
///     }
/// }
///
/// impl StartTlsProtocol for Server {
///     fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
///         self.upgrade.take()
///     }
/// }
/// ```
pub trait StartTlsProtocol {
    /// The switch to TLS this protocol asked for since the last call, if any. Asked after
    /// every callback; a request is taken once, and only the first one counts.
    fn take_upgrade(&mut self) -> Option<UpgradeRequest>;

    /// The TLS handshake has finished: `info` says with whom (the verified peer
    /// certificates, for a server that asked for them) and what was agreed. Called before any
    /// byte received over TLS reaches the protocol. The default does nothing.
    fn tls_started(&mut self, info: &TlsInfo) {
        let _ = info;
    }
}

impl<H: FrameHandler + StartTlsProtocol> StartTlsProtocol for Framed<H> {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.handler_mut().take_upgrade()
    }

    fn tls_started(&mut self, info: &TlsInfo) {
        self.handler_mut().tls_started(info);
    }
}

// The policy wrappers pass the request through, so a STARTTLS protocol keeps its idle
// timeout, throttle, traffic log or connection limit across the switch
// (`StartTls<IdleTimeout<Framed<H>>>`): the wrapper's state (timers, budgets) lives on the
// connection that moves under TLS, and goes on there.

impl<P: Protocol + StartTlsProtocol, H: OnIdle<P>> StartTlsProtocol for IdleTimeout<P, H> {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.inner_mut().take_upgrade()
    }

    fn tls_started(&mut self, info: &TlsInfo) {
        self.inner_mut().tls_started(info);
    }
}

impl<P: Protocol + StartTlsProtocol, B: Budget> StartTlsProtocol for Throttled<P, B> {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.inner_mut().take_upgrade()
    }

    fn tls_started(&mut self, info: &TlsInfo) {
        self.inner_mut().tls_started(info);
    }
}

#[cfg(feature = "log")]
impl<P: Protocol + StartTlsProtocol, L: core::fmt::Display> StartTlsProtocol for TrafficLog<P, L> {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        self.inner_mut().take_upgrade()
    }

    fn tls_started(&mut self, info: &TlsInfo) {
        self.inner_mut().tls_started(info);
    }
}

impl<P: StartTlsProtocol> StartTlsProtocol for Limited<P> {
    fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
        match self {
            Limited::Admitted(protocol) => protocol.take_upgrade(),
            // A refused connection is closing: it switches to nothing.
            Limited::Refused(_) => None,
        }
    }

    fn tls_started(&mut self, info: &TlsInfo) {
        if let Limited::Admitted(protocol) = self {
            protocol.tls_started(info);
        }
    }
}

/// A protocol's request to switch its connection to TLS, made from inside one of its
/// callbacks: it marks where the plaintext ends in both directions.
///
/// - Outgoing: everything the protocol wrote before making the request (the `READY` line)
///   still leaves in plaintext; everything it writes afterwards is encrypted.
/// - Incoming: `leftover` is what the protocol received after the upgrade command and did not
///   consume: the peer's first TLS bytes, when it did not wait for the answer. They are handed
///   to the TLS layer first, exactly once, before anything received later. A
///   [`FrameHandler`] takes them with `FrameTransport::clear_buffer`, a plain [`Protocol`]
///   with `data.split()` in `data_received`.
#[derive(Clone, Debug)]
pub struct UpgradeRequest {
    leftover: Bytes,
    plaintext: usize,
}

impl UpgradeRequest {
    /// Asks to switch to TLS once this callback returns; `leftover` are the bytes received
    /// after the upgrade command.
    pub fn new<M>(tx: &Transport<'_, M>, leftover: impl Into<Bytes>) -> Self {
        UpgradeRequest {
            leftover: leftover.into(),
            plaintext: tx.queued_bytes(),
        }
    }
}

/// A stream [`Protocol`] that runs its protocol `P` in plaintext until `P` asks for TLS (an
/// [`UpgradeRequest`]), then switches the same connection to a TLS session around the same
/// `P`, which keeps its state (Twisted's `startTLS`).
///
/// `P` runs on one plaintext [`Connection`] for its whole life: `connection_made` once,
/// `connection_lost` once, its timers, handle and backpressure as over TCP. At the switch,
/// what `P` wrote before its request leaves in plaintext, and the bytes received after the
/// upgrade command go to the TLS layer first: none lost, none repeated, however the reads
/// split them (the peer's ClientHello may arrive in the same read as its `STARTTLS`). Then it
/// is a [`Tls`] connection: typed handshake failures, the handshake timeout, `close_notify`,
/// truncation. During the handshake, messages still reach `P`, but what it writes waits for
/// the handshake to finish, and so do its timers; [`StartTlsProtocol::tls_started`] tells it
/// the handshake is done and with whom.
///
/// ```
/// use std::sync::Arc;
/// use loomwork::bytes::BytesMut;
/// use loomwork::stream::{Protocol, Transport};
/// use loomwork_tls::{StartTls, StartTlsProtocol, UpgradeRequest};
///
/// /// Switches as soon as it is connected: `STARTTLS` out, then TLS, without waiting.
/// #[derive(Default)]
/// struct Eager(Option<UpgradeRequest>);
/// impl Protocol for Eager {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         let _ = tx.write_slice(b"STARTTLS\r\n");
///         self.0 = Some(UpgradeRequest::new(tx, BytesMut::new()));
///     }
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
///         data.clear();
///     }
/// }
/// impl StartTlsProtocol for Eager {
///     fn take_upgrade(&mut self) -> Option<UpgradeRequest> {
///         self.0.take()
///     }
/// }
///
/// let config = rustls::ClientConfig::builder()
///     .with_root_certificates(rustls::RootCertStore::empty())
///     .with_no_client_auth();
/// let name = "example.com".try_into().unwrap();
/// let client = StartTls::client(Arc::new(config), name, Eager::default());
/// assert!(!client.is_upgraded());
/// ```
pub struct StartTls<P: Protocol + StartTlsProtocol> {
    phase: Phase<P>,
    role: Role,
    handshake_timeout: Option<Duration>,
}

/// Which side of the handshake this connection takes once `P` asks.
enum Role {
    Server(Arc<ServerConfig>),
    Client(Arc<ClientConfig>, ServerName<'static>),
}

enum Phase<P: Protocol> {
    /// Plaintext: `P`'s connection in the layer's `inner`, its bytes passed through as they
    /// are (the layer's `close_notify_sent` is set: there is none to send).
    Plain(Box<Layer<P>>),
    Tls(Box<Tls<P>>),
    /// Only while switching.
    Switching,
}

impl<P: Protocol + StartTlsProtocol> StartTls<P> {
    /// A connection that takes the server's side of the handshake when `protocol` asks.
    pub fn server(config: Arc<ServerConfig>, protocol: P) -> Self {
        Self::new(Role::Server(config), protocol)
    }

    /// A connection that takes the client's side of the handshake, towards the server `name`
    /// (verified against `config`'s roots), when `protocol` asks.
    pub fn client(config: Arc<ClientConfig>, name: ServerName<'static>, protocol: P) -> Self {
        Self::new(Role::Client(config, name), protocol)
    }

    fn new(role: Role, protocol: P) -> Self {
        let is_server = matches!(role, Role::Server(_));
        let mut layer = Layer::new(
            Some(crate::engine::Builder::Ready(protocol)),
            None,
            None,
            is_server,
        );
        layer.close_notify_sent = true;
        StartTls {
            phase: Phase::Plain(Box::new(layer)),
            role,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets how long the handshake may take once it starts (`None`: forever; the default is
    /// 10 s), as [`Tls::handshake_timeout`] does.
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// True once `P` has asked for TLS (the handshake may still be under way).
    pub fn is_upgraded(&self) -> bool {
        matches!(self.phase, Phase::Tls(_))
    }

    /// The TLS layer, once `P` has asked for TLS: its [`info`](Tls::info) and
    /// [`error`](Tls::error).
    pub fn tls(&self) -> Option<&Tls<P>> {
        match &self.phase {
            Phase::Tls(tls) => Some(tls),
            _ => None,
        }
    }

    /// The wrapped protocol, once connected (and through the switch).
    pub fn protocol(&self) -> Option<&P> {
        self.connection().map(Connection::protocol)
    }

    /// The wrapped protocol, mutably, once connected.
    pub fn protocol_mut(&mut self) -> Option<&mut P> {
        match &mut self.phase {
            Phase::Plain(layer) => layer.connection_mut().map(Connection::protocol_mut),
            Phase::Tls(tls) => tls.connection_mut().map(Connection::protocol_mut),
            Phase::Switching => None,
        }
    }

    /// The plaintext connection `P` runs on, once connected (its reason, its counters).
    pub fn connection(&self) -> Option<&Connection<P>> {
        match &self.phase {
            Phase::Plain(layer) => layer.connection(),
            Phase::Tls(tls) => tls.connection(),
            Phase::Switching => None,
        }
    }

    /// After a call into `P`'s connection in the plaintext phase: switches if `P` asked,
    /// otherwise passes `P`'s writes and actions on. Returns the bytes received after the
    /// upgrade command when it switched.
    fn after(&mut self, tx: &mut Transport<'_, P::Message>) -> Option<BytesMut> {
        let Phase::Plain(layer) = &mut self.phase else {
            return None;
        };
        let request = layer
            .inner
            .as_mut()
            .filter(|inner| !inner.is_ended())
            .and_then(|inner| inner.protocol_mut().take_upgrade());
        if let Some(request) = request {
            if !layer.over {
                return Some(self.switch(request, tx));
            }
        }
        layer.poll_inner(tx);
        layer.write_plain(None, tx);
        layer.flush(tx);
        layer.finish_close(tx);
        layer.settle(tx);
        None
    }

    /// Flushes the plaintext written before the request, moves `P`'s connection into a TLS
    /// session and starts the handshake.
    fn switch(&mut self, request: UpgradeRequest, tx: &mut Transport<'_, P::Message>) -> BytesMut {
        let Phase::Plain(mut layer) = core::mem::replace(&mut self.phase, Phase::Switching) else {
            unreachable!("switch is only called in the plaintext phase");
        };
        layer.write_plain(Some(request.plaintext), tx);
        layer.flush(tx);
        // The TLS layer keeps its own account of the outer connection's reading and timers.
        if layer.holding {
            tx.release_reading();
        }
        if let Some((timer, _)) = layer.inner_timer.take() {
            tx.cancel_timer(timer);
        }
        let Some(connection) = layer.inner.take() else {
            unreachable!("a request comes from a live connection");
        };
        let started: fn(&mut P, &TlsInfo) = <P as StartTlsProtocol>::tls_started;
        let tls = match &self.role {
            Role::Server(config) => Tls::server_upgrading(Arc::clone(config), connection, started),
            Role::Client(config, name) => {
                Tls::client_upgrading(Arc::clone(config), name.clone(), connection, started)
            }
        };
        let mut tls = Box::new(tls.handshake_timeout(self.handshake_timeout));
        if !layer.producing {
            tls.pause_producing(tx);
        }
        tls.start(tx);
        self.phase = Phase::Tls(tls);
        BytesMut::from(&request.leftover[..])
    }

    /// Runs `call` on `P`'s connection in the plaintext phase and carries out what follows;
    /// outside `data_received`, bytes left at a switch go straight to the TLS layer.
    fn with_plain(
        &mut self,
        tx: &mut Transport<'_, P::Message>,
        call: impl FnOnce(&mut Connection<P>, loomwork::Instant),
    ) {
        let Phase::Plain(layer) = &mut self.phase else {
            return;
        };
        layer.now = tx.now();
        if layer.over {
            return;
        }
        let now = layer.now;
        if let Some(inner) = layer.inner.as_mut() {
            call(inner, now);
        }
        if let Some(mut leftover) = self.after(tx) {
            // Bytes the outer connection still holds came after the ones `P` had taken.
            leftover.unsplit(tx.take_received());
            if let Phase::Tls(tls) = &mut self.phase {
                tls.feed(leftover, tx);
            }
        }
    }
}

impl<P: Protocol + StartTlsProtocol> Protocol for StartTls<P> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        let Phase::Plain(layer) = &mut self.phase else {
            return;
        };
        layer.now = tx.now();
        let Some(crate::engine::Builder::Ready(protocol)) = layer.builder.take() else {
            return;
        };
        let mut inner = plaintext_connection(protocol, tx);
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        inner.handle_connected(
            layer.now,
            tx.local().unwrap_or(unknown),
            tx.peer().unwrap_or(unknown),
        );
        layer.inner = Some(inner);
        if let Some(mut leftover) = self.after(tx) {
            leftover.unsplit(tx.take_received());
            if let Phase::Tls(tls) = &mut self.phase {
                tls.feed(leftover, tx);
            }
        }
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        loop {
            match &mut self.phase {
                Phase::Tls(tls) => return tls.data_received(data, tx),
                Phase::Switching => return,
                Phase::Plain(layer) => {
                    layer.now = tx.now();
                    let now = layer.now;
                    let Some(inner) = layer.inner.as_mut() else {
                        return;
                    };
                    if layer.over || data.is_empty() || !inner.wants_read() {
                        return;
                    }
                    let chunk = data.split();
                    inner.handle_data(now, &chunk);
                    if let Some(leftover) = self.after(tx) {
                        // `data` is empty: what `P` left after the command is the start of
                        // the TLS stream, and the outer buffer keeps a partial record of it.
                        *data = leftover;
                    }
                }
            }
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        if let Phase::Tls(tls) = &mut self.phase {
            return tls.read_closed(tx);
        }
        let rest = tx.take_received();
        self.with_plain(tx, |inner, now| {
            if !rest.is_empty() {
                inner.handle_data(now, &rest);
            }
            inner.handle_read_closed(now);
        });
        if let Phase::Plain(layer) = &mut self.phase {
            layer.peer_closed = true;
        }
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.timer_fired(timer, tx),
            Phase::Plain(layer) if layer.inner_timer.map(|(id, _)| id) == Some(timer) => {
                layer.inner_timer = None;
                self.with_plain(tx, |inner, now| inner.handle_timeout(now));
            }
            _ => {}
        }
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.message(message, tx),
            _ => self.with_plain(tx, |inner, now| inner.handle_message(now, message)),
        }
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.pause_producing(tx),
            Phase::Plain(layer) => layer.producing = false,
            Phase::Switching => {}
        }
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.resume_producing(tx),
            Phase::Plain(layer) => {
                layer.producing = true;
                self.with_plain(tx, |_, _| {});
            }
            Phase::Switching => {}
        }
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.close_requested(tx),
            Phase::Plain(layer) => {
                if layer.over || layer.inner.is_none() {
                    tx.lose_connection();
                    return;
                }
                layer.draining = true;
                self.with_plain(tx, |inner, now| inner.close(now));
            }
            Phase::Switching => tx.lose_connection(),
        }
    }

    fn connection_lost(&mut self, reason: &Reason) {
        match &mut self.phase {
            Phase::Tls(tls) => tls.connection_lost(reason),
            Phase::Plain(layer) => {
                layer.over = true;
                let now = layer.now;
                if let Some(inner) = layer.inner.as_mut() {
                    if !inner.is_ended() {
                        inner.handle_error(now, reason.clone());
                    }
                }
            }
            Phase::Switching => {}
        }
    }
}

impl<P: Protocol + StartTlsProtocol> core::fmt::Debug for StartTls<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("StartTls")
            .field("server", &matches!(self.role, Role::Server(_)))
            .field("upgraded", &self.is_upgraded())
            .field("tls", &self.tls())
            .finish_non_exhaustive()
    }
}
