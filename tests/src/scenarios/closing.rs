//! Closing scenarios: graceful close flushes, abort discards, half-close keeps answering.

use std::time::Duration;

use loomwork::bytes::Bytes;
use loomwork::stream::Config;
use loomwork::Reason;

use super::{any_port, connector};
use crate::protocols::{
    fnv1a, lock, pattern, AnswerOnEof, ClientScript, ClientSpec, Firehose, LoggingFactory,
};
use crate::Harness;

const FOUR_MIB: usize = 4 * 1024 * 1024;

/// A server writes 4 MiB and calls `lose_connection` at once: the client still receives every
/// byte, in order, and then a clean close (Twisted TR-3).
pub fn graceful_close_after_4_mib_write_delivers_every_byte<H: Harness>(h: &H) {
    let big = pattern(0, FOUR_MIB);
    let (factory, _) = LoggingFactory::new(move || Some(WriteAllThenClose(big.clone())));
    let server = h.listen(any_port(), factory, Config::default());
    let (spec, log) = ClientSpec::new(ClientScript::ReadAll {
        keep: 0,
        pause_first: None,
    });
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.received_len, FOUR_MIB, "{}: every byte", H::NAME);
    assert_eq!(
        log.received_hash,
        fnv1a(0, &pattern(0, FOUR_MIB)),
        "{}: in order",
        H::NAME
    );
    assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
}

/// Like the scenario above, but the client has sent 64 KiB the server never reads. Closing a
/// socket with unread input makes the kernel send a reset that destroys our own unsent reply,
/// so a graceful close must first shut down writing and drain the peer's input: the client
/// still receives every byte and a clean close.
pub fn graceful_close_delivers_every_byte_even_with_unread_input<H: Harness>(h: &H) {
    let big = pattern(0, FOUR_MIB);
    let (factory, _) = LoggingFactory::new(move || Some(WriteAllThenClose(big.clone())));
    let server = h.listen(any_port(), factory, Config::default());
    let unread = Bytes::from(vec![7u8; 64 * 1024]);
    let (spec, log) = ClientSpec::new(ClientScript::SendThenReadAll(unread));
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.received_len, FOUR_MIB, "{}: every byte", H::NAME);
    assert_eq!(
        log.received_hash,
        fnv1a(0, &pattern(0, FOUR_MIB)),
        "{}: in order",
        H::NAME
    );
    assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
}

/// One 4 MiB write, then `lose_connection`, from `connection_made`.
struct WriteAllThenClose(Bytes);

impl loomwork::stream::Protocol for WriteAllThenClose {
    type Message = ();
    fn connection_made(&mut self, tx: &mut loomwork::stream::Transport<'_>) {
        let _ = tx.write(self.0.clone());
        tx.lose_connection();
    }
    fn data_received(
        &mut self,
        d: &mut loomwork::bytes::BytesMut,
        _: &mut loomwork::stream::Transport<'_>,
    ) {
        d.clear();
    }
}

/// A server queues 4 MiB and aborts: the queue is dropped, the client sees a reset and not the
/// whole stream (TR-4), and the server reports `Aborted`.
pub fn abort_discards_the_queue_and_resets_the_peer<H: Harness>(h: &H) {
    let (firehose, _) = Firehose::new(FOUR_MIB, FOUR_MIB, true);
    let mut once = Some(firehose);
    let (factory, server_log) = LoggingFactory::new(move || once.take());
    let server = h.listen(any_port(), factory, Config::default());
    let (spec, log) = ClientSpec::new(ClientScript::ReadAll {
        keep: 0,
        pause_first: None,
    });
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert!(
        log.received_len < FOUR_MIB,
        "{}: queue discarded, got {}",
        H::NAME,
        log.received_len
    );
    // The reset can beat the client's own view of the handshake: then it is that attempt's
    // failure rather than the end of an established connection. Either way, a reset.
    let seen: Vec<_> = log.lost.iter().chain(&log.failures).collect();
    assert_eq!(seen, [&Reason::Reset], "{}: peer sees a reset", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
    assert_eq!(lock(&server_log).closed, [Reason::Aborted], "{}", H::NAME);
}

/// The client sends a question and shuts down its writing side; the server, told through
/// `read_closed`, still answers, then both ends close cleanly (TR-5, PR-7).
pub fn half_closed_client_still_gets_its_answer<H: Harness>(h: &H) {
    let (factory, server_log) = LoggingFactory::new(|| Some(AnswerOnEof::default()));
    let server = h.listen(any_port(), factory, Config::default());
    let question = Bytes::from(vec![b'?'; 10_000]);
    let (spec, log) = ClientSpec::new(ClientScript::AskThenHalfClose(question));
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.received, b"got 10000 bytes", "{}", H::NAME);
    assert_eq!(log.lost, [Reason::Done], "{}", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
    assert_eq!(lock(&server_log).closed, [Reason::Done], "{}", H::NAME);
}
