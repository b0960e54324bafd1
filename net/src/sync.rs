//! Locks and ids the runtimes share.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A fresh connection id, for [`Handle::new`](loomwork::stream::Handle::new): unique across
/// every server and client of this process, whichever runtime drives them (std, smol and tokio
/// all take theirs here, so ids in logs and registries never repeat between runtimes).
pub fn next_connection_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Locks `mutex`, ignoring poisoning: for tables and queues that stay consistent whatever
/// panicked while holding them (each operation is a single insert, remove, push or pop).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::next_connection_id;
    use crate::mailbox;

    #[test]
    fn mailbox_handles_and_other_runtimes_draw_from_one_counter() {
        let (first, _inbox) = mailbox::new_handle::<(), ()>("127.0.0.1:9".parse().unwrap());
        let between = next_connection_id();
        let (second, _inbox) = mailbox::new_handle::<(), ()>("127.0.0.1:9".parse().unwrap());
        assert!(first.id() < between && between < second.id());
    }
}
