//! `Tls`: TLS over the outer connection, the user's protocol over the plaintext.

use alloc::sync::Arc;
use alloc::{borrow::ToOwned, boxed::Box, string::String, string::ToString};
use core::net::{Ipv4Addr, SocketAddr};
use core::time::Duration;

use bytes::{Buf, BytesMut};
use loomwork::stream::{Config, Connection, Protocol, Transport};
use loomwork::{Instant, Reason, Timeout, TimerId, TlsError, TlsErrorKind};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, CommonState, ServerConfig};

use crate::engine::{record_len, Builder, Layer, Step};
use crate::error::reason_for;
use crate::info::{client_hello_sni, TlsInfo};

/// How long a handshake may take by default before the peer is evicted.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Rounds of rustls's state machine one input may run before yielding: each round moves a
/// record or a batch, so only a broken peer could reach it.
const MAX_ROUNDS: usize = 4096;

/// A stream [`Protocol`] that runs TLS (rustls) over its connection and the wrapped protocol
/// `P` over the plaintext.
///
/// The outer connection carries records; the plaintext side is a real
/// [`Connection<P>`](loomwork::stream::Connection), driven by this layer as a runtime would
/// drive it, so `P` gets exactly the guarantees it gets over TCP: backpressure, the write cap,
/// timers, `connection_lost` once. `P` is built when the handshake has finished, from the
/// verified [`TlsInfo`] (see [`server`](Self::server)), so it knows its peer before its first
/// byte.
///
/// - Writes made in one turn are encrypted together: a thousand 1-byte writes leave as one
///   record, and plaintext is encrypted only while the outer write queue is below its
///   high-water mark, so backpressure reaches `P` as `pause_producing`.
/// - Records are taken from the outer receive buffer one at a time, and only while `P` reads:
///   when it pauses, the outer connection stops reading too, so buffers stay bounded by the
///   connection's limits.
/// - `P`'s graceful close sends `close_notify`, then closes the outer connection (which
///   flushes it within its close deadline); `P`'s half-close sends `close_notify` and shuts
///   down writing; an abort aborts.
/// - The peer's `close_notify` is `P`'s `read_closed`; an EOF without it ends the connection
///   with `Reason::Tls` of kind [`Truncated`](TlsErrorKind::Truncated).
/// - A handshake that fails ends with `Reason::Tls` of the matching kind (see
///   [`reason_for`](crate::reason_for)), after the alert rustls queued for the peer; one that
///   takes longer than the handshake timeout (10 s unless changed) is aborted with
///   `Reason::TimedOut(Timeout::Handshake)`.
///
/// Messages posted to the connection before the handshake finished are dropped: there is no
/// protocol to take them yet.
///
/// See the [crate docs](crate) for a client and a server talking in memory.
pub struct Tls<P: Protocol> {
    session: Session,
    /// Records taken from the outer connection and not yet consumed by rustls.
    incoming: BytesMut,
    layer: Layer<P>,
}

/// rustls's side: a server or a client connection.
enum Session {
    Server(Box<UnbufferedServerConnection>),
    Client(Box<UnbufferedClientConnection>),
    /// rustls refused the configuration; the error is in [`Layer::error`].
    Unusable,
}

impl<P: Protocol> Tls<P> {
    /// A TLS server that builds its protocol from what the handshake established.
    ///
    /// `make` runs once the client is verified (when `config` asks for client certificates)
    /// and before any application byte. If rustls refuses `config`, the connection ends at
    /// once with `Reason::Tls` of kind [`Other`](TlsErrorKind::Other) and
    /// [`error`](Self::error) says why.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use loomwork::bytes::BytesMut;
    /// use loomwork::stream::{Protocol, Transport};
    /// use loomwork_tls::{Tls, TlsInfo};
    ///
    /// /// Greets the client by the name in its certificate chain (here: by its length).
    /// struct Greeter(usize);
    /// impl Protocol for Greeter {
    ///     type Message = ();
    ///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
    ///         let _ = tx.write(format!("{} certificates\n", self.0));
    ///     }
    ///     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    /// }
    ///
    /// # fn config() -> Arc<rustls::ServerConfig> {
    /// #     let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    /// #     let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    /// #     Arc::new(rustls::ServerConfig::builder()
    /// #         .with_no_client_auth()
    /// #         .with_single_cert(vec![cert.cert.der().clone()], key).unwrap())
    /// # }
    /// let server = Tls::server(config(), |info: &TlsInfo| Greeter(info.peer_certificates.len()));
    /// assert!(server.is_handshaking());
    /// ```
    pub fn server(
        config: Arc<ServerConfig>,
        make: impl FnOnce(&TlsInfo) -> P + Send + 'static,
    ) -> Self {
        Self::new_server(config, Builder::Make(Box::new(make)))
    }

    /// A TLS server around a protocol built beforehand (by a [`ServerFactory`], say: see
    /// [`TlsFactory`](crate::TlsFactory)); it can read the peer's identity through nothing
    /// but this layer's [`info`](Self::info).
    ///
    /// [`ServerFactory`]: loomwork::stream::ServerFactory
    pub fn server_with_protocol(config: Arc<ServerConfig>, protocol: P) -> Self {
        Self::new_server(config, Builder::Ready(protocol))
    }

    /// A TLS client for the server `name` (verified against `config`'s roots) that builds its
    /// protocol from what the handshake established.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// use loomwork::bytes::BytesMut;
    /// use loomwork::stream::{Protocol, Transport};
    /// use loomwork_tls::Tls;
    /// use rustls::pki_types::ServerName;
    ///
    /// struct Quiet;
    /// impl Protocol for Quiet {
    ///     type Message = ();
    ///     fn data_received(&mut self, _: &mut BytesMut, _: &mut Transport<'_>) {}
    /// }
    ///
    /// let config = rustls::ClientConfig::builder()
    ///     .with_root_certificates(rustls::RootCertStore::empty())
    ///     .with_no_client_auth();
    /// let name = ServerName::try_from("example.com").unwrap();
    /// let client = Tls::client(Arc::new(config), name, |_info| Quiet);
    /// assert!(client.protocol().is_none()); // built after the handshake
    /// ```
    pub fn client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        make: impl FnOnce(&TlsInfo) -> P + Send + 'static,
    ) -> Self {
        Self::new_client(config, name, Builder::Make(Box::new(make)))
    }

    /// A TLS client around a protocol built beforehand.
    pub fn client_with_protocol(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        protocol: P,
    ) -> Self {
        Self::new_client(config, name, Builder::Ready(protocol))
    }

    /// Sets how long the handshake may take (`None`: forever; the default is 10 s) before
    /// the connection is aborted with `Reason::TimedOut(Timeout::Handshake)`.
    pub fn handshake_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.layer.handshake_timeout = timeout;
        self
    }

    /// True until the handshake has finished (and the wrapped protocol exists).
    pub fn is_handshaking(&self) -> bool {
        self.layer.inner.is_none()
    }

    /// What the handshake established, once it has finished.
    pub fn info(&self) -> Option<&TlsInfo> {
        self.layer.info.as_ref()
    }

    /// What rustls said when the connection failed, if it did: the full error behind the
    /// `Reason::Tls` kind.
    pub fn error(&self) -> Option<&rustls::Error> {
        self.layer.error.as_ref()
    }

    /// The wrapped protocol, once built.
    pub fn protocol(&self) -> Option<&P> {
        self.layer.inner.as_ref().map(Connection::protocol)
    }

    /// The wrapped protocol, mutably, once built.
    pub fn protocol_mut(&mut self) -> Option<&mut P> {
        self.layer.inner.as_mut().map(Connection::protocol_mut)
    }

    /// The plaintext connection the wrapped protocol runs on (its reason, its counters), once
    /// the handshake has finished.
    pub fn plaintext(&self) -> Option<&Connection<P>> {
        self.layer.inner.as_ref()
    }

    fn new_server(config: Arc<ServerConfig>, builder: Builder<P>) -> Self {
        let (session, error) = match UnbufferedServerConnection::new(config) {
            Ok(conn) => (Session::Server(Box::new(conn)), None),
            Err(err) => (Session::Unusable, Some(err)),
        };
        Self::with_session(session, error, builder, None, true)
    }

    fn new_client(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        builder: Builder<P>,
    ) -> Self {
        let asked = Some(server_name_text(&name));
        let (session, error) = match UnbufferedClientConnection::new(config, name) {
            Ok(conn) => (Session::Client(Box::new(conn)), None),
            Err(err) => (Session::Unusable, Some(err)),
        };
        Self::with_session(session, error, builder, asked, false)
    }

    fn with_session(
        session: Session,
        error: Option<rustls::Error>,
        builder: Builder<P>,
        server_name: Option<String>,
        is_server: bool,
    ) -> Self {
        Tls {
            session,
            incoming: BytesMut::new(),
            layer: Layer::new(Some(builder), error, server_name, is_server),
        }
    }

    /// Runs rustls's state machine until it waits for input, carrying out what each state
    /// asks, then settles the outer connection (reading hold, timer).
    fn drive(&mut self, tx: &mut Transport<'_, P::Message>) {
        for _ in 0..MAX_ROUNDS {
            if self.layer.over {
                break;
            }
            if self.layer.inner.is_none() && self.session.handshake_done() {
                self.establish(tx);
                continue;
            }
            let (discard, step) = match &mut self.session {
                Session::Server(conn) => self
                    .layer
                    .handle(conn.process_tls_records(&mut self.incoming[..]), tx),
                Session::Client(conn) => self
                    .layer
                    .handle(conn.process_tls_records(&mut self.incoming[..]), tx),
                Session::Unusable => break,
            };
            self.incoming.advance(discard.min(self.incoming.len()));
            match step {
                Step::Again => {}
                Step::Idle => break,
                Step::Writable => {
                    if !self.session.handshake_done() {
                        break;
                    }
                    // The loop's next round builds `P`.
                }
                Step::Received => {
                    if self.layer.inner.is_none() && self.session.handshake_done() {
                        self.establish(tx);
                    }
                    self.layer.deliver();
                }
                Step::PeerClosed => {
                    self.layer.peer_closed = true;
                    let now = self.layer.now;
                    if let Some(inner) = self.layer.inner.as_mut() {
                        inner.handle_read_closed(now);
                    }
                }
                Step::Failed(error) => {
                    self.fail(error, tx);
                    break;
                }
            }
            self.layer.poll_inner(tx);
            self.layer.finish_close(tx);
        }
        self.layer.flush(tx);
        self.layer.settle(tx);
    }

    /// The handshake has finished: build `P` from what it established and connect it.
    fn establish(&mut self, tx: &mut Transport<'_, P::Message>) {
        let Some(builder) = self.layer.builder.take() else {
            return;
        };
        let Some(state) = self.session.state() else {
            return;
        };
        let info = TlsInfo::from_state(state, self.layer.server_name.clone());
        if let Some(timer) = self.layer.handshake_timer.take() {
            tx.cancel_timer(timer);
        }
        let protocol = match builder {
            Builder::Make(make) => make(&info),
            Builder::Ready(protocol) => protocol,
            Builder::Connected {
                mut connection,
                started,
            } => {
                // STARTTLS: `P` goes on where it was, and learns what the handshake gave.
                started(connection.protocol_mut(), &info);
                self.layer.info = Some(info);
                self.layer.inner = Some(*connection);
                self.layer.poll_inner(tx);
                self.close_if_asked(tx);
                return;
            }
        };
        let mut inner = plaintext_connection(protocol, tx);
        let unknown = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0));
        inner.handle_connected(
            self.layer.now,
            tx.local().unwrap_or(unknown),
            tx.peer().unwrap_or(unknown),
        );
        self.layer.info = Some(info);
        self.layer.inner = Some(inner);
        self.layer.poll_inner(tx);
        self.close_if_asked(tx);
    }

    /// Carries out a close asked while the handshake was under way, now that it has finished:
    /// `P` was told it is connected, now it hears the close like any other, and
    /// `close_notify` follows its last words.
    fn close_if_asked(&mut self, tx: &mut Transport<'_, P::Message>) {
        if core::mem::take(&mut self.layer.close_after_handshake) {
            self.close_inner(tx);
        }
    }

    /// A close from outside, through `P`'s own connection.
    fn close_inner(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        let now = self.layer.now;
        let Some(inner) = self.layer.inner.as_mut().filter(|_| !self.layer.over) else {
            return;
        };
        inner.close(now);
        // `P` may put its own close off; until it closes, the outer queue's high-water mark
        // still holds.
        self.layer.draining = inner.is_closing();
        self.layer.poll_inner(tx);
        self.drive(tx);
    }

    /// rustls failed: send the alert it queued, end `P` and the connection with the reason.
    fn fail(&mut self, error: rustls::Error, tx: &mut Transport<'_, P::Message>) {
        let reason = reason_for(&error);
        self.layer.error = Some(error);
        // rustls queues a fatal alert for what it finds itself; it comes out first on the next
        // call, before any input is looked at. That call gets the same buffer as before (less
        // what rustls discarded): its handshake deframer keeps positions into it across calls
        // (a handshake message split over records), and an empty slice in its place makes
        // rustls index past the end and panic (found by the `tls` fuzz target).
        match &mut self.session {
            Session::Server(conn) => self
                .layer
                .encode_alert(conn.process_tls_records(&mut self.incoming[..])),
            Session::Client(conn) => self
                .layer
                .encode_alert(conn.process_tls_records(&mut self.incoming[..])),
            Session::Unusable => {}
        }
        self.layer.flush(tx);
        self.layer.end(reason, tx, false);
    }

    /// Takes complete records from the outer receive buffer into `incoming` while `P` reads,
    /// and runs rustls over each.
    fn take_records(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        while !self.layer.over && !self.layer.peer_closed && self.layer.reading_wanted() {
            let Some(len) = record_len(data) else {
                break;
            };
            if self.layer.is_server && !self.layer.first_record_seen {
                self.layer.server_name = data.get(..len).and_then(client_hello_sni);
            }
            self.layer.first_record_seen = true;
            let record = data.split_to(len);
            if self.incoming.is_empty() {
                self.incoming = record;
            } else {
                self.incoming.unsplit(record);
            }
            self.drive(tx);
        }
        if self.layer.over || self.layer.peer_closed {
            // Nothing reads past the end of the TLS stream.
            data.clear();
        }
    }

    /// Runs `call` on the plaintext connection if it is live, then drives.
    fn with_inner(
        &mut self,
        tx: &mut Transport<'_, P::Message>,
        call: impl FnOnce(&mut Connection<P>, Instant),
    ) {
        self.layer.now = tx.now();
        if self.layer.over {
            return;
        }
        if let Some(inner) = self.layer.inner.as_mut() {
            call(inner, self.layer.now);
            self.layer.poll_inner(tx);
        } else {
            // STARTTLS mid-handshake: `P` hears it now; what it writes is encrypted once the
            // handshake has finished.
            let now = self.layer.now;
            if let Some(parked) = self.layer.connection_mut() {
                call(parked, now);
            }
        }
        self.drive(tx);
    }

    /// Starts the handshake (a client sends its ClientHello) and its timeout: what
    /// `connection_made` does, and what STARTTLS does at the switch.
    pub(crate) fn start(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        if let Session::Unusable = self.session {
            self.layer
                .end(Reason::Tls(TlsError::local(TlsErrorKind::Other)), tx, false);
            return;
        }
        if let Some(timeout) = self.layer.handshake_timeout {
            self.layer.handshake_timer = Some(tx.call_later(timeout));
        }
        self.drive(tx);
    }

    /// STARTTLS: a TLS server around a connection `P` already runs on.
    pub(crate) fn server_upgrading(
        config: Arc<ServerConfig>,
        connection: Connection<P>,
        started: fn(&mut P, &TlsInfo),
    ) -> Self {
        Self::new_server(
            config,
            Builder::Connected {
                connection: Box::new(connection),
                started,
            },
        )
    }

    /// STARTTLS: a TLS client for the server `name` around a connection `P` already runs on.
    pub(crate) fn client_upgrading(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        connection: Connection<P>,
        started: fn(&mut P, &TlsInfo),
    ) -> Self {
        Self::new_client(
            config,
            name,
            Builder::Connected {
                connection: Box::new(connection),
                started,
            },
        )
    }

    /// STARTTLS, outside `data_received`: records received before the switch (taken from
    /// the wrapped protocol's buffer and the outer one) go to rustls first; a partial record
    /// at the end waits in `incoming` for the rest.
    pub(crate) fn feed(&mut self, mut bytes: BytesMut, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        self.take_records(&mut bytes, tx);
        if !bytes.is_empty() && !self.layer.over && !self.layer.peer_closed {
            self.incoming.unsplit(bytes);
            self.drive(tx);
        }
        self.layer.settle(tx);
    }

    /// `P`'s connection, running or waiting for a STARTTLS handshake.
    pub(crate) fn connection(&self) -> Option<&Connection<P>> {
        self.layer.connection()
    }

    /// `P`'s connection, mutably, running or waiting for a STARTTLS handshake.
    pub(crate) fn connection_mut(&mut self) -> Option<&mut Connection<P>> {
        self.layer.connection_mut()
    }
}

/// The plaintext connection `P` runs on, inside a connection configured as `tx`'s is.
/// The name a client asked for, as text (rustls's `ServerName::to_str` needs std).
fn server_name_text(name: &ServerName<'_>) -> String {
    match name {
        ServerName::DnsName(dns) => dns.as_ref().to_owned(),
        ServerName::IpAddress(rustls::pki_types::IpAddr::V4(ip)) => {
            core::net::Ipv4Addr::from(*ip.as_ref()).to_string()
        }
        ServerName::IpAddress(rustls::pki_types::IpAddr::V6(ip)) => {
            core::net::Ipv6Addr::from(*ip.as_ref()).to_string()
        }
        _ => String::new(),
    }
}

pub(crate) fn plaintext_connection<P: Protocol>(
    protocol: P,
    tx: &Transport<'_, P::Message>,
) -> Connection<P> {
    // The outer connection lingers for the peer's EOF and enforces its own close deadline;
    // the plaintext side closes as soon as it has flushed, within the same deadline.
    let config = Config {
        close_linger: None,
        ..tx.config().clone()
    };
    let mut inner = Connection::new(protocol, config);
    if let Some(handle) = tx.handle() {
        inner.set_handle(handle.clone());
    }
    inner
}

impl Session {
    fn state(&self) -> Option<&CommonState> {
        match self {
            Session::Server(conn) => Some(conn),
            Session::Client(conn) => Some(conn),
            Session::Unusable => None,
        }
    }

    fn handshake_done(&self) -> bool {
        self.state().is_some_and(|state| !state.is_handshaking())
    }
}

impl<P: Protocol> Protocol for Tls<P> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.start(tx);
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        self.take_records(data, tx);
        self.layer.settle(tx);
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        if self.layer.over {
            return;
        }
        // Records the outer connection still holds (reading was held while `P` paused) are
        // the last of the stream: they may carry the close_notify.
        let mut rest = tx.take_received();
        while !self.layer.over && !self.layer.peer_closed && !rest.is_empty() {
            let len = record_len(&rest).unwrap_or(rest.len());
            let record = rest.split_to(len);
            self.incoming.unsplit(record);
            self.drive(tx);
        }
        if self.layer.over || self.layer.peer_closed {
            // A clean end: `P` heard `read_closed` at the close_notify.
            return;
        }
        self.layer.end(
            Reason::Tls(TlsError::local(TlsErrorKind::Truncated)),
            tx,
            false,
        );
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        if self.layer.handshake_timer == Some(timer) {
            self.layer.handshake_timer = None;
            if self.layer.inner.is_none() {
                self.layer
                    .end(Reason::TimedOut(Timeout::Handshake), tx, true);
            }
            return;
        }
        if self.layer.close_timer == Some(timer) {
            // One close deadline from the moment `P`'s connection began closing: whatever is
            // still unflushed on either side of the layer is given up, including records the
            // outer connection is still flushing after `close_notify` (the layer is `over`
            // then, but the connection has not ended, or this timer would not fire).
            if self.layer.over {
                tx.abort_connection_with(Reason::TimedOut(Timeout::Close));
            } else {
                self.layer.end(Reason::TimedOut(Timeout::Close), tx, true);
            }
            return;
        }
        if self.layer.inner_timer.map(|(id, _)| id) == Some(timer) {
            self.layer.inner_timer = None;
            self.with_inner(tx, |inner, now| inner.handle_timeout(now));
        }
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        self.with_inner(tx, |inner, now| inner.handle_message(now, message));
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        // Encryption stops; `P`'s queue fills and it hears `pause_producing` from its own
        // connection, which (by default) stops its reading, which stops ours.
        self.layer.producing = false;
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.producing = true;
        self.with_inner(tx, |_, _| {});
    }

    /// A close asked from outside (a handle, a server shutdown) goes through `P`'s own
    /// connection, so `P` hears `close_requested` and its last words are encrypted; then
    /// `close_notify`, then the outer close.
    ///
    /// During the handshake there is no session to send `close_notify` on yet, and closing
    /// at once would show the peer a failed handshake or, worse, a truncation (a TLS 1.3
    /// client counts itself connected a round trip before the server does). So the close
    /// waits for the handshake to finish ([`Transport::defer_close`]), then goes as above. A
    /// peer that never finishes is ended by the handshake timeout or the close deadline,
    /// whichever comes first (or by a server's drain deadline).
    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        self.layer.now = tx.now();
        if self.layer.over {
            tx.lose_connection();
            return;
        }
        if self.layer.inner.is_none() {
            if self.layer.builder.is_some() && tx.defer_close() {
                self.layer.close_after_handshake = true;
            } else {
                tx.lose_connection();
            }
            return;
        }
        self.close_inner(tx);
    }

    fn connection_lost(&mut self, reason: &Reason) {
        self.layer.over = true;
        let now = self.layer.now;
        if let Some(inner) = self.layer.connection_mut() {
            if !inner.is_ended() {
                inner.handle_error(now, reason.clone());
            }
        }
    }
}

impl<P: Protocol> core::fmt::Debug for Tls<P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tls")
            .field("server", &self.layer.is_server)
            .field("handshaking", &self.is_handshaking())
            .field("info", &self.layer.info)
            .field("error", &self.layer.error)
            .field("over", &self.layer.over)
            .finish_non_exhaustive()
    }
}
