//! Memory per idle connection: opens thousands of silent connections and prints the resident
//! memory they cost the server (a figure to watch, not a timed or sized assertion: allocator
//! behaviour varies). The assertion is only that every connection is served.

mod common;

use std::time::Duration;

use common::{any_port, bounded, raise_fd_limit, Echo};
use loomwork_smol::listen_tcp;

/// Resident set size of this process, in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn idle_connections_cost_little_memory() {
    raise_fd_limit();
    const IDLE: usize = 5000;
    bounded(async {
        let server = listen_tcp(any_port(), |_| Echo).unwrap();
        let addr = server.local_addr();
        // Warm up: thread-local read buffers, reactor tables, executor queues.
        let warm: Vec<_> = (0..200)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        while server.connection_count() < warm.len() {
            smol::Timer::after(Duration::from_millis(1)).await;
        }
        let before = rss();
        let mut idle = Vec::with_capacity(IDLE);
        for _ in 0..IDLE {
            idle.push(std::net::TcpStream::connect(addr).unwrap());
        }
        while server.connection_count() < IDLE + warm.len() {
            smol::Timer::after(Duration::from_millis(5)).await;
        }
        let after = rss();
        let per_connection = after.saturating_sub(before) / IDLE;
        eprintln!(
            "{IDLE} idle connections: RSS {} KiB -> {} KiB, {per_connection} bytes per connection",
            before / 1024,
            after / 1024
        );
        drop(idle);
        drop(warm);
        server.shutdown(Duration::from_secs(10)).await;
    });
}
