//! Client-side scenarios: refusal and reconnection (Twisted FA-1, RC-2).

use std::time::Duration;

use loomwork::bytes::Bytes;
use loomwork::connector::Retry;
use loomwork::stream::Config;
use loomwork::Reason;

use super::connector;
use crate::protocols::{lock, ClientScript, ClientSpec, Echo, LoggingFactory};
use crate::Harness;

/// Connecting where nothing listens reaches `connection_failed` with `Refused`, and no protocol
/// is ever built.
pub fn refused_connection_reaches_connection_failed<H: Harness>(h: &H) {
    let (spec, log) = ClientSpec::new(ClientScript::Idle);
    h.connect(h.unused_addr(), spec, connector()).join();
    let log = lock(&log);
    assert_eq!(log.failures, [Reason::Refused], "{}", H::NAME);
    assert_eq!(log.made, 0, "{}", H::NAME);
}

/// A client retrying every 100 ms connects once a server appears on its address, and echoes.
pub fn client_reconnects_once_the_server_comes_back<H: Harness>(h: &H) {
    let addr = h.unused_addr();
    let message = Bytes::from_static(b"are you back?");
    let retry = Retry::After(Duration::from_millis(100));
    let (spec, log) = ClientSpec::retrying(ClientScript::Exchange(message.clone()), retry);
    let client = h.connect(addr, spec, connector());
    h.sleep(Duration::from_millis(350));
    let (factory, _) = LoggingFactory::new(|| Some(Echo));
    let server = h.listen(addr, factory, Config::default());
    client.join();
    let log = lock(&log);
    assert!(
        !log.failures.is_empty(),
        "{}: it did fail while the server was away",
        H::NAME
    );
    assert!(
        log.failures.iter().all(|r| *r == Reason::Refused),
        "{}: {:?}",
        H::NAME,
        log.failures
    );
    assert_eq!(log.made, 1, "{}", H::NAME);
    assert_eq!(log.received, message, "{}", H::NAME);
    drop(log);
    server.shutdown(Duration::from_secs(5));
}
