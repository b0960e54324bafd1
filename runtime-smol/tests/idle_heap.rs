//! The heap an idle connection costs, counted by the allocator itself: the figure behind the
//! README's goal of at most 2 KiB of memory per idle connection, bounded here so that a change
//! that makes every connection bigger fails a test instead of going unseen until a benchmark.
//!
//! A test binary of its own: the counter is process-wide.

mod common;

use std::time::Duration;

use common::{any_port, bounded, raise_fd_limit, Echo};
use loomwork_net::testing::CountingAllocator;
use loomwork_smol::listen_tcp;

#[global_allocator]
static HEAP: CountingAllocator = CountingAllocator::new();

/// Bytes of heap per idle connection, at most: 1,689 today, 1,945 before connections shared
/// their `Config` and the task's wait became one hand-written future. (Resident memory per
/// connection runs higher: glibc's header and rounding on each of the five blocks, and the
/// tables that grow with the count, which this test grows beforehand.)
const BOUND: usize = 1_750;

#[test]
fn an_idle_connection_costs_less_than_its_bound_on_the_heap() {
    raise_fd_limit();
    const IDLE: usize = 1000;
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let addr = server.local_addr();
        let settle = |count: usize| {
            let server = &server;
            async move {
                while server.connection_count() != count {
                    smol::Timer::after(Duration::from_millis(2)).await;
                }
                // Until each task has parked in its wait (the count is kept when accepting).
                smol::Timer::after(Duration::from_millis(200)).await;
            }
        };
        // First as many connections again, closed: the tables that grow with the number of
        // connections (the reactor's, the executor's, the registry's) keep their size, so the
        // measured ones find room already made.
        let warm: Vec<_> = (0..IDLE + 100)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        settle(warm.len()).await;
        drop(warm);
        settle(0).await;

        let mut idle = Vec::with_capacity(IDLE);
        let before = HEAP.live_bytes();
        for _ in 0..IDLE {
            idle.push(std::net::TcpStream::connect(addr).unwrap());
        }
        settle(IDLE).await;
        let per_connection = HEAP.live_bytes().saturating_sub(before) / IDLE;
        eprintln!("{IDLE} idle connections: {per_connection} bytes of heap each (bound {BOUND})");
        assert!(
            per_connection <= BOUND,
            "an idle connection costs {per_connection} bytes of heap"
        );
        drop(idle);
        server.shutdown(Duration::from_secs(10)).await;
    });
}
