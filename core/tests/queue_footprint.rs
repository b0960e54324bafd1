//! The write queue's account bounds its real footprint (docs/architecture.md §7, issue 12):
//! an allocator that counts this thread's live bytes checks `queued_memory` against what the
//! queue really holds, for arbitrary mixes of writes, and for a million 100-byte writes to a
//! peer that never reads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use loomwork::bytes::{Bytes, BytesMut};
use loomwork::stream::{Config, Connection, Protocol, Transport};
use loomwork::Instant;
use proptest::prelude::*;

/// Counts the live bytes each thread allocated (and freed), so tests running in parallel do
/// not see each other's allocations.
struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: during thread teardown the slot may be gone; nothing to count then.
    let _ = LIVE.try_with(|live| live.set(live.get() + n));
}

// SAFETY: delegates every call to `System` unchanged and only counts sizes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        // SAFETY: same layout, passed on as it came.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        // SAFETY: `ptr` came from `System` with `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> isize {
    LIVE.with(Cell::get)
}

/// One step of a protocol that writes what it is told.
#[derive(Clone, Debug)]
enum Op {
    /// `write` of a fresh buffer of this size (the queue owns it afterwards).
    Write(usize),
    /// `write_slice` of this many bytes.
    Slice(usize),
    /// `write_shared` of a clone of one of the long-lived shared frames.
    Shared(usize),
    /// The peer took this many bytes.
    Written(usize),
}

/// Writes whatever `message` says; never reads.
struct Writer {
    frames: Vec<Bytes>,
    refused: usize,
}

impl Protocol for Writer {
    type Message = Op;
    fn data_received(&mut self, data: &mut BytesMut, _: &mut Transport<'_, Op>) {
        data.clear();
    }
    fn message(&mut self, op: Op, tx: &mut Transport<'_, Op>) {
        let result = match op {
            Op::Write(n) => tx.write(vec![7u8; n]),
            Op::Slice(n) => tx.write_slice(&[9u8; 2048][..n]),
            Op::Shared(i) => tx.write_shared(self.frames[i % self.frames.len()].clone()),
            Op::Written(_) => Ok(()),
        };
        if result.is_err() {
            self.refused += 1;
        }
    }
}

fn connection(max_queued: usize, frames: Vec<Bytes>) -> Connection<Writer> {
    let config = Config {
        max_queued: Some(max_queued),
        ..Config::default()
    };
    let mut conn = Connection::new(Writer { frames, refused: 0 }, config);
    let addr = "127.0.0.1:9".parse().unwrap();
    conn.handle_connected(Instant::ZERO, addr, addr);
    conn
}

/// The slack the account leaves out by design (see `stream::Config`): two blocks (the one
/// being filled, and the one being written out, whose written part is no longer charged but
/// stays allocated while a later part of it is queued), and the sixteen slots of entry list a
/// drained queue keeps (40 bytes each).
const SLACK: isize = 2 * 16 * 1024 + 16 * 40;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..3000).prop_map(Op::Write),
        (0usize..2048).prop_map(Op::Slice),
        (0usize..8).prop_map(Op::Shared),
        (0usize..20_000).prop_map(Op::Written),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the writes, the bytes this connection holds beyond its empty self never exceed
    /// its account plus one block.
    #[test]
    fn the_account_bounds_the_real_footprint(ops in proptest::collection::vec(op(), 1..400)) {
        let frames: Vec<Bytes> = (0..8).map(|i| Bytes::from(vec![i as u8; 100 + 37 * i])).collect();
        // Cloning a `Bytes` the first time gives it a shared header: the frames' own cost,
        // paid once before counting starts, as a broadcaster pays it.
        drop(frames.clone());
        let mut conn = connection(256 * 1024, frames);
        let base = live();
        for op in ops {
            if let Op::Written(n) = op {
                let n = n.min(conn.queued_bytes());
                conn.handle_written(Instant::ZERO, n);
            } else {
                conn.handle_message(Instant::ZERO, op);
            }
            let held = live() - base;
            let account = conn.queued_memory() as isize;
            prop_assert!(
                held <= account + SLACK,
                "holds {held} B, accounted {account} B"
            );
            prop_assert!(conn.queued_memory() <= 256 * 1024);
        }
    }
}

/// A million 100-byte writes to a peer that never reads: refused at the cap, with the
/// connection holding at most 1.25 times the cap (it used to hold twice the cap).
#[test]
fn a_million_small_writes_stop_at_the_cap_within_a_quarter_over() {
    const CAP: usize = 16 * 1024 * 1024;
    let mut conn = connection(CAP, vec![Bytes::new()]);
    let base = live();
    let mut peak = 0isize;
    for _ in 0..1_000_000 {
        conn.handle_message(Instant::ZERO, Op::Write(100));
        peak = peak.max(live() - base);
    }
    let accepted = conn.queued_bytes() / 100;
    assert!(conn.protocol().refused > 0, "the cap was reached");
    assert_eq!(accepted + conn.protocol().refused, 1_000_000);
    assert!(conn.queued_memory() <= CAP);
    // The payload fills the cap but for the blocks' overhead (well under 2 %).
    assert!(
        conn.queued_bytes() >= CAP / 100 * 98,
        "{accepted} writes accepted"
    );
    assert!(
        peak <= CAP as isize * 5 / 4,
        "peak {peak} B for a cap of {CAP} B"
    );
    eprintln!(
        "1e6 x 100 B writes: {accepted} accepted, {} refused, queue account {} B, peak held {peak} B, cap {CAP} B ({:.3}x)",
        conn.protocol().refused,
        conn.queued_memory(),
        peak as f64 / CAP as f64
    );
}
