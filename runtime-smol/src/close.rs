//! Closing a socket gracefully without a reset.
//!
//! `close(2)` on a socket with unread input sends a reset instead of a FIN, and a reset
//! throws away whatever of our output the kernel has not sent yet. A closing connection stops
//! reading (Twisted TR-3), so input the peer sent meanwhile is exactly that unread input: a
//! 4 MiB reply followed by `lose_connection` would lose its tail whenever the peer had written
//! anything more. So a graceful close shuts down our writing side (the kernel sends the rest,
//! then FIN), discards input until the peer's EOF, and only then closes; bounded by
//! [`LINGER`], as servers' "lingering close" is.

use std::net::TcpStream;
use std::time::Duration;

use async_io::{Async, Timer};
use futures_lite::future::{self, FutureExt};

use crate::socket::{self, Discarded};

/// The longest a closed connection's socket waits for the peer's EOF before it is closed
/// anyway. Protocol callbacks are over by then; only the descriptor is held.
pub(crate) const LINGER: Duration = Duration::from_secs(2);

/// Shuts down writing, discards input until EOF (at most [`LINGER`]), then closes.
pub(crate) async fn linger_close(stream: Async<TcpStream>) {
    // Errors mean the connection is gone already: nothing to wait for.
    if socket::shutdown_write(stream.get_ref()).is_err() {
        return;
    }
    let mut deadline = Timer::after(LINGER);
    loop {
        match socket::discard_input(stream.get_ref()) {
            Discarded::Done => return,
            // A peer that keeps sending must not starve the other connections.
            Discarded::Some => future::yield_now().await,
            Discarded::WouldBlock => {
                let readable = async { stream.readable().await.is_ok() };
                let expired = async {
                    (&mut deadline).await;
                    false
                };
                if !readable.or(expired).await {
                    return;
                }
            }
        }
    }
}
