//! Fault-injection scenarios: peers that stop reading, vanish, or never read at all. The server
//! must keep its memory bounded, notice each failure exactly once, and lose nothing for others.

use std::time::Duration;

use loomwork::stream::Config;
use loomwork::Reason;

use super::{any_port, assert_reset_heard_once, connector, wait_for};
use crate::protocols::{
    lock, ClientScript, ClientSpec, Firehose, FirehoseLog, LoggingFactory, ServerLog, Shared,
};
use crate::{Harness, ServerUnderTest};

const CHUNK: usize = 16 * 1024;
const ENDLESS: usize = 1 << 30;

/// A server (default config) whose one connection streams without end in `CHUNK` writes, its
/// log, the firehose's log, and the bound its write queue must keep: the high-water mark plus
/// one write.
fn firehose_server<H: Harness>(
    h: &H,
) -> (
    Box<dyn ServerUnderTest>,
    Shared<ServerLog>,
    Shared<FirehoseLog>,
    usize,
) {
    let config = Config::default();
    let bound = config.high_water + CHUNK;
    let (firehose, firehose_log) = Firehose::new(ENDLESS, CHUNK, false);
    let mut once = Some(firehose);
    let (factory, server_log) = LoggingFactory::new(move || once.take());
    let server = h.listen(any_port(), factory, config);
    (server, server_log, firehose_log, bound)
}

/// A client stops reading while the server streams, then resets the connection: the server's
/// queue stayed within the high-water mark plus one write throughout, the stream stopped short,
/// and the server hears of the reset exactly once.
pub fn peer_vanishing_while_the_server_queue_is_full_is_noticed_once<H: Harness>(h: &H) {
    let (server, server_log, firehose_log, bound) = firehose_server(h);
    let (spec, log) = ClientSpec::new(ClientScript::Stall(Some(Duration::from_millis(300))));
    h.connect(server.local_addr(), spec, connector()).join();
    assert_reset_heard_once(h, &log, &server_log, server, Duration::from_secs(1));
    let firehose = lock(&firehose_log);
    assert!(firehose.pauses >= 1, "{}: the producer was paused", H::NAME);
    assert!(
        firehose.max_queued <= bound,
        "{}: queue peaked at {}",
        H::NAME,
        firehose.max_queued
    );
    assert!(firehose.written < ENDLESS, "{}", H::NAME);
}

/// A client that never reads: the server's producer is paused and its queue bounded however
/// long it waits; shutdown cannot drain it, so it is aborted at the drain deadline while the
/// report says so.
pub fn reader_that_never_reads_is_bounded_then_aborted_at_the_drain_deadline<H: Harness>(h: &H) {
    let (server, server_log, firehose_log, bound) = firehose_server(h);
    // The stalled client gives up by itself after 5 s at the latest, so the scenario is bounded
    // even on a runtime that does not watch a socket it is not reading (runtime-smol learns of
    // a reset only at its next read or write).
    let (spec, log) = ClientSpec::new(ClientScript::Stall(Some(Duration::from_secs(5))));
    let client = h.connect(server.local_addr(), spec, connector());
    wait_for(h, || lock(&firehose_log).pauses > 0);
    h.sleep(Duration::from_millis(300));
    let (drained, aborted) = server.shutdown(Duration::from_millis(300));
    assert_eq!((drained, aborted), (0, 1), "{}", H::NAME);
    client.join();
    let lost = lock(&log).lost.clone();
    assert!(
        lost == [Reason::Reset] || lost == [Reason::Aborted],
        "{}: the client's connection ended once: {lost:?}",
        H::NAME
    );
    assert_eq!(lock(&server_log).closed, [Reason::Aborted], "{}", H::NAME);
    let firehose = lock(&firehose_log);
    assert!(firehose.pauses >= 1, "{}", H::NAME);
    assert!(
        firehose.max_queued <= bound,
        "{}: queue peaked at {}",
        H::NAME,
        firehose.max_queued
    );
}
