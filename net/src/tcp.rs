//! What a runtime does to a connected TCP socket: set it up, read, send, half-close, reset.
//!
//! Each operation feeds its outcome to the [`Connection`] itself (data, end of stream, the
//! error as a [`Reason`](loomwork::Reason)) and tells the runtime only what it needs for waiting: whether the
//! socket is drained or full. Both runtimes therefore treat every outcome alike; they differ
//! only in how they wait for readiness.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use loomwork::stream::{Connection, Protocol};
use loomwork::Instant;
use socket2::SockRef;

use crate::reason_from_io;

/// Bytes asked for per read at most (Twisted DF-9: one `recv(65536)` per readable event).
pub const READ_SIZE: usize = 64 * 1024;
/// Spare room below which a connection's receive buffer grows by [`READ_SIZE`] before a read;
/// above it, the read goes into the room there is (what a protocol left after splitting
/// frames off).
const MIN_READ: usize = 8 * 1024;
/// Write-queue chunks handed to one vectored send (well under every platform's `IOV_MAX`).
pub const MAX_IOSLICES: usize = 64;

/// `MSG_NOSIGNAL` on every Unix but Apple's: a send to a reset peer must be an `EPIPE` error
/// for this connection, never a `SIGPIPE` that kills the whole process (Rust ignores SIGPIPE in
/// the binaries it builds, but not when loomwork is embedded in a C program or a process that
/// restored the default action). Apple systems have no such flag and get `SO_NOSIGPIPE` from
/// [`prepare`] instead.
#[cfg(all(unix, not(target_vendor = "apple")))]
const SEND_FLAGS: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(not(all(unix, not(target_vendor = "apple"))))]
const SEND_FLAGS: libc::c_int = 0;

/// Sets up an accepted or dialed socket for a runtime: non-blocking, no `SIGPIPE`, Nagle off.
///
/// Non-blocking mode and `SO_NOSIGPIPE` (Apple) are required, so their failure is an error
/// and the connection should not start. `TCP_NODELAY` is best effort: protocols write whole
/// messages, so Nagle's algorithm only adds latency, but a socket that keeps it still works
/// correctly, and refusing a connection over a latency option would be worse.
pub fn prepare(stream: &TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    prepare_accepted(stream)
}

/// [`prepare`] for a socket that is non-blocking already (from
/// [`listen::accept`](crate::listen::accept)).
pub(crate) fn prepare_accepted(stream: &TcpStream) -> io::Result<()> {
    forbid_sigpipe(stream)?;
    let _ = stream.set_nodelay(true);
    Ok(())
}

#[cfg(target_vendor = "apple")]
fn forbid_sigpipe(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_nosigpipe(true)
}

#[cfg(not(target_vendor = "apple"))]
fn forbid_sigpipe(_: &TcpStream) -> io::Result<()> {
    // `MSG_NOSIGNAL` on every send does it (see `SEND_FLAGS`).
    Ok(())
}

/// What one read did; the connection has already been told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Bytes were handed to the connection; `drained` when fewer came back than were asked
    /// for, so the kernel's buffer is most likely empty now (and a level-triggered wait will
    /// report anything that arrives later).
    Data {
        /// Fewer bytes than asked for: wait for readiness before reading again.
        drained: bool,
    },
    /// Nothing to read right now.
    WouldBlock,
    /// The peer closed its side: the connection got `handle_read_closed`.
    Eof,
    /// The read failed: the connection got `handle_error` with the reason.
    Failed,
}

/// Reads once from `stream` straight into the connection's receive buffer (no copy); the
/// strategy loomwork-std chose by benchmark, where each connection has a thread and a buffer.
pub fn read_into_buffer<P: Protocol>(
    stream: &TcpStream,
    conn: &mut Connection<P>,
    now: Instant,
) -> ReadOutcome {
    loop {
        match conn.handle_data_with(now, |buf| recv_into(stream, buf)) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return settle_read(result, conn, now),
        }
    }
}

/// Spare read buffers kept per thread for [`read_pooled`]: enough for the connections one thread
/// drives between two waits (a relay's two legs, a few busy peers), few enough that a thread
/// never holds more than a quarter MiB of them.
const POOLED_BUFFERS: usize = 4;

thread_local! {
    /// Read storage given up by this thread's waiting connections ([`release_buffer`]) and lent
    /// to whichever connection on the thread reads next ([`read_pooled`]).
    static POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// Reads once from `stream` straight into the connection's receive buffer, as
/// [`read_into_buffer`] does, but with storage lent by the thread's pool when the connection
/// holds none: the strategy of loomwork-smol and loomwork-tokio, whose threads drive thousands
/// of mostly idle connections. Call [`release_buffer`] before the connection waits.
///
/// No copy happens in user space (a relay's chunk goes from the socket to the other leg's
/// queue as is), waiting connections hold no read buffer, and busy ones reuse the pool's few
/// buffers: once the chunks read into one have been written and dropped, its storage is
/// reclaimed in place instead of allocated anew.
pub fn read_pooled<P: Protocol>(
    stream: &TcpStream,
    conn: &mut Connection<P>,
    now: Instant,
) -> ReadOutcome {
    loop {
        let read = conn.handle_data_with(now, |buf| {
            if buf.is_empty() && buf.capacity() < MIN_READ {
                // Empty, so replacing it appends nothing and loses nothing.
                if let Some(lent) = POOL.with(|pool| pool.borrow_mut().pop()) {
                    *buf = lent;
                }
            }
            recv_into(stream, buf)
        });
        match read {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return settle_read(result, conn, now),
        }
    }
}

/// Gives the connection's spare receive storage to the thread's pool
/// ([`Connection::poll_spare_buffer`]), for the next [`read_pooled`] on this thread; call it
/// before the connection waits. Storage the pool has no room for, or that is still shared with
/// chunks in flight and too small to read into, is dropped.
pub fn release_buffer<P: Protocol>(conn: &mut Connection<P>) {
    let Some(mut spare) = conn.poll_spare_buffer() else {
        return;
    };
    if spare.capacity() < MIN_READ && !spare.try_reclaim(READ_SIZE) {
        return;
    }
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_BUFFERS {
            pool.push(spare);
        }
    });
}

/// Tells the connection what a read came to, unless the data is already delivered.
fn settle_read<P: Protocol>(
    result: io::Result<(usize, usize)>,
    conn: &mut Connection<P>,
    now: Instant,
) -> ReadOutcome {
    match result {
        Ok((0, _)) => {
            conn.handle_read_closed(now);
            ReadOutcome::Eof
        }
        Ok((n, offered)) => ReadOutcome::Data {
            drained: n < offered,
        },
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
        Err(err) => {
            conn.handle_error(now, reason_from_io(&err));
            ReadOutcome::Failed
        }
    }
}

/// Receives into the spare capacity of `buf`, growing it first when little is left. Returns the
/// bytes received and the room offered, so that a short read can be told from a full one.
#[allow(unsafe_code)]
fn recv_into(stream: &TcpStream, buf: &mut BytesMut) -> io::Result<(usize, usize)> {
    if buf.capacity() - buf.len() < MIN_READ {
        buf.reserve(READ_SIZE);
    }
    let spare = buf.spare_capacity_mut();
    let offered = spare.len().min(READ_SIZE);
    let n = SockRef::from(stream).recv(spare.get_mut(..offered).unwrap_or_default())?;
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity it was given
    // (socket2 guarantees `n` never exceeds the slice), so they are initialised bytes that can
    // join the buffer's contents.
    unsafe { buf.set_len(buf.len() + n) };
    Ok((n, offered))
}

/// What one send did; the connection has already been told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Bytes were sent; `full` when the kernel took less than offered (its buffer is full, so
    /// wait for writability before sending again).
    Wrote {
        /// The kernel took less than offered.
        full: bool,
    },
    /// The kernel's send buffer is full.
    WouldBlock,
    /// The send failed: the connection got `handle_error` with the reason.
    Failed,
}

/// One vectored send of the connection's queued chunks (at most [`MAX_IOSLICES`] of them),
/// never raising `SIGPIPE`: a peer that reset makes this connection fail with
/// [`Reason::Reset`](loomwork::Reason::Reset), and nothing else happens to the process.
pub fn send_queued<P: Protocol>(
    stream: &TcpStream,
    conn: &mut Connection<P>,
    now: Instant,
) -> WriteOutcome {
    let mut slices = [IoSlice::new(&[]); MAX_IOSLICES];
    let mut count = 0;
    let mut offered = 0;
    for (slot, chunk) in slices.iter_mut().zip(conn.poll_write()) {
        *slot = IoSlice::new(chunk);
        count += 1;
        offered += chunk.len();
    }
    let slices = slices.get(..count).unwrap_or_default();
    let result = loop {
        match SockRef::from(stream).send_vectored_with_flags(slices, SEND_FLAGS) {
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
            conn.handle_error(now, reason_from_io(&err));
            WriteOutcome::Failed
        }
    }
}

/// Half-closes: no more writes from our side (Twisted TR-5).
///
/// `ENOTCONN` counts as success, "already shut": it means the peer is gone (it reset, or both
/// directions are already closed), so our side can send nothing anyway, which is what the
/// half-close asked for. How the peer left is the read side's news: the next read reports the
/// reset or the end of stream, and the connection ends with that reason, the same on every
/// runtime, instead of with a misleading "not connected" from a call that did its job.
pub fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    match stream.shutdown(Shutdown::Write) {
        Err(err) if err.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

/// Makes the coming close a reset that discards unsent data (`SO_LINGER` 0, Twisted TR-4).
///
/// Best effort: if the option cannot be set the close is merely graceful, and the connection
/// is over either way.
pub fn arm_reset(stream: &TcpStream) {
    let _ = SockRef::from(stream).set_linger(Some(Duration::ZERO));
}
