//! "Serve until SIGINT/SIGTERM": the one process-wide stop signal every server waits for.

use std::io;
use std::sync::{Condvar, Mutex, OnceLock};

/// Set once SIGINT or SIGTERM has arrived; the condition variable wakes every waiter.
struct Stop {
    arrived: Mutex<bool>,
    wake: Condvar,
}

static STOP: OnceLock<Result<Stop, String>> = OnceLock::new();

/// Installs the process's SIGINT/SIGTERM handler (once, however often it is called), so that
/// either signal stops [`wait_for_stop_signal`] instead of killing the process.
///
/// Call it before binding when no signal may be missed; otherwise the first
/// [`wait_for_stop_signal`] installs it. It fails if something else in the process already
/// owns the handler (the `ctrlc` crate allows one per process).
pub fn install_stop_signal() -> io::Result<()> {
    let stop = STOP.get_or_init(|| {
        ctrlc::set_handler(|| {
            if let Some(Ok(stop)) = STOP.get() {
                *crate::sync::lock(&stop.arrived) = true;
                stop.wake.notify_all();
            }
        })
        .map(|()| Stop {
            arrived: Mutex::new(false),
            wake: Condvar::new(),
        })
        .map_err(|err| err.to_string())
    });
    match stop {
        Ok(_) => Ok(()),
        Err(err) => Err(io::Error::other(err.clone())),
    }
}

/// Blocks until SIGINT or SIGTERM arrives (at once if one already has), installing the
/// handler first if needed.
pub fn wait_for_stop_signal() -> io::Result<()> {
    install_stop_signal()?;
    let Some(Ok(stop)) = STOP.get() else {
        return Err(io::Error::other("stop signal handler missing"));
    };
    let mut arrived = crate::sync::lock(&stop.arrived);
    while !*arrived {
        arrived = stop.wake.wait(arrived).unwrap_or_else(|e| e.into_inner());
    }
    Ok(())
}
