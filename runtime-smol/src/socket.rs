//! The few socket system calls a connection makes, as plain synchronous functions.
//!
//! Keeping them out of the `async fn`s means their stack buffers (the iovec array, the scratch
//! buffer borrow) never become part of a task's future, which stays small.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use loomwork::stream::{Connection, Protocol};
use loomwork::{Instant, Reason};

/// Largest single read (Twisted DF-9: one `recv(65536)` per readable event).
pub(crate) const READ_SIZE: usize = 64 * 1024;

/// Most slices handed to one vectored write.
const MAX_IOVECS: usize = 64;

thread_local! {
    /// One read buffer per thread, shared by every connection on it: an idle connection owns
    /// no read buffer at all.
    static SCRATCH: RefCell<Option<Box<[u8]>>> = const { RefCell::new(None) };
}

/// What one read did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// `n` bytes were handed to the connection; `drained` when fewer than asked for came back,
    /// so the socket is most likely empty now.
    Data { drained: bool },
    /// Nothing to read right now.
    WouldBlock,
    /// The peer closed its side; the connection was told.
    Eof,
    /// The read failed; the connection was told.
    Failed,
}

/// Reads once from `stream` into the thread's scratch buffer and feeds the connection.
pub(crate) fn read_into<P: Protocol>(
    stream: &TcpStream,
    conn: &mut Connection<P>,
    now: Instant,
) -> ReadOutcome {
    // Taken out of the cell rather than borrowed, so a protocol that somehow re-enters this
    // thread's reader during `handle_data` gets a fresh buffer instead of a panic.
    let mut buf = SCRATCH
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_else(|| vec![0; READ_SIZE].into_boxed_slice());
    let outcome = loop {
        match (&*stream).read(&mut buf) {
            Ok(0) => {
                conn.handle_read_closed(now);
                break ReadOutcome::Eof;
            }
            Ok(n) => {
                conn.handle_data(now, buf.get(..n).unwrap_or(&buf));
                break ReadOutcome::Data {
                    drained: n < buf.len(),
                };
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break ReadOutcome::WouldBlock,
            Err(err) => {
                conn.handle_error(now, Reason::from(&err));
                break ReadOutcome::Failed;
            }
        }
    };
    SCRATCH.with(|cell| *cell.borrow_mut() = Some(buf));
    outcome
}

/// What draining unread input did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Discarded {
    /// Read and dropped a bounded amount; there may be more.
    Some,
    /// Nothing to read right now.
    WouldBlock,
    /// The peer's EOF, or an error: the socket can be closed without a reset.
    Done,
}

/// Reads and drops up to 16 reads' worth of input, for a socket that is closing.
pub(crate) fn discard_input(stream: &TcpStream) -> Discarded {
    let mut buf = SCRATCH
        .with(|cell| cell.borrow_mut().take())
        .unwrap_or_else(|| vec![0; READ_SIZE].into_boxed_slice());
    let mut outcome = Discarded::Some;
    for _ in 0..16 {
        match (&*stream).read(&mut buf) {
            Ok(0) => outcome = Discarded::Done,
            Ok(_) => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => outcome = Discarded::WouldBlock,
            Err(_) => outcome = Discarded::Done,
        }
        break;
    }
    SCRATCH.with(|cell| *cell.borrow_mut() = Some(buf));
    outcome
}

/// What one write did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Bytes were written; `full` when the kernel took less than offered (its buffer is full).
    Wrote { full: bool },
    /// The kernel's send buffer is full.
    WouldBlock,
    /// The write failed; the connection was told.
    Failed,
}

/// One vectored write of the connection's queued chunks (at most [`MAX_IOVECS`] of them).
pub(crate) fn write_from<P: Protocol>(
    stream: &TcpStream,
    conn: &mut Connection<P>,
    now: Instant,
) -> WriteOutcome {
    let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
    let mut count = 0;
    let mut offered = 0;
    for (slot, chunk) in slices.iter_mut().zip(conn.write_chunks()) {
        *slot = IoSlice::new(chunk);
        count += 1;
        offered += chunk.len();
    }
    let result = loop {
        match (&*stream).write_vectored(slices.get(..count).unwrap_or(&slices)) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            other => break other,
        }
    };
    match result {
        Ok(n) => {
            conn.handle_written(now, n);
            WriteOutcome::Wrote { full: n < offered }
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => WriteOutcome::WouldBlock,
        Err(err) => {
            conn.handle_error(now, Reason::from(&err));
            WriteOutcome::Failed
        }
    }
}

/// Half-close: no more writes from our side (Twisted TR-5).
pub(crate) fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    match stream.shutdown(Shutdown::Write) {
        // The peer already went away; reading will report how.
        Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// Makes the coming close a reset that discards unsent data (`SO_LINGER` 0, Twisted TR-4).
pub(crate) fn arm_reset(stream: &TcpStream) {
    // Best effort: if the option cannot be set the close is merely graceful.
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// Options every connection gets: Nagle off, since protocols write whole messages.
pub(crate) fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
}
