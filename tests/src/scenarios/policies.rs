//! Policy scenarios: idle timeout, throttling and connection limits, on every runtime
//! (Twisted PO-3..PO-6, TM-1..TM-4).

use std::net::SocketAddr;
use std::time::Duration;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::connector::{ClientFactory, Retry};
use loomwork::policy::{
    ConnectionLimits, IdleTimeout, IdleTimer, LimitConnections, Rate, Throttled,
};
use loomwork::stream::{Config, Protocol, ServerFactory, Transport};
use loomwork::{Instant, Limit, Reason, Timeout, TimerId};

use super::{any_port, connector, wait_for};
use crate::protocols::{
    fnv1a, lock, pattern, ClientScript, ClientSpec, Echo, Firehose, LoggingFactory, Shared,
};
use crate::Harness;

/// An idle client is closed by a 600 ms idle timeout, measured on the server's own clock to be
/// never early, while a client that sends every 50 ms for a second keeps its connection and
/// gets every echo (PO-6).
pub fn idle_connections_close_after_the_timeout_while_active_ones_stay<H: Harness>(h: &H) {
    const TIMEOUT: Duration = Duration::from_millis(600);
    const TICKS: usize = 20;
    let silences = Shared::<Vec<Duration>>::default();
    let log = silences.clone();
    let (factory, server_log) = LoggingFactory::new(move || {
        let log = log.clone();
        let hook = move |echo: &mut Stamped, _: &mut IdleTimer, tx: &mut Transport<'_>| {
            lock(&log).push(tx.now().saturating_duration_since(echo.last_traffic));
            tx.lose_connection_with(Reason::TimedOut(Timeout::Idle));
        };
        Some(IdleTimeout::with_hook(
            Stamped::default(),
            Some(TIMEOUT),
            hook,
        ))
    });
    let server = h.listen(any_port(), factory, Config::default());
    let idle = OneShot::new(Ticker::new(TICKS, None));
    let idle_log = idle.log();
    let idle = h.connect(server.local_addr(), idle, connector());
    let active = OneShot::new(Ticker::new(TICKS, Some(Duration::from_millis(50))));
    let active_log = active.log();
    let active = h.connect(server.local_addr(), active, connector());
    idle.join();
    active.join();
    let silences = lock(&silences).clone();
    assert_eq!(
        silences.len(),
        1,
        "{}: one connection timed out: {silences:?}",
        H::NAME
    );
    assert!(
        silences[0] >= TIMEOUT,
        "{}: closed after {:?}",
        H::NAME,
        silences[0]
    );
    assert_eq!(
        lock(&idle_log).lost,
        [Reason::Done],
        "{}: idle client sees a clean close",
        H::NAME
    );
    let active = lock(&active_log);
    assert_eq!(active.echoed, TICKS, "{}: every echo arrived", H::NAME);
    assert_eq!(active.lost, [Reason::Done], "{}", H::NAME);
    drop(active);
    wait_for(h, || lock(&server_log).closed.len() == 2);
    server.shutdown(Duration::from_secs(5));
    let mut closed = lock(&server_log).closed.clone();
    closed.sort_by_key(|r| r.to_string());
    assert_eq!(
        closed,
        [Reason::TimedOut(Timeout::Idle), Reason::Done],
        "{}: the server knows which one timed out",
        H::NAME
    );
}

/// Echo that remembers when it last saw traffic either way (the idle timer's own notion).
#[derive(Default)]
pub(crate) struct Stamped {
    last_traffic: Instant,
}

impl Protocol for Stamped {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        self.last_traffic = tx.now();
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        self.last_traffic = tx.now();
        let _ = tx.write(data.split().freeze());
    }
}

/// 512 KiB each way through a 256 KiB/s limit: a client streaming into a read-throttled
/// server, and a write-throttled server streaming to a client. Both measured rates are within
/// 10% of the limit over about two seconds, and every byte arrives intact (PO-3).
pub fn throttled_connections_keep_within_ten_percent_of_the_limit<H: Harness>(h: &H) {
    const TOTAL: usize = 512 * 1024;
    const LIMIT: u64 = 256 * 1024;
    let rate = Rate::per_second(LIMIT).with_burst(LIMIT / 20);
    // Small water marks keep the write bursts small compared with the whole transfer.
    let config = Config {
        high_water: 16 * 1024,
        low_water: 4 * 1024,
        ..Config::default()
    };

    let meter_log = Shared::<MeterLog>::default();
    let log = meter_log.clone();
    let (factory, reads_log) = LoggingFactory::new(move || {
        Some(Throttled::new(Meter::new(log.clone()), Some(rate), None))
    });
    let reads = h.listen(any_port(), factory, config.clone());

    let (firehose, _) = Firehose::new(TOTAL, 4 * 1024, false);
    let mut once = Some(Throttled::new(firehose, None, Some(rate)));
    let (factory, _) = LoggingFactory::new(move || once.take());
    let writes = h.listen(any_port(), factory, config);

    let (uploader, _) = Firehose::new(TOTAL, 16 * 1024, false);
    let uploader = OneShot::new(uploader);
    let upload = h.connect(reads.local_addr(), uploader, connector());
    let downloaded = Shared::<MeterLog>::default();
    let downloader = OneShot::new(Meter::new(downloaded.clone()));
    let download = h.connect(writes.local_addr(), downloader, connector());
    upload.join();
    download.join();
    // The uploader is done once the kernel has its bytes; the server is still reading them.
    wait_for(h, || !lock(&reads_log).closed.is_empty());
    reads.shutdown(Duration::from_secs(5));
    writes.shutdown(Duration::from_secs(5));

    for (direction, log) in [("read", &meter_log), ("write", &downloaded)] {
        let log = lock(log);
        assert_eq!(log.bytes, TOTAL, "{}: {direction}: nothing lost", H::NAME);
        assert_eq!(
            log.hash,
            fnv1a(0, &pattern(0, TOTAL)),
            "{}: {direction}: intact",
            H::NAME
        );
        let rate = log.rate().expect("two reads at least");
        let error = (rate - LIMIT as f64).abs() / LIMIT as f64;
        eprintln!(
            "{}: {direction}-throttled at {LIMIT} B/s: measured {rate:.0} B/s ({:+.1}%)",
            H::NAME,
            (rate / LIMIT as f64 - 1.0) * 100.0
        );
        assert!(error <= 0.10, "{}: {direction}: {rate:.0} B/s", H::NAME);
    }
}

/// With at most two connections per peer, a third from the same host is closed at once with
/// the typed reason; once one of the two closes, the host is served again (PO-5, KW-9).
pub fn per_peer_cap_refuses_the_extra_connection_and_accepts_again_after_one_closes<H: Harness>(
    h: &H,
) {
    let limits = ConnectionLimits {
        max_per_peer: Some(2),
        ..Default::default()
    };
    let (factory, closes) = ClosesLogged::new(LimitConnections::new(|_peer| Echo, limits));
    let server = h.listen(any_port(), factory, Config::default());
    let addr = server.local_addr();
    let (leaving, leaving_log) =
        ClientSpec::new(ClientScript::Timers(vec![Duration::from_millis(300)]));
    let leaving = h.connect(addr, leaving, connector());
    let (staying, staying_log) = ClientSpec::new(ClientScript::Idle);
    let staying = h.connect(addr, staying, connector());
    wait_for(h, || server.connection_count() == 2);
    assert_eq!(server.connection_count(), 2, "{}: both admitted", H::NAME);

    let (extra, extra_log) = ClientSpec::new(ClientScript::ReadAll {
        keep: 16,
        pause_first: None,
    });
    h.connect(addr, extra, connector()).join();
    assert_eq!(lock(&extra_log).made, 1, "{}", H::NAME);
    assert!(lock(&extra_log).received.is_empty(), "{}", H::NAME);
    let over = Reason::LimitExceeded {
        limit: Limit::Connections,
        max: 2,
        seen: 3,
    };
    wait_for(h, || !lock(&closes).is_empty());
    assert_eq!(
        lock(&closes).as_slice(),
        std::slice::from_ref(&over),
        "{}: typed refusal",
        H::NAME
    );

    leaving.join();
    assert_eq!(lock(&leaving_log).lost, [Reason::Done], "{}", H::NAME);
    wait_for(h, || lock(&closes).len() == 2);
    let (again, again_log) = ClientSpec::new(ClientScript::Exchange(Bytes::from_static(b"again")));
    h.connect(addr, again, connector()).join();
    assert_eq!(
        lock(&again_log).received,
        b"again",
        "{}: served again",
        H::NAME
    );
    wait_for(h, || lock(&closes).len() == 3);

    let (drained, aborted) = server.shutdown(Duration::from_secs(5));
    assert_eq!((drained, aborted), (1, 0), "{}", H::NAME);
    staying.join();
    assert_eq!(lock(&staying_log).lost, [Reason::Done], "{}", H::NAME);
    assert_eq!(
        *lock(&closes),
        [over, Reason::Done, Reason::Done, Reason::Done],
        "{}: every admitted connection released once",
        H::NAME
    );
}

/// A client factory that hands out one prepared protocol, once.
pub(crate) struct OneShot<P> {
    protocol: Option<P>,
}

impl<P> OneShot<P> {
    /// A factory that builds `protocol` for its first connection.
    pub(crate) fn new(protocol: P) -> Self {
        OneShot {
            protocol: Some(protocol),
        }
    }
}

impl<P: Protocol> ClientFactory for OneShot<P> {
    type Protocol = P;
    fn build_protocol(&mut self, _peer: SocketAddr) -> Option<P> {
        self.protocol.take()
    }
    fn connection_failed(&mut self, _: &Reason) -> Retry {
        Retry::Stop
    }
}

/// Logs the reason of every `connection_closed` a wrapped factory hears.
pub(crate) struct ClosesLogged<F> {
    inner: F,
    log: Shared<Vec<Reason>>,
}

impl<F> ClosesLogged<F> {
    pub(crate) fn new(inner: F) -> (Self, Shared<Vec<Reason>>) {
        let log = Shared::default();
        (
            ClosesLogged {
                inner,
                log: log.clone(),
            },
            log,
        )
    }
}

impl<F: ServerFactory> ServerFactory for ClosesLogged<F> {
    type Protocol = F::Protocol;
    fn build_protocol(&mut self, peer: SocketAddr) -> Option<F::Protocol> {
        self.inner.build_protocol(peer)
    }
    fn connection_closed(&mut self, peer: SocketAddr, reason: &Reason) {
        lock(&self.log).push(reason.clone());
        self.inner.connection_closed(peer, reason);
    }
}

/// What a [`Ticker`] saw.
#[derive(Debug, Default)]
pub(crate) struct TickerLog {
    echoed: usize,
    lost: Vec<Reason>,
}

/// Sends one byte per `interval` (`None`: stays silent), `ticks` times, then closes once
/// everything came back. A silent one waits for the server to close.
pub(crate) struct Ticker {
    ticks: usize,
    interval: Option<Duration>,
    sent: usize,
    log: Shared<TickerLog>,
}

impl Ticker {
    fn new(ticks: usize, interval: Option<Duration>) -> Self {
        Ticker {
            ticks,
            interval,
            sent: 0,
            log: Shared::default(),
        }
    }
}

impl OneShot<Ticker> {
    fn log(&self) -> Shared<TickerLog> {
        self.protocol
            .as_ref()
            .map(|t| t.log.clone())
            .unwrap_or_default()
    }
}

impl Protocol for Ticker {
    type Message = ();
    fn connection_made(&mut self, tx: &mut Transport<'_>) {
        if let Some(interval) = self.interval {
            tx.call_later(interval);
        }
    }
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let mut log = lock(&self.log);
        log.echoed += data.split().len();
        if self.interval.is_some() && log.echoed >= self.ticks {
            tx.lose_connection();
        }
    }
    fn read_closed(&mut self, tx: &mut Transport<'_>) {
        tx.lose_connection();
    }
    fn timer_fired(&mut self, _: TimerId, tx: &mut Transport<'_>) {
        let _ = tx.write_slice(b".");
        self.sent += 1;
        if let (Some(interval), true) = (self.interval, self.sent < self.ticks) {
            tx.call_later(interval);
        }
    }
    fn connection_lost(&mut self, reason: &Reason) {
        lock(&self.log).lost.push(reason.clone());
    }
}

/// What a [`Meter`] measured.
#[derive(Debug, Default)]
pub(crate) struct MeterLog {
    bytes: usize,
    hash: u64,
    first: Option<(Instant, usize)>,
    last: Option<Instant>,
}

impl MeterLog {
    /// Bytes per second after the first read: the first read is the burst, not the rate.
    fn rate(&self) -> Option<f64> {
        let (first_at, first_len) = self.first?;
        let span = self.last?.saturating_duration_since(first_at).as_secs_f64();
        (span > 0.0).then(|| (self.bytes - first_len) as f64 / span)
    }
}

/// Consumes everything, timing and hashing it; closes when the peer does.
pub(crate) struct Meter {
    log: Shared<MeterLog>,
}

impl Meter {
    fn new(log: Shared<MeterLog>) -> Self {
        Meter { log }
    }
}

impl Protocol for Meter {
    type Message = ();
    fn data_received(&mut self, data: &mut BytesMut, tx: &mut Transport<'_>) {
        let chunk = data.split();
        let mut log = lock(&self.log);
        let now = tx.now();
        log.first.get_or_insert((now, chunk.len()));
        log.last = Some(now);
        log.bytes += chunk.len();
        log.hash = fnv1a(log.hash, &chunk);
    }
}
