//! `std::io::Error` to [`Reason`]: one mapping for every runtime.

use std::io;

use loomwork::{IoKind, Reason, Timeout};

/// Classifies an operating-system error as the [`Reason`] a connection or attempt ended with.
///
/// Written once here, not in each runtime, so that both report identical reasons for identical
/// failures; and not in the core, which is portable and knows no `errno`. Errors std gives a
/// portable [`io::ErrorKind`] are mapped by kind; the few it leaves as "uncategorized" are
/// recognised by their platform's `errno` constant (never by number).
///
/// ```
/// use loomwork::{IoKind, Reason};
/// use std::io;
/// let reset = io::Error::from(io::ErrorKind::ConnectionReset);
/// assert_eq!(loomwork_net::reason_from_io(&reset), Reason::Reset);
/// let emfile = io::Error::from_raw_os_error(libc::EMFILE);
/// assert!(matches!(
///     loomwork_net::reason_from_io(&emfile),
///     Reason::Io { kind: IoKind::OutOfResources, .. }
/// ));
/// ```
pub fn reason_from_io(err: &io::Error) -> Reason {
    use io::ErrorKind as K;
    let code = err.raw_os_error();
    let io = |kind| Reason::Io { kind, code };
    match err.kind() {
        K::ConnectionRefused => Reason::Refused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Reason::Reset,
        K::TimedOut => Reason::TimedOut(Timeout::Os),
        K::HostUnreachable | K::NetworkUnreachable => Reason::Unreachable,
        K::UnexpectedEof => Reason::Lost,
        K::AddrInUse => io(IoKind::AddrInUse),
        K::AddrNotAvailable => io(IoKind::AddrNotAvailable),
        K::PermissionDenied => io(IoKind::PermissionDenied),
        K::InvalidInput => io(IoKind::InvalidInput),
        K::NotConnected => io(IoKind::NotConnected),
        K::OutOfMemory => io(IoKind::OutOfResources),
        _ => io(classify_code(code)),
    }
}

/// The errors std leaves uncategorized on stable Rust, by their platform's `errno`.
#[cfg(unix)]
fn classify_code(code: Option<i32>) -> IoKind {
    match code {
        Some(libc::EMSGSIZE) => IoKind::MessageTooLong,
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => IoKind::OutOfResources,
        _ => IoKind::Other,
    }
}

#[cfg(not(unix))]
fn classify_code(_: Option<i32>) -> IoKind {
    IoKind::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(errno: i32) -> Option<IoKind> {
        match reason_from_io(&io::Error::from_raw_os_error(errno)) {
            Reason::Io { kind, code } => {
                assert_eq!(code, Some(errno));
                Some(kind)
            }
            _ => None,
        }
    }

    #[test]
    fn resource_exhaustion_and_oversized_messages_are_recognised_by_errno() {
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert_eq!(
                kind_of(errno),
                Some(IoKind::OutOfResources),
                "errno {errno}"
            );
        }
        assert_eq!(kind_of(libc::EMSGSIZE), Some(IoKind::MessageTooLong));
        assert_eq!(kind_of(libc::EADDRINUSE), Some(IoKind::AddrInUse));
        assert_eq!(kind_of(libc::ENOTCONN), Some(IoKind::NotConnected));
    }

    #[test]
    fn peer_failures_become_their_own_reasons() {
        let of = |errno| reason_from_io(&io::Error::from_raw_os_error(errno));
        assert_eq!(of(libc::ECONNRESET), Reason::Reset);
        assert_eq!(of(libc::EPIPE), Reason::Reset);
        assert_eq!(of(libc::ECONNREFUSED), Reason::Refused);
        assert_eq!(of(libc::ETIMEDOUT), Reason::TimedOut(Timeout::Os));
    }
}
