//! The suite over TLS: [`OverTls`] wraps any [`Harness`] so that every server it starts speaks
//! TLS ([`TlsFactory`]) and every client it starts does too, with the fixture certificates of
//! `loomwork_tls::testing`; [`tls_conformance_suite!`](crate::tls_conformance_suite) runs the
//! scenarios that make sense over TLS; the hostile-peer scenarios below run on real sockets.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loomwork::connector::{self, ClientFactory, Retry};
use loomwork::stream::{Config, Protocol, ServerFactory};
use loomwork::{Reason, Timeout};
use loomwork_tls::rustls::pki_types::ServerName;
use loomwork_tls::rustls::{ClientConfig, ServerConfig};
use loomwork_tls::testing::{
    client_hello, fixture_client_config, fixture_server_config, fixture_server_name,
};
use loomwork_tls::{Tls, TlsFactory};

use crate::protocols::{lock, ClientScript, ClientSpec, Echo, LoggingFactory};
use crate::scenarios::{any_port, connector};
use crate::{ClientUnderTest, Harness, ServerUnderTest};

/// A harness whose servers and clients all speak TLS (fixture certificates, TLS 1.3).
pub struct OverTls<H> {
    inner: H,
    server_config: Arc<ServerConfig>,
    client_config: Arc<ClientConfig>,
    handshake_timeout: Option<Duration>,
}

impl<H: Harness> OverTls<H> {
    /// TLS over `inner`, with the default handshake timeout.
    pub fn new(inner: H) -> Self {
        OverTls {
            inner,
            server_config: fixture_server_config(),
            client_config: fixture_client_config(),
            handshake_timeout: Some(loomwork_tls::DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// Sets the servers' handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = Some(timeout);
        self
    }

    /// The harness underneath.
    pub fn inner(&self) -> &H {
        &self.inner
    }
}

/// A client factory whose connections speak TLS to the fixture server; gives the wrapped
/// factory back on `join`.
pub struct TlsClient<C> {
    factory: C,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
}

impl<C: ClientFactory> ClientFactory for TlsClient<C> {
    type Protocol = Tls<C::Protocol>;
    fn started_connecting(&mut self) {
        self.factory.started_connecting();
    }
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<Self::Protocol> {
        let protocol = self.factory.build_protocol(peer)?;
        Some(Tls::client_with_protocol(
            Arc::clone(&self.config),
            self.name.clone(),
            protocol,
        ))
    }
    fn connection_failed(&mut self, reason: &Reason) -> Retry {
        self.factory.connection_failed(reason)
    }
    fn connection_lost(&mut self, reason: &Reason) -> Retry {
        self.factory.connection_lost(reason)
    }
}

struct Joined<C>(Box<dyn ClientUnderTest<TlsClient<C>>>);

impl<C> ClientUnderTest<C> for Joined<C> {
    fn join(self: Box<Self>) -> C {
        self.0.join().factory
    }
}

impl<H: Harness> Harness for OverTls<H> {
    const NAME: &'static str = H::NAME;

    fn listen<F>(&self, addr: SocketAddr, factory: F, config: Config) -> Box<dyn ServerUnderTest>
    where
        F: ServerFactory + Send + 'static,
        F::Protocol: Send + 'static,
        <F::Protocol as Protocol>::Message: Send + 'static,
    {
        let factory = TlsFactory::new(Arc::clone(&self.server_config), factory)
            .handshake_timeout(self.handshake_timeout);
        self.inner.listen(addr, factory, config)
    }

    fn connect<C>(
        &self,
        addr: SocketAddr,
        factory: C,
        connector: connector::Config,
    ) -> Box<dyn ClientUnderTest<C>>
    where
        C: ClientFactory + Send + 'static,
        C::Protocol: Send + 'static,
        <C::Protocol as Protocol>::Message: Send + 'static,
    {
        let factory = TlsClient {
            factory,
            config: Arc::clone(&self.client_config),
            name: fixture_server_name(),
        };
        Box::new(Joined(self.inner.connect(addr, factory, connector)))
    }

    fn sleep(&self, duration: Duration) {
        self.inner.sleep(duration);
    }

    fn unused_addr(&self) -> SocketAddr {
        self.inner.unused_addr()
    }

    fn live_workers(&self) -> Option<usize> {
        self.inner.live_workers()
    }
}

/// Instantiates, for one harness expression, every conformance scenario that makes sense over
/// TLS, with both ends wrapped in `Tls`.
///
/// Left out:
/// - `refusing_factory_closes_the_socket_without_callbacks`: a peer the factory refuses is
///   closed before any TLS byte, so its client's handshake never finishes: the client's
///   protocol is never connected and hears no `connection_lost` (only its factory hears the
///   end, as a failed handshake), where the scenario expects the client's protocol to see it.
///
/// Two more run only on virtual time (`tls_conformance_suite!(virtual_time: harness)`, the
/// memory network): `drain_finishes_in_flight_exchanges_and_aborts_stragglers` (12 MiB must be
/// encrypted, sent and decrypted within a 1 s drain after a 300 ms pause, which an unoptimized
/// build on a loaded 2-core machine missed once in three runs) and
/// `idle_connections_close_after_the_timeout_while_active_ones_stay` (its active client must
/// tick every 50 ms within a 600 ms idle timeout over TLS, which one run on a loaded machine
/// missed).
#[macro_export]
macro_rules! tls_conformance_suite {
    (virtual_time: $harness:expr) => {
        $crate::tls_conformance_suite!($harness);
        $crate::conformance_suite!(@tests $crate::tls::OverTls::new($harness);
            idle_connections_close_after_the_timeout_while_active_ones_stay,
            drain_finishes_in_flight_exchanges_and_aborts_stragglers,
        );
    };
    ($harness:expr) => {
        $crate::conformance_suite!(@tests $crate::tls::OverTls::new($harness);
            echo_round_trip,
            many_clients_echo_64_kib_with_checksums,
            graceful_close_after_4_mib_write_delivers_every_byte,
            graceful_close_delivers_every_byte_even_with_unread_input,
            abort_discards_the_queue_and_resets_the_peer,
            half_closed_client_still_gets_its_answer,
            refused_connection_reaches_connection_failed,
            client_reconnects_once_the_server_comes_back,
            timers_fire_in_order_and_never_early,
            slow_reader_keeps_the_server_queue_bounded_and_producer_paused,
            peer_reset_mid_stream_gives_exactly_one_connection_lost,
            framed_echo_every_framing_max_empty_and_thousands,
            amp_pipelined_calls_answered_out_of_order_reach_their_callers_once,
            over_limit_frame_closes_only_its_own_connection,
            peer_vanishing_while_the_server_queue_is_full_is_noticed_once,
            reader_that_never_reads_is_bounded_then_aborted_at_the_drain_deadline,
            malformed_input_on_one_connection_loses_nothing_for_100_others,
            slow_loris_is_evicted_by_the_request_timeout_while_others_are_served,
            throttled_connections_keep_within_ten_percent_of_the_limit,
            per_peer_cap_refuses_the_extra_connection_and_accepts_again_after_one_closes,
            chat_fan_out_evicts_idle_members_while_readers_get_every_line,
            small_writes_to_a_peer_that_never_reads_stop_at_the_cap,
            server_shutdown_closes_everything_and_leaks_nothing,
        );
    };
}

/// Reads from a raw socket until the server closes it (EOF or reset), at most `limit`;
/// returns whether it was closed and the bytes read.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (false, got);
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return (true, got),
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (false, got)
            }
            Err(err) => panic!("reading a raw socket: {err}"),
        }
    }
}

/// `stalled` raw connections each send half a ClientHello, then nothing. A new TLS client's
/// exchange completes while they stall (most still connected when it is done); then the
/// handshake timeout (the harness's, set short) evicts every one of them: each stalled socket
/// sees its connection closed, and the server reports `TimedOut(Handshake)` for each.
/// Returns how long the good client's exchange took.
pub fn stalled_handshakes_neither_delay_a_new_client_nor_outlive_the_timeout<H: Harness>(
    h: &OverTls<H>,
    stalled: usize,
) -> Duration {
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let addr = server.local_addr();
    let hello = client_hello();
    let half = &hello[..hello.len() / 2];
    let started = Instant::now();
    let mut sockets: Vec<TcpStream> = (0..stalled)
        .map(|i| {
            let mut stream = TcpStream::connect(addr)
                .unwrap_or_else(|err| panic!("{}: stalled connection {i}: {err}", H::NAME));
            stream.write_all(half).expect("half a ClientHello");
            stream
        })
        .collect();
    let opened = started.elapsed();
    // Every stalled connection accepted (bounded wait), then a good client.
    crate::scenarios::wait_for(h, || server.connection_count() >= stalled);
    let message = loomwork::bytes::Bytes::from_static(b"through the crowd");
    let (spec, log) = ClientSpec::new(ClientScript::Exchange(message.clone()));
    let before = Instant::now();
    h.connect(addr, spec, connector()).join();
    let took = before.elapsed();
    let still_stalled = server.connection_count();
    {
        let log = lock(&log);
        assert_eq!(log.received, message, "{}: the good client's echo", H::NAME);
        assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    }
    assert!(
        still_stalled >= stalled / 2,
        "{}: the good client finished while the crowd stalled ({still_stalled} of {stalled} \
         left; opening them took {opened:?}, the exchange {took:?})",
        H::NAME
    );
    // Eviction: every stalled socket is closed by the server, well within 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    for (i, socket) in sockets.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let (closed, _) = read_until_closed(socket, left.max(Duration::from_millis(1)));
        assert!(closed, "{}: stalled connection {i} still open", H::NAME);
    }
    eprintln!(
        "{}: {stalled} stalled handshakes opened in {opened:?}, all closed by the server {:?} \
         after the first was opened",
        H::NAME,
        started.elapsed()
    );
    drop(sockets);
    crate::scenarios::wait_for(h, || lock(&server_log).closed.len() > stalled);
    server.shutdown(Duration::from_secs(5));
    let server_log = lock(&server_log);
    let timed_out = server_log
        .closed
        .iter()
        .filter(|r| **r == Reason::TimedOut(Timeout::Handshake))
        .count();
    assert_eq!(timed_out, stalled, "{}: {:?}", H::NAME, server_log.closed);
    assert_eq!(server_log.closed.len(), stalled + 1, "{}", H::NAME);
    took
}

/// `malformed` raw connections each send a broken ClientHello while a good TLS client echoes
/// 1 MiB through the same server: every other one a session id longer than the message (rustls
/// answers with a `decode_error` alert), the rest a handshake message claiming 16 MiB (rustls
/// refuses it without an alert). Each malformed connection is closed with a `Reason::Tls` of
/// its own; the good client's bytes all come back.
pub fn a_malformed_client_hello_ends_only_its_own_connection<H: Harness>(
    h: &OverTls<H>,
    malformed: usize,
) {
    const SIZE: usize = 1024 * 1024;
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let addr = server.local_addr();
    let payload = crate::protocols::payload(7, SIZE);
    let (spec, log) = ClientSpec::new(ClientScript::Exchange(payload.clone()));
    let good = h.connect(addr, spec, connector());
    let hello = client_hello();
    // After the record header (5), the handshake header (4), the version (2) and the random
    // (32): the session id's length.
    let mut long_session_id = hello.clone();
    long_session_id[43] = 0xff;
    let mut huge_message = hello;
    huge_message[6] = 0xff;
    let mut alerts = 0;
    for i in 0..malformed {
        let bad = if i % 2 == 0 {
            &long_session_id
        } else {
            &huge_message
        };
        let mut stream = TcpStream::connect(addr)
            .unwrap_or_else(|err| panic!("{}: malformed connection {i}: {err}", H::NAME));
        stream.write_all(bad).expect("a malformed ClientHello");
        let (closed, got) = read_until_closed(&mut stream, Duration::from_secs(10));
        assert!(closed, "{}: malformed connection {i} left open", H::NAME);
        // An alert record: decode_error (50), fatal (2).
        alerts += usize::from(got == [21, 3, 3, 0, 2, 2, 50]);
    }
    good.join();
    {
        let log = lock(&log);
        assert_eq!(
            log.received_len,
            SIZE,
            "{}: the good client's echo",
            H::NAME
        );
        assert_eq!(
            log.received_hash,
            crate::protocols::fnv1a(0, &payload),
            "{}",
            H::NAME
        );
        assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    }
    assert_eq!(
        alerts,
        malformed.div_ceil(2),
        "{}: the decode_error alerts",
        H::NAME
    );
    crate::scenarios::wait_for(h, || lock(&server_log).closed.len() > malformed);
    server.shutdown(Duration::from_secs(5));
    let server_log = lock(&server_log);
    let tls_failures = server_log
        .closed
        .iter()
        .filter(|r| matches!(r, Reason::Tls(e) if !e.by_peer))
        .count();
    assert_eq!(
        tls_failures,
        malformed,
        "{}: {:?}",
        H::NAME,
        server_log.closed
    );
    assert_eq!(
        server_log
            .closed
            .iter()
            .filter(|r| **r == Reason::Done)
            .count(),
        1,
        "{}: the good client ended cleanly",
        H::NAME
    );
}
