//! Echo scenarios: bytes come back intact, for one client and for hundreds at once.

use loomwork::stream::Config;

use super::{any_port, connector};
use crate::protocols::{fnv1a, lock, payload, ClientScript, ClientSpec, Echo, LoggingFactory};
use crate::Harness;

/// One client sends a message and gets the same bytes back; both sides end cleanly.
pub fn echo_round_trip<H: Harness>(h: &H) {
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let message = loomwork::bytes::Bytes::from_static(b"hello, loomwork");
    let (spec, log) = ClientSpec::new(ClientScript::Exchange(message.clone()));
    h.connect(server.local_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.received, message, "{}: echo", H::NAME);
    assert_eq!(log.lost, [loomwork::Reason::Done], "{}", H::NAME);
    drop(log);
    server.shutdown(std::time::Duration::from_secs(5));
    let server_log = lock(&server_log);
    assert_eq!(server_log.built, 1);
    assert_eq!(
        server_log.closed,
        [loomwork::Reason::Done],
        "{}: server side",
        H::NAME
    );
}

/// 500 concurrent clients each echo 64 KiB of their own pseudo-random bytes; every byte is
/// checked by hash, and every connection ends cleanly on both sides.
pub fn many_clients_echo_64_kib_with_checksums<H: Harness>(h: &H) {
    const CLIENTS: usize = 500;
    const SIZE: usize = 64 * 1024;
    let (factory, server_log) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(any_port(), factory, Config::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (spec, log) = ClientSpec::new(ClientScript::Exchange(payload(i, SIZE)));
            (h.connect(server.local_addr(), spec, connector()), log)
        })
        .collect();
    for (i, (client, log)) in clients.into_iter().enumerate() {
        client.join();
        let log = lock(&log);
        assert_eq!(log.received_len, SIZE, "{}: client {i} length", H::NAME);
        assert_eq!(
            log.received_hash,
            fnv1a(0, &payload(i, SIZE)),
            "{}: client {i} bytes",
            H::NAME
        );
        assert_eq!(
            log.lost,
            [loomwork::Reason::Done],
            "{}: client {i}",
            H::NAME
        );
    }
    server.shutdown(std::time::Duration::from_secs(10));
    let server_log = lock(&server_log);
    assert_eq!(server_log.built, CLIENTS);
    assert_eq!(
        server_log.closed.len(),
        CLIENTS,
        "{}: every close reported",
        H::NAME
    );
    assert!(
        server_log.closed.iter().all(|r| r.is_clean()),
        "{}: {:?}",
        H::NAME,
        server_log.closed
    );
}
