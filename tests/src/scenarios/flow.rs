//! Flow-control scenarios: a slow reader cannot make the server's memory grow.

use std::time::Duration;

use loomwork::stream::Config;
use loomwork::Reason;

use super::{any_port, connector};
use crate::protocols::{fnv1a, lock, pattern, ClientScript, ClientSpec, Firehose, LoggingFactory};
use crate::Harness;

/// A server streams 8 MiB in 16 KiB writes to a client that reads nothing for 300 ms. The
/// server's queue never exceeds the high-water mark plus one write, the producer is paused at
/// least once, and once the client reads, every byte arrives in order (Twisted PP-2, KW-2).
pub fn slow_reader_keeps_the_server_queue_bounded_and_producer_paused<H: Harness>(h: &H) {
    const TOTAL: usize = 8 * 1024 * 1024;
    const CHUNK: usize = 16 * 1024;
    let config = Config::default();
    let bound = config.high_water + CHUNK;
    let (firehose, firehose_log) = Firehose::new(TOTAL, CHUNK, false);
    let mut once = Some(firehose);
    let (factory, server_log) = LoggingFactory::new(move || once.take());
    let server = h.listen(any_port(), factory, config);
    let script = ClientScript::ReadAll {
        keep: 0,
        pause_first: Some(Duration::from_millis(300)),
    };
    let (spec, log) = ClientSpec::new(script);
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.received_len, TOTAL, "{}", H::NAME);
    assert_eq!(
        log.received_hash,
        fnv1a(0, &pattern(0, TOTAL)),
        "{}",
        H::NAME
    );
    assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
    let firehose = lock(&firehose_log);
    assert!(firehose.pauses >= 1, "{}: producer paused", H::NAME);
    assert!(
        firehose.max_queued <= bound,
        "{}: queue peaked at {} > {bound}",
        H::NAME,
        firehose.max_queued
    );
    assert_eq!(lock(&server_log).closed, [Reason::Done], "{}", H::NAME);
}
