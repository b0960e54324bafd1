//! The heap an idle connection costs, counted by the allocator itself: the figure behind the
//! README's goal of at most 2 KiB of memory per idle connection, bounded here so that a change
//! that makes every connection bigger fails a test instead of going unseen until a benchmark.
//!
//! A test binary of its own: the counter is process-wide.

mod common;

use std::time::Duration;

use common::{raise_fd_limit, Echo};
use loomwork_net::testing::{idle_heap_per_connection, CountingAllocator};

#[global_allocator]
static HEAP: CountingAllocator = CountingAllocator::new();

/// Bytes of heap per idle connection, at most: 1,657 today, 1,945 before connections shared
/// their `Config`, the task's wait became one hand-written future and the task stopped keeping
/// a second copy of the peer's address. (Resident memory per
/// connection runs higher: glibc's header and rounding on each of the five blocks, and the
/// tables that grow with the count, which the measurement grows beforehand.)
const BOUND: usize = 1_700;

#[test]
fn an_idle_connection_costs_less_than_its_bound_on_the_heap() {
    raise_fd_limit();
    // On smol's global executor, whose threads serve while this thread measures.
    let server = loomwork_smol::listen_tcp("127.0.0.1:0".parse().unwrap(), |_| Echo).unwrap();
    let per_connection = idle_heap_per_connection(&HEAP, server.local_addr(), 1000, || {
        server.connection_count()
    });
    eprintln!("idle connection: {per_connection} bytes of heap (bound {BOUND})");
    assert!(
        per_connection <= BOUND,
        "an idle connection costs {per_connection} bytes of heap"
    );
    smol::block_on(server.shutdown(Duration::from_secs(10)));
}
