//! A global allocator that counts the bytes in use, and the measurement of what an idle
//! connection costs on the heap with it: a figure that, unlike resident memory, does not
//! depend on the allocator's caching or the kernel's page accounting, so tests can bound it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes currently allocated through it (the sizes asked
/// for, without the allocator's own headers and rounding).
///
/// Install it in a test binary of its own (a counter is process-wide, and tests of one binary
/// run in parallel), then compare [`live_bytes`](Self::live_bytes) before and after:
///
/// ```
/// use loomwork_net::testing::CountingAllocator;
///
/// #[global_allocator]
/// static HEAP: CountingAllocator = CountingAllocator::new();
///
/// let before = HEAP.live_bytes();
/// let kept = vec![0u8; 1000];
/// assert!(HEAP.live_bytes() >= before + 1000);
/// drop(kept);
/// ```
#[derive(Debug, Default)]
pub struct CountingAllocator {
    live: AtomicUsize,
}

impl CountingAllocator {
    /// A counter at zero, for a `#[global_allocator]` static.
    pub const fn new() -> Self {
        CountingAllocator {
            live: AtomicUsize::new(0),
        }
    }

    /// Bytes allocated and not yet freed, by every thread of the process.
    pub fn live_bytes(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

// SAFETY: every method hands the call on to `System` unchanged, with the caller's own
// guarantees about `layout` and `ptr`; counting adds no requirement and touches no memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's guarantees for `layout` are `System::alloc`'s.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            self.live.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        self.live.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `System` with `layout`; the caller vouches for `new_size`.
        let moved = unsafe { System.realloc(ptr, layout, new_size) };
        if !moved.is_null() {
            // On failure the old block stays allocated, and counted.
            self.live.fetch_add(new_size, Ordering::Relaxed);
            self.live.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        moved
    }
}

/// The heap each of `count` idle connections to the server at `addr` costs, in bytes, as
/// `heap` counts it; `connections` reports how many connections the server holds. The server
/// runs on threads of its own (the caller's runtime), while this blocks the calling thread.
///
/// First as many connections again, plus a hundred, are opened and closed: the tables that
/// grow with the number of connections (a reactor's, an executor's, a registry's) keep their
/// size, so the measured connections find room already made and the figure is the same from
/// run to run. Each phase waits until the server holds the expected count, then 200 ms more
/// for every connection task to park in its wait. Panics when a connection cannot be made, or
/// when the server has not reached a count within 60 s.
pub fn idle_heap_per_connection(
    heap: &CountingAllocator,
    addr: std::net::SocketAddr,
    count: usize,
    connections: impl Fn() -> usize,
) -> usize {
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let deadline = Instant::now() + Duration::from_secs(60);
    let settle = |want: usize| {
        while connections() != want {
            assert!(
                Instant::now() < deadline,
                "the server holds {} connections, not {want}",
                connections()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let connect = || TcpStream::connect(addr).expect("connect to the server");

    let warm: Vec<TcpStream> = (0..count + 100).map(|_| connect()).collect();
    settle(warm.len());
    drop(warm);
    settle(0);

    let mut idle = Vec::with_capacity(count);
    let before = heap.live_bytes();
    for _ in 0..count {
        idle.push(connect());
    }
    settle(count);
    let per_connection = heap.live_bytes().saturating_sub(before) / count;
    drop(idle);
    per_connection
}
