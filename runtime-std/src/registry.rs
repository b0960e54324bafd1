//! The server's list of live connections and of the threads that run them.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use loomwork::stream::Handle;

use crate::pool::Pool;

/// Live connections (by id) and every connection thread not yet joined.
///
/// Connection threads remove themselves when they end and wake anyone waiting for the server to
/// drain. Join handles of finished threads are reaped as new ones arrive, so a long-running
/// server does not accumulate them.
pub(crate) struct Registry<M> {
    state: Mutex<State<M>>,
    departed: Condvar,
    /// Connection threads waiting for the next connection.
    pub(crate) pool: Pool,
}

struct State<M> {
    live: HashMap<u64, Handle<M>>,
    threads: Vec<JoinHandle<()>>,
}

impl<M> Registry<M> {
    pub(crate) fn new() -> Self {
        Registry {
            state: Mutex::new(State {
                live: HashMap::new(),
                threads: Vec::new(),
            }),
            departed: Condvar::new(),
            pool: Pool::new(),
        }
    }

    /// Records a connection about to start.
    pub(crate) fn arrive(&self, handle: Handle<M>) {
        self.lock().live.insert(handle.id(), handle);
    }

    /// Records that connection `id` has ended.
    pub(crate) fn depart(&self, id: u64) {
        self.lock().live.remove(&id);
        self.departed.notify_all();
    }

    /// Keeps `thread` for joining at shutdown, first joining threads that have already finished.
    pub(crate) fn keep_thread(&self, thread: JoinHandle<()>) {
        let finished = {
            let mut state = self.lock();
            let mut finished = Vec::new();
            // Amortised O(1): scan only once the list has doubled past the live count.
            if state.threads.len() >= 2 * state.live.len() + 16 {
                let (done, running) = std::mem::take(&mut state.threads)
                    .into_iter()
                    .partition(|thread| thread.is_finished());
                state.threads = running;
                finished = done;
            }
            state.threads.push(thread);
            finished
        };
        for thread in finished {
            let _ = thread.join();
        }
    }

    /// Handles of the live connections.
    pub(crate) fn handles(&self) -> Vec<Handle<M>> {
        self.lock().live.values().cloned().collect()
    }

    /// How many connections are live.
    pub(crate) fn count(&self) -> usize {
        self.lock().live.len()
    }

    /// Waits until no connection is live or `deadline` passes; returns the ones still live.
    pub(crate) fn wait_until_empty(&self, deadline: Instant) -> Vec<Handle<M>> {
        let mut state = self.lock();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if state.live.is_empty() || left.is_zero() {
                return state.live.values().cloned().collect();
            }
            state = self
                .departed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Takes every thread handle kept so far, for joining.
    pub(crate) fn take_threads(&self) -> Vec<JoinHandle<()>> {
        std::mem::take(&mut self.lock().threads)
    }

    fn lock(&self) -> MutexGuard<'_, State<M>> {
        // Every critical section leaves the maps consistent; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
