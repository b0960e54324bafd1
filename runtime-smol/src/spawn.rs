//! Where tasks run: smol's global executor, a user's `Executor`, or a `LocalExecutor`.
//!
//! Send-ness is the one real difference between executors, and Rust cannot make a single trait
//! method require `Send` for some implementors only. So there are two small traits:
//! [`Spawner`] for executors that may move tasks between threads (protocols must be `Send`) and
//! [`LocalSpawner`] for a thread's own executor (protocols may hold `Rc`s). The `listen_tcp_*`
//! and `connect_tcp_*` functions come in a flavour for each.

use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

use async_executor::{Executor, LocalExecutor, Task};

/// An executor that runs `Send` tasks: [`GlobalExecutor`] or an `Arc<Executor>`.
///
/// ```
/// use std::sync::Arc;
/// use async_executor::Executor;
/// use loomwork_smol::Spawner;
///
/// let ex = Arc::new(Executor::new());
/// let task = Spawner::spawn(&ex, async { 1 + 1 });
/// assert_eq!(futures_lite::future::block_on(ex.run(task)), 2);
/// ```
pub trait Spawner: Clone + Send + Sync + 'static {
    /// Spawns `future`; dropping the returned task cancels it.
    fn spawn<T: Send + 'static>(&self, future: impl Future<Output = T> + Send + 'static)
        -> Task<T>;
}

/// An executor bound to one thread, for tasks that are not `Send`: an `Rc<LocalExecutor>`.
///
/// ```
/// use std::rc::Rc;
/// use async_executor::LocalExecutor;
/// use loomwork_smol::LocalSpawner;
///
/// let ex = Rc::new(LocalExecutor::new());
/// let shared = Rc::new(41); // not Send
/// let task = ex.spawn_local(async move { *shared + 1 });
/// assert_eq!(futures_lite::future::block_on(ex.run(task)), 42);
/// ```
pub trait LocalSpawner: Clone + 'static {
    /// Spawns `future` on this thread's executor; dropping the returned task cancels it.
    fn spawn_local<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Task<T>;
}

/// smol's global executor (`smol::spawn`): the default of [`listen_tcp`](crate::listen_tcp) and
/// [`connect_tcp`](crate::connect_tcp). It runs on `SMOL_THREADS` threads (default 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalExecutor;

impl Spawner for GlobalExecutor {
    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        smol::spawn(future)
    }
}

impl Spawner for Arc<Executor<'static>> {
    fn spawn<T: Send + 'static>(
        &self,
        future: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        Executor::spawn(self, future)
    }
}

impl LocalSpawner for Rc<LocalExecutor<'static>> {
    fn spawn_local<T: 'static>(&self, future: impl Future<Output = T> + 'static) -> Task<T> {
        LocalExecutor::spawn(self, future)
    }
}
