//! Connection threads that outlive their connection for a while, to serve the next one.
//!
//! Creating a thread costs about fifteen system calls (`clone3`, mapping and protecting the
//! stack, the signal stack, masks, `rseq`, ...) and the page faults of a fresh stack, and
//! ending it as many again: with short connections (a TLS handshake, one request) that is a
//! large share of the work, measured on the handshake row of the benchmark suite. So a thread
//! whose connection has ended waits up to [`KEEP_ALIVE`] for another, and at most
//! [`MAX_IDLE`] threads wait at once; a connection that finds none idle gets a new thread as
//! before. Every thread stays one connection at a time: pooling changes when threads are
//! made, never how a connection runs.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a thread with nothing to do waits for a connection before it exits.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The most threads waiting for a connection at once; the rest exit when their connection
/// ends (each idle thread keeps its stack's touched pages).
pub(crate) const MAX_IDLE: usize = 64;

/// What a thread of the pool runs: one connection, start to end.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Idle threads and the connections handed to them.
pub(crate) struct Pool {
    state: Mutex<State>,
    /// Signalled when a job is queued or the pool stops.
    work: Condvar,
}

struct State {
    /// Jobs handed over and not yet taken: never more than the idle threads.
    queue: VecDeque<Job>,
    idle: usize,
    stopped: bool,
}

impl Pool {
    pub(crate) fn new() -> Self {
        Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                idle: 0,
                stopped: false,
            }),
            work: Condvar::new(),
        }
    }

    /// Gives `job` to an idle thread, or gives it back when none is waiting (the caller then
    /// starts a thread that runs it and [`serve`](Self::serve)s on).
    pub(crate) fn hand_over(&self, job: Job) -> Result<(), Job> {
        let mut state = self.lock();
        if state.stopped || state.idle <= state.queue.len() {
            return Err(job);
        }
        state.queue.push_back(job);
        drop(state);
        self.work.notify_one();
        Ok(())
    }

    /// The body of a pool thread: runs `first`, then whatever is handed over while it waits,
    /// until it has waited [`KEEP_ALIVE`] for nothing, too many others wait, or the pool stops.
    pub(crate) fn serve(&self, first: Job) {
        first();
        while let Some(job) = self.next_job() {
            job();
        }
    }

    /// Waits for the next job, or says it is time to exit.
    fn next_job(&self) -> Option<Job> {
        let mut state = self.lock();
        if state.stopped || state.idle >= MAX_IDLE {
            return None;
        }
        state.idle += 1;
        let deadline = Instant::now() + KEEP_ALIVE;
        let job = loop {
            if let Some(job) = state.queue.pop_front() {
                break Some(job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if state.stopped || left.is_zero() {
                break None;
            }
            state = self
                .work
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        };
        state.idle -= 1;
        job
    }

    /// Stops the pool: idle threads exit now, busy ones when their connection ends, and
    /// nothing more is handed over. Jobs already handed over are still run.
    pub(crate) fn stop(&self) {
        self.lock().stopped = true;
        self.work.notify_all();
    }

    /// How many threads wait for a connection.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> usize {
        self.lock().idle
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::thread;

    fn wait_for_idle(pool: &Pool, n: usize) {
        for _ in 0..500 {
            if pool.idle() == n {
                return;
            }
            thread::sleep(Duration::from_millis(2));
        }
        panic!("{} idle threads, expected {n}", pool.idle());
    }

    #[test]
    fn an_idle_thread_runs_the_next_job_on_the_same_thread() {
        let pool = Arc::new(Pool::new());
        let (tx, rx) = mpsc::channel();
        let first_tx = tx.clone();
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || {
                pool.serve(Box::new(move || {
                    first_tx.send(thread::current().id()).unwrap();
                }))
            })
        };
        let first = rx.recv().unwrap();
        wait_for_idle(&pool, 1);
        let second_tx = tx.clone();
        assert!(pool
            .hand_over(Box::new(move || {
                second_tx.send(thread::current().id()).unwrap();
            }))
            .is_ok());
        assert_eq!(rx.recv().unwrap(), first, "the same thread served both");
        wait_for_idle(&pool, 1);
        pool.stop();
        worker.join().unwrap();
        assert_eq!(pool.idle(), 0);
    }

    #[test]
    fn with_no_idle_thread_the_job_comes_back() {
        let pool = Pool::new();
        let job = pool.hand_over(Box::new(|| {}));
        assert!(job.is_err(), "nobody waits: the caller starts a thread");
    }

    #[test]
    fn one_idle_thread_takes_one_job_and_the_second_comes_back() {
        let pool = Arc::new(Pool::new());
        let (release, hold) = mpsc::channel::<()>();
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.serve(Box::new(|| {})))
        };
        wait_for_idle(&pool, 1);
        let held = Mutex::new(hold);
        assert!(pool
            .hand_over(Box::new(move || {
                let _ = held.lock().unwrap().recv();
            }))
            .is_ok());
        assert!(
            pool.hand_over(Box::new(|| {})).is_err(),
            "the one idle thread is spoken for"
        );
        release.send(()).unwrap();
        pool.stop();
        worker.join().unwrap();
    }

    #[test]
    fn a_stopped_pool_takes_nothing_and_its_idle_threads_exit() {
        let pool = Arc::new(Pool::new());
        let worker = {
            let pool = Arc::clone(&pool);
            thread::spawn(move || pool.serve(Box::new(|| {})))
        };
        wait_for_idle(&pool, 1);
        pool.stop();
        worker.join().unwrap();
        assert!(pool.hand_over(Box::new(|| {})).is_err());
    }
}
