//! The heap an idle connection costs, counted by the allocator itself: the figure behind the
//! README's goal of at most 2 KiB of memory per idle connection, bounded here so that a change
//! that makes every connection bigger fails a test instead of going unseen until a benchmark.
//!
//! A test binary of its own: the counter is process-wide.

mod common;

use std::time::Duration;

use common::{multi_thread, raise_fd_limit, Echo};
use loomwork_net::testing::{idle_heap_per_connection, CountingAllocator};

#[global_allocator]
static HEAP: CountingAllocator = CountingAllocator::new();

/// Bytes of heap per idle connection, at most: 1,632 today, 1,736 before connections shared
/// their `Config` and the task stopped keeping a second copy of the peer's address. (Resident memory per connection runs higher: the allocator's header and
/// rounding on each block, and the tables that grow with the count, which the measurement
/// grows beforehand.)
const BOUND: usize = 1_680;

#[test]
fn an_idle_connection_costs_less_than_its_bound_on_the_heap() {
    raise_fd_limit();
    // The runtime's workers serve while this thread measures.
    let rt = multi_thread();
    let server = {
        let _inside = rt.enter();
        loomwork_tokio::listen_tcp("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap()
    };
    let per_connection = idle_heap_per_connection(&HEAP, server.local_addr(), 1000, || {
        server.connection_count()
    });
    eprintln!("idle connection: {per_connection} bytes of heap (bound {BOUND})");
    assert!(
        per_connection <= BOUND,
        "an idle connection costs {per_connection} bytes of heap"
    );
    rt.block_on(server.shutdown(Duration::from_secs(10)));
}
