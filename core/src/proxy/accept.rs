//! `AcceptProxy`: reads a PROXY header before the wrapped protocol starts, so that the
//! protocol sees the real client from its very first callback.

use core::time::Duration;

use bytes::BytesMut;

use crate::proxy::{decode, detect, Detected, Header, ParseError, MAX_V2_LEN};
use crate::reason::{Reason, Timeout};
use crate::stream::{Protocol, Transport};
use crate::timer::TimerId;

/// How long a peer may take to send its whole header by default before it is evicted.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a connection must, may or must not start with a PROXY header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expect {
    /// It must (HAProxy's `accept-proxy`): anything else ends the connection.
    Required,
    /// It may: a header is read if the first bytes are one, otherwise they are the wrapped
    /// protocol's. The wrapped protocol starts once the first bytes tell, or when the header
    /// timeout passes with nothing received (so a protocol in which the server speaks first
    /// waits for the client's first byte or the timeout); the start of a header left
    /// unfinished at the timeout is evicted as under `Required`.
    IfPresent,
    /// It must not: the connection is passed through untouched (a peer outside the trusted
    /// ranges, whose header would be a lie).
    Never,
}

/// Wraps a protocol so that each connection starts with a PROXY protocol header (v1 or v2),
/// read and removed before the wrapped protocol sees anything.
///
/// The wrapped protocol's `connection_made` runs only once the header is in, and from then on
/// [`Transport::peer`] is the client the header names and [`Transport::local`] the address it
/// connected to, in every callback; [`Transport::proxy_header`] gives the header itself (its
/// TLVs: ALPN, authority, SSL, unique id). A `LOCAL` header (a proxy's health check) or an
/// `UNKNOWN`/`UNSPEC` one leaves the connection's real addresses, as the specification says.
/// Bytes that follow the header in the same read are the wrapped protocol's first data.
///
/// A malformed or over-long header ends the connection with `Reason::Protocol` (see
/// [`ParseError`], kept in [`error`](Self::error)); one that does not arrive whole within the
/// header timeout ([`DEFAULT_HEADER_TIMEOUT`] unless changed) aborts it with
/// `Reason::TimedOut(Timeout::ProxyHeader)`; an EOF inside it ends it with
/// [`ParseError::Truncated`]. A connection that ends before its header was complete never
/// reaches the wrapped protocol: neither its `connection_made` nor its `connection_lost` runs
/// (the factory still hears the reason). Messages posted before the header are dropped.
///
/// ```
/// use loomwork::bytes::BytesMut;
/// use loomwork::proxy::{AcceptProxy, Expect};
/// use loomwork::stream::{Config, Connection, Protocol, Transport};
/// use loomwork::Instant;
///
/// /// Greets the client by its address.
/// struct Hello;
/// impl Protocol for Hello {
///     type Message = ();
///     fn connection_made(&mut self, tx: &mut Transport<'_>) {
///         let peer = tx.peer().unwrap();
///         let _ = tx.write(format!("you are {peer}\r\n"));
///     }
///     fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_>) {
///         data.clear();
///     }
/// }
///
/// let mut conn = Connection::new(AcceptProxy::new(Hello, Expect::Required), Config::default());
/// let balancer = "10.0.0.2:40000".parse().unwrap();
/// conn.handle_connected(Instant::ZERO, "10.0.0.1:80".parse().unwrap(), balancer);
/// conn.handle_data(Instant::ZERO, b"PROXY TCP4 192.0.2.7 10.0.0.1 50000 80\r\n");
/// assert_eq!(conn.poll_write().next(), Some(&b"you are 192.0.2.7:50000\r\n"[..]));
/// ```
#[derive(Debug)]
pub struct AcceptProxy<P> {
    inner: P,
    expect: Expect,
    stage: Stage,
    header_timeout: Option<Duration>,
    max_len: usize,
    error: Option<ParseError>,
}

/// Where the wrapper is: one transition function, [`AcceptProxy::start`] or
/// [`AcceptProxy::fail`], moves it out of `Waiting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The header is not complete; the wrapped protocol has not started.
    Waiting { timer: Option<TimerId> },
    /// The wrapped protocol runs; every callback goes to it.
    Passing,
    /// The header was refused or never came; the connection is ending.
    Failed,
}

impl<P: Protocol> AcceptProxy<P> {
    /// Wraps `inner`, expecting a header as `expect` says, with the default header timeout and
    /// any header up to the specification's maximum length.
    pub fn new(inner: P, expect: Expect) -> Self {
        AcceptProxy {
            inner,
            expect,
            stage: Stage::Waiting { timer: None },
            header_timeout: Some(DEFAULT_HEADER_TIMEOUT),
            max_len: MAX_V2_LEN,
            error: None,
        }
    }

    /// Sets how long the whole header may take from the connection's start (`None`: forever,
    /// which lets a peer that never finishes its header hold the connection).
    pub fn header_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_timeout = timeout;
        self
    }

    /// Refuses headers longer than `max` bytes ([`ParseError::TooLong`]); v1 headers are at
    /// most 107 bytes whatever this says.
    pub fn max_header_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// True while the header is awaited and the wrapped protocol has not started.
    pub fn is_waiting(&self) -> bool {
        matches!(self.stage, Stage::Waiting { .. })
    }

    /// Why the header was refused, if it was.
    pub fn error(&self) -> Option<ParseError> {
        self.error
    }

    /// The wrapped protocol.
    pub fn inner(&self) -> &P {
        &self.inner
    }

    /// The wrapped protocol, mutably.
    pub fn inner_mut(&mut self) -> &mut P {
        &mut self.inner
    }

    /// The header is in (or there is none to wait for): adopt its addresses and start the
    /// wrapped protocol, handing it whatever followed the header.
    fn start(
        &mut self,
        header: Option<Header>,
        data: &mut BytesMut,
        tx: &mut Transport<'_, P::Message>,
    ) {
        if let Stage::Waiting { timer: Some(timer) } = self.stage {
            tx.cancel_timer(timer);
        }
        self.stage = Stage::Passing;
        if let Some(header) = header {
            tx.state.adopt_proxy_header(header);
        }
        self.inner.connection_made(tx);
        let reading = tx.is_reading() && tx.read_holds() == 0;
        if !data.is_empty() && reading && !tx.is_closing() {
            self.inner.data_received(data, tx);
        }
    }

    fn fail(&mut self, error: ParseError, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        self.stage = Stage::Failed;
        self.error = Some(error);
        data.clear();
        tx.lose_connection_with(error.reason());
    }
}

impl<P: Protocol> Protocol for AcceptProxy<P> {
    type Message = P::Message;

    fn connection_made(&mut self, tx: &mut Transport<'_, P::Message>) {
        if self.expect == Expect::Never {
            self.start(None, &mut BytesMut::new(), tx);
            return;
        }
        let timer = self.header_timeout.map(|timeout| tx.call_later(timeout));
        self.stage = Stage::Waiting { timer };
    }

    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_, P::Message>) {
        match self.stage {
            Stage::Passing => return self.inner.data_received(data, tx),
            Stage::Failed => return data.clear(),
            Stage::Waiting { .. } => {}
        }
        if self.expect == Expect::IfPresent {
            match detect(data) {
                Detected::NeedMore => return,
                Detected::NotProxy => return self.start(None, data, tx),
                Detected::V1 | Detected::V2 => {}
            }
        }
        match decode(data, self.max_len) {
            Ok(None) => {}
            Ok(Some(header)) => self.start(Some(header), data, tx),
            Err(error) => self.fail(error, data, tx),
        }
    }

    fn read_closed(&mut self, tx: &mut Transport<'_, P::Message>) {
        match self.stage {
            Stage::Passing => self.inner.read_closed(tx),
            Stage::Failed => {}
            Stage::Waiting { .. } => {
                let mut rest = tx.take_received();
                let plain = self.expect == Expect::IfPresent
                    && matches!(detect(&rest), Detected::NeedMore | Detected::NotProxy);
                if plain {
                    // Too short to be a header after all: the bytes are the protocol's.
                    self.start(None, &mut rest, tx);
                    if !tx.is_closing() {
                        self.inner.read_closed(tx);
                    }
                } else {
                    self.fail(ParseError::Truncated, &mut rest, tx);
                }
            }
        }
    }

    fn timer_fired(&mut self, timer: TimerId, tx: &mut Transport<'_, P::Message>) {
        match self.stage {
            Stage::Passing => self.inner.timer_fired(timer, tx),
            Stage::Waiting { timer: Some(ours) } if ours == timer => {
                let mut rest = tx.take_received();
                if self.expect == Expect::IfPresent && rest.is_empty() {
                    // Nothing arrived, so no header is coming: the protocol may speak first.
                    self.stage = Stage::Waiting { timer: None };
                    self.start(None, &mut rest, tx);
                    return;
                }
                self.stage = Stage::Failed;
                tx.abort_connection_with(Reason::TimedOut(Timeout::ProxyHeader));
            }
            Stage::Waiting { .. } | Stage::Failed => {}
        }
    }

    fn message(&mut self, message: P::Message, tx: &mut Transport<'_, P::Message>) {
        if self.stage == Stage::Passing {
            self.inner.message(message, tx);
        }
    }

    fn pause_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        if self.stage == Stage::Passing {
            self.inner.pause_producing(tx);
        }
    }

    fn resume_producing(&mut self, tx: &mut Transport<'_, P::Message>) {
        if self.stage == Stage::Passing {
            self.inner.resume_producing(tx);
        }
    }

    fn close_requested(&mut self, tx: &mut Transport<'_, P::Message>) {
        if self.stage == Stage::Passing {
            self.inner.close_requested(tx);
        } else {
            tx.lose_connection();
        }
    }

    fn connection_lost(&mut self, reason: &Reason) {
        if self.stage == Stage::Passing {
            self.inner.connection_lost(reason);
        }
    }
}
