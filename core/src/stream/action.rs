//! What a connection asks its runtime to do to the socket.

/// A socket-level action the runtime must carry out, pulled with
/// [`Connection::poll_action`](crate::stream::Connection::poll_action).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Shut down the writing side (`shutdown(SHUT_WR)`): the queue is empty and the protocol
    /// asked for a half-close. Reading goes on.
    ShutdownWrite,
    /// Close the socket normally: everything queued has been written. The connection is over.
    Close,
    /// Close the socket with a reset (`SO_LINGER` 0), discarding anything unsent. The
    /// connection is over.
    Abort,
}
