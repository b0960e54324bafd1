//! Process-wide settings that tests of socket behaviour need (feature `testing`): restoring
//! `SIGPIPE`'s default action, moving the descriptor limit, and an allocator that counts the
//! heap in use. Here rather than in each test crate so that the project's `unsafe` code stays
//! in one crate.

use std::io;

mod heap;

pub use heap::{idle_heap_per_connection, CountingAllocator};

/// Restores `SIGPIPE`'s default action (terminate the process) in this process.
///
/// Rust ignores `SIGPIPE` in the binaries it builds, which hides a runtime that sends without
/// `MSG_NOSIGNAL`; a C program embedding loomwork does not. Tests that prove no send can kill
/// the process call this in a child process first.
pub fn restore_default_sigpipe() -> io::Result<()> {
    // SAFETY: `signal` with `SIG_DFL` installs no handler, so no Rust code can run in signal
    // context; it only changes the process's disposition, which is the point.
    #[allow(unsafe_code)]
    let previous = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    if previous == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the soft limit on open descriptors (`RLIMIT_NOFILE`), capped at the hard limit;
/// returns the previous soft limit.
pub fn set_descriptor_limit(soft: u64) -> io::Result<u64> {
    let limit = descriptor_limit()?;
    let capped = libc::rlimit {
        rlim_cur: soft.min(limit.rlim_max),
        rlim_max: limit.rlim_max,
    };
    set_limit(&capped)?;
    Ok(limit.rlim_cur)
}

/// Raises the descriptor limit to at least `want` for tests and load tools that open
/// thousands of sockets: the soft limit, and the hard one where the process may (as root);
/// failing that, the soft limit up to the hard one. Returns the soft limit now in force.
pub fn raise_descriptor_limit(want: u64) -> io::Result<u64> {
    let limit = descriptor_limit()?;
    if limit.rlim_cur >= want {
        return Ok(limit.rlim_cur);
    }
    let raised = libc::rlimit {
        rlim_cur: want,
        rlim_max: want.max(limit.rlim_max),
    };
    if set_limit(&raised).is_ok() {
        return Ok(want);
    }
    let soft = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    set_limit(&soft)?;
    Ok(limit.rlim_max)
}

fn descriptor_limit() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes only into the `rlimit` it is given, a valid local.
    #[allow(unsafe_code)]
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

fn set_limit(limit: &libc::rlimit) -> io::Result<()> {
    // SAFETY: `setrlimit` only reads the `rlimit` it is given, a valid reference.
    #[allow(unsafe_code)]
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
