//! Relays (Twisted's `twisted.protocols.portforward`): each accepted connection dials an
//! upstream and bytes move both ways, with backpressure across the two legs.
//!
//! A relay is two connections, each running a [`RelayLeg`]: the *client leg* (the accepted
//! connection) and the *upstream leg* (the connection it dials). The legs never share state:
//! they talk through their connection [`Handle`](crate::stream::Handle)s with
//! [`RelayMessage`]s, so each runs on whatever thread or task its runtime gives it.
//!
//! - The client leg reads nothing until the upstream leg is connected: a client that sends
//!   at once fills only its socket buffers, never ours.
//! - Backpressure both ways: when a leg's write queue passes its high-water mark
//!   (`pause_producing`) the other leg stops reading, and reads again below the low-water mark;
//!   and a leg never has more than [`RelayConfig::window`] bytes posted to the other leg and
//!   not yet queued there. So a relay's memory is bounded by the two write queues' high-water
//!   marks plus two windows plus the receive buffers, whatever either side does.
//! - Every ending is passed on: a half-close (EOF) on one leg shuts down writing on the other,
//!   in any order; a leg that ends otherwise than cleanly (reset, abort, timeout) aborts the
//!   other; a failed upstream attempt ends the client leg with the attempt's reason; a graceful
//!   close of either leg (a server shutdown) closes the other gracefully.
//! - Optionally the upstream leg first sends a PROXY protocol header (v1 or v2) naming the
//!   client leg's peer, as that leg sees it (itself possibly from an
//!   [`AcceptProxy`](crate::proxy::AcceptProxy)).
//!
//! Dialing is the runtime's job: a [`Dialer`] gets a [`Dial`] request (with the client leg's
//! handle) and starts a client connection whose factory is an [`UpstreamFactory`]. Each
//! runtime's `relay_dialer` does it in the client leg's own task or thread (see
//! [`Handle::attach`](crate::stream::Handle::attach)); the `portforward` example uses them.

mod leg;
mod message;

pub use leg::{
    RelayConfig, RelayFactory, RelayLeg, RelayReport, ReportHook, Side, UpstreamFactory,
};
pub use message::{Dial, Dialer, RelayMessage};

#[cfg(all(test, feature = "testing"))]
mod tests;
