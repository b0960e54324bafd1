//! The scenarios, each written once against [`Harness`](crate::Harness).
//!
//! Every scenario bounds itself in time (virtual time on the memory network) and checks
//! content, not just counts.

mod amp;
mod closing;
mod connecting;
mod drain;
mod echo;
mod fanout;
mod faults;
mod flow;
mod framed;
mod lifecycle;
mod policies;

pub use amp::*;
pub use closing::*;
pub use connecting::*;
pub use drain::*;
pub use echo::*;
pub use fanout::*;
pub use faults::*;
pub use flow::*;
pub use framed::*;
pub use lifecycle::*;
pub use policies::*;

use std::time::Duration;

use loomwork::connector;

/// The lock a scenario runs under: exclusive for the ones that count threads and descriptors.
pub fn guard_for(name: &str) -> Box<dyn std::any::Any> {
    if name == "server_shutdown_closes_everything_and_leaks_nothing" {
        Box::new(crate::exclusive())
    } else {
        Box::new(crate::shared())
    }
}

/// Connector settings for scenarios: a short connect timeout so a broken runtime fails fast.
pub(crate) fn connector() -> connector::Config {
    connector::Config {
        connect_timeout: Some(Duration::from_secs(10)),
        ..Default::default()
    }
}

pub(crate) fn any_port() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Waits (bounded: 5 s) until `done` holds.
pub(crate) fn wait_for<H: crate::Harness>(h: &H, done: impl Fn() -> bool) {
    for _ in 0..250 {
        if done() {
            return;
        }
        h.sleep(Duration::from_millis(20));
    }
}

/// After a client reset its connection: its own side ended `Aborted`, and the server, once it
/// noticed (bounded wait), heard `Reset` exactly once. Shuts the server down within `drain`.
pub(crate) fn assert_reset_heard_once<H: crate::Harness>(
    h: &H,
    client: &crate::protocols::Shared<crate::protocols::ClientLog>,
    server_log: &crate::protocols::Shared<crate::protocols::ServerLog>,
    server: Box<dyn crate::ServerUnderTest>,
    drain: Duration,
) {
    use crate::protocols::lock;
    use loomwork::Reason;
    assert_eq!(
        lock(client).lost,
        [Reason::Aborted],
        "{}: client side",
        H::NAME
    );
    // The reset may still be in flight: wait (bounded) for the server to notice.
    wait_for(h, || !lock(server_log).closed.is_empty());
    server.shutdown(drain);
    assert_eq!(
        lock(server_log).closed,
        [Reason::Reset],
        "{}: server side",
        H::NAME
    );
}
