//! The outgoing byte queue: `Bytes` chunks kept as they are for vectored writes, small writes
//! coalesced so a chatty protocol does not turn every 20-byte reply into its own iovec, and an
//! account of what the queue really holds in memory, so that the cap bounds memory, not just
//! payload (docs/architecture.md §7).
//!
//! # The account
//! Each entry of the chunk list is charged its bytes plus [`ENTRY_OVERHEAD`] (the entry itself,
//! the list's spare slots, the shared buffer's header and the allocator's own bookkeeping).
//! Small writes are copied into a tail block whose capacity is sized to the backlog (at most
//! [`MAX_BLOCK`]): a full block is sealed into the chunk list and charged its whole allocation,
//! including the few bytes at its end that the next write did not fit in. The open tail is
//! charged its bytes plus one entry overhead. What is not charged: the tail block's spare capacity
//! (at most one block, `MAX_BLOCK`), and the written part of the block being written out, whose
//! earlier entries are gone while a later one still holds the block (at most one more block);
//! an entry's own written bytes stay charged until the entry is gone. So the real footprint is
//! at most the account plus two blocks, whatever the mix of writes; `core/tests/queue_footprint.rs`
//! checks it against an allocator that counts.

use alloc::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Writes up to this size are copied into the tail block instead of queued on their own. Small
/// enough that a 1 KiB frame sliced off the receive buffer is queued without a copy (the framed
/// 1 KiB echo lost 10–25 % when the limit was 1 KiB), large enough that the small replies and
/// chat lines whose per-entry cost this bounds (a million 100-byte writes stay within 1.25x of
/// the cap, `core/tests/queue_footprint.rs`) are copied.
const COALESCE_LIMIT: usize = 256;

/// What one entry of the queue costs beyond its bytes: its slot in the list (40 bytes, and up to
/// as much again in spare slots since the list doubles), a shared buffer's reference-count
/// header and the allocator's per-allocation overhead. Charging it makes ten thousand 1-byte
/// entries cost what they really cost instead of 10 KB.
pub(crate) const ENTRY_OVERHEAD: usize = 128;

/// The largest tail block. Blocks start small and grow with the backlog, so a connection that
/// writes a few small replies never pins a large buffer, and one with a deep backlog pays one
/// allocation per 16 KiB of small writes.
pub(crate) const MAX_BLOCK: usize = 16 * 1024;

/// The smallest tail block.
const MIN_BLOCK: usize = 256;

/// The capacity of a new tail block for a write of `len` bytes behind `queued` bytes: grows
/// with the backlog, from [`MIN_BLOCK`] to [`MAX_BLOCK`], and always fits the write.
fn block_size(queued: usize, len: usize) -> usize {
    queued
        .saturating_add(len)
        .checked_next_power_of_two()
        .unwrap_or(MAX_BLOCK)
        .clamp(MIN_BLOCK, MAX_BLOCK)
        .max(len)
}

/// The tail's shape, to work out what a sequence of writes would cost without queuing them
/// (mirrors `push_slice`, `new_block` and `seal_tail`).
struct TailSim {
    front: usize,
    len: usize,
    spare: usize,
    queued: usize,
    /// The backlog a new block is sized for at least (`WriteQueue::recent_backlog`).
    recent: usize,
}

impl TailSim {
    fn push(&mut self, len: usize, copy: bool) -> usize {
        if len == 0 {
            return 0;
        }
        self.queued = self.queued.saturating_add(len);
        if !copy {
            // `seal_tail`: the tail's bytes move to an entry charged what they were charged,
            // plus the written front; its spare room stays with the tail.
            let front = if self.len == 0 { 0 } else { self.front };
            if self.len != 0 {
                self.front = 0;
            }
            self.len = 0;
            return front + len + ENTRY_OVERHEAD;
        }
        let opens = if self.len == 0 { ENTRY_OVERHEAD } else { 0 };
        if self.spare >= len {
            self.len += len;
            self.spare -= len;
            return len + opens;
        }
        // `new_block`: a full block is sealed with its written front and unused end charged
        // to it.
        let sealed_waste = if self.len == 0 {
            0
        } else {
            self.front + self.spare
        };
        let size = block_size((self.queued - len).max(self.recent), len);
        self.front = 0;
        self.len = len;
        self.spare = size - len;
        sealed_waste + len + ENTRY_OVERHEAD
    }
}

/// One queued buffer and what it is charged.
#[derive(Debug)]
struct Entry {
    data: Bytes,
    /// Its bytes when queued (written bytes stay charged until the entry goes: the buffer is
    /// freed only then), plus [`ENTRY_OVERHEAD`], plus a sealed block's unused end.
    charge: usize,
}

/// Ordered queue of outgoing bytes.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Entry>,
    /// Small writes accumulate here; it is always logically after every entry of `chunks`.
    tail: BytesMut,
    /// Payload bytes queued and not yet written.
    queued: usize,
    /// Sum of the entries' charges (the tail's is computed, see [`WriteQueue::footprint`]).
    charged: usize,
    /// Bytes written off the front of the tail since it last started: they stay allocated in
    /// its block, so they are charged to the entry the tail is sealed into.
    tail_front: usize,
    /// The capacity the tail block was created with.
    block: usize,
    /// The largest backlog since the queue last drained.
    peak: usize,
    /// The largest backlog of the previous busy spell: the first block of the next one is
    /// sized for it, so a connection that writes a burst every turn (a pipelined echo) opens
    /// one full-size block per turn instead of growing one from the smallest size each time.
    recent_backlog: usize,
}

impl WriteQueue {
    /// Payload bytes queued.
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// What the queue is charged with: the figure the cap and the water marks compare with.
    pub(crate) fn footprint(&self) -> usize {
        self.charged + self.tail_charge()
    }

    fn tail_charge(&self) -> usize {
        if self.tail.is_empty() {
            0
        } else {
            self.tail.len() + ENTRY_OVERHEAD
        }
    }

    /// True when a `Bytes` write of `len` bytes is copied into the tail rather than queued
    /// as its own entry.
    pub(crate) fn coalesces(len: usize) -> bool {
        len <= COALESCE_LIMIT
    }

    /// A cheap upper bound of [`cost`](Self::cost), whether copied or not: a write adds its
    /// bytes, at most two entry overheads (its own, and the tail's when it seals it) and, when
    /// it seals the tail, what the tail's block holds already written or leaves unused (at most
    /// its written front plus its capacity). Far from the cap this answers the check without
    /// simulating the tail.
    pub(crate) fn cost_bound(&self, len: usize) -> usize {
        len.saturating_add(2 * ENTRY_OVERHEAD)
            .saturating_add(self.tail_front)
            .saturating_add(self.tail.capacity())
    }

    /// A cheap upper bound of [`cost_of_all`](Self::cost_of_all): besides what the current
    /// tail's block may leave behind (as in [`cost_bound`](Self::cost_bound)), each part adds
    /// its bytes, two entry overheads, and the capacity of a block it may open and a later part
    /// seal (at most [`MAX_BLOCK`], or its own size).
    pub(crate) fn cost_bound_all(&self, parts: &[(usize, bool)]) -> usize {
        parts.iter().fold(
            self.tail_front.saturating_add(self.tail.capacity()),
            |sum, &(len, _)| {
                sum.saturating_add(len)
                    .saturating_add(2 * ENTRY_OVERHEAD)
                    .saturating_add(MAX_BLOCK.max(len))
            },
        )
    }

    /// By how much [`footprint`](Self::footprint) grows if `len` bytes are queued: copied into
    /// the tail when `copy`, else as an entry of their own. Exact, so a write refused at the
    /// cap is refused before anything is queued and an accepted one never exceeds it.
    pub(crate) fn cost(&self, len: usize, copy: bool) -> usize {
        self.sim().push(len, copy)
    }

    /// What queuing `parts` one after the other (`(len, copy)` as for [`cost`](Self::cost))
    /// adds to the footprint, for writes that must be accepted or refused together.
    pub(crate) fn cost_of_all(&self, parts: &[(usize, bool)]) -> usize {
        let mut sim = self.sim();
        parts.iter().fold(0usize, |sum, &(len, copy)| {
            sum.saturating_add(sim.push(len, copy))
        })
    }

    fn sim(&self) -> TailSim {
        TailSim {
            front: self.tail_front,
            len: self.tail.len(),
            spare: self.tail.capacity() - self.tail.len(),
            queued: self.queued,
            recent: self.recent_backlog,
        }
    }

    /// The cost of [`push`](Self::push)ing `data`.
    pub(crate) fn cost_of(&self, data: &Bytes) -> usize {
        self.cost(data.len(), Self::coalesces(data.len()))
    }

    /// Queues `data`: small writes are copied into the tail, larger ones queued as they are.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if Self::coalesces(data.len()) {
            self.push_slice(&data);
        } else {
            self.push_entry(data);
        }
    }

    /// Queues `data` as an entry of its own, never copying it (a buffer shared among many
    /// connections, a large chunk).
    pub(crate) fn push_entry(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.seal_tail();
        self.queued += data.len();
        self.peak = self.peak.max(self.queued);
        let charge = data.len() + ENTRY_OVERHEAD;
        self.charged += charge;
        self.chunks.push_back(Entry { data, charge });
    }

    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // A slice must be copied anyway; copying it into the tail costs no more than into a
        // chunk of its own and keeps the iovec count down.
        let spare = self.tail.capacity() - self.tail.len();
        if spare < data.len() {
            self.new_block(data.len());
        }
        self.queued += data.len();
        self.peak = self.peak.max(self.queued);
        self.tail.extend_from_slice(data);
    }

    /// Replaces a tail block that has no room for `len` more bytes with a fresh one. Done by
    /// hand rather than by `BytesMut`'s growth, which doubles (and copies) one buffer: that is
    /// what let 16 MiB of small writes hold 32 MiB.
    fn new_block(&mut self, len: usize) {
        if !self.tail.is_empty() {
            let spare = self.tail.capacity() - self.tail.len();
            let data = self.tail.split().freeze();
            // The block's written front and unused end stay allocated as long as `data`
            // lives: charge them.
            let charge = self.tail_front + data.len() + spare + ENTRY_OVERHEAD;
            self.charged += charge;
            self.chunks.push_back(Entry { data, charge });
        }
        self.block = block_size(self.queued.max(self.recent_backlog), len);
        self.tail = BytesMut::with_capacity(self.block);
        self.tail_front = 0;
    }

    /// Moves the tail into the chunk list so that a large chunk can follow it in order. The
    /// tail keeps the block's spare room for later small writes.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let data = self.tail.split().freeze();
            let charge = self.tail_front + data.len() + ENTRY_OVERHEAD;
            self.tail_front = 0;
            self.charged += charge;
            self.chunks.push_back(Entry { data, charge });
        }
    }

    /// The queued bytes in order, as slices ready for a vectored write.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks
            .iter()
            .map(|c| c.data.as_ref())
            .chain(core::iter::once(self.tail.as_ref()))
            .filter(|c| !c.is_empty())
    }

    /// Drops the first `n` bytes (they were written); clamps `n` to what is queued.
    pub(crate) fn advance(&mut self, mut n: usize) -> usize {
        n = n.min(self.queued);
        let consumed = n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.data.len() <= n => {
                    n -= front.data.len();
                    self.charged -= front.charge;
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.data.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
                    self.tail_front += n;
                    n = 0;
                }
            }
        }
        self.queued -= consumed;
        if self.queued == 0 {
            self.release_if_large();
        }
        consumed
    }

    /// Drops everything queued.
    pub(crate) fn clear(&mut self) {
        self.chunks = VecDeque::new();
        self.tail = BytesMut::new();
        self.queued = 0;
        self.charged = 0;
        self.tail_front = 0;
        self.block = 0;
        self.peak = 0;
        self.recent_backlog = 0;
    }

    /// Idle connections should not pin large buffers: once drained, give back the entry list
    /// if it grew, and the tail block unless it is small.
    fn release_if_large(&mut self) {
        debug_assert!(self.chunks.is_empty() && self.charged == 0);
        self.recent_backlog = core::mem::take(&mut self.peak);
        self.tail.clear();
        // Keep a small block for the next replies, whole again (its written front reclaimed,
        // which works now that no entry shares it); otherwise let it go.
        if self.block > MAX_BLOCK / 4 || !self.tail.try_reclaim(self.block) {
            self.tail = BytesMut::new();
            self.block = 0;
        }
        self.tail_front = 0;
        if self.chunks.capacity() > 16 {
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn flatten(q: &WriteQueue) -> Vec<u8> {
        q.chunks().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn order_is_kept_across_small_and_large_writes() {
        let mut q = WriteQueue::default();
        q.push_slice(b"ab");
        q.push(Bytes::from(alloc::vec![b'x'; 2000]));
        q.push(Bytes::from_static(b"cd"));
        let mut expected = b"ab".to_vec();
        expected.extend(core::iter::repeat_n(b'x', 2000));
        expected.extend(b"cd");
        assert_eq!(flatten(&q), expected);
        assert_eq!(q.len(), 2004);
        assert_eq!(q.advance(1), 1);
        assert_eq!(flatten(&q), expected[1..]);
        assert_eq!(q.advance(2002), 2002);
        assert_eq!(flatten(&q), b"d");
        assert_eq!(q.advance(100), 1);
        assert!(q.is_empty());
        assert_eq!(q.footprint(), 0);
    }

    #[test]
    fn writes_over_the_coalesce_limit_are_queued_without_a_copy() {
        let mut q = WriteQueue::default();
        let frame = Bytes::from(alloc::vec![7u8; COALESCE_LIMIT + 1]);
        q.push(frame.clone());
        let queued = q.chunks().next().unwrap();
        assert_eq!(
            queued.as_ptr(),
            frame.as_ptr(),
            "the same buffer, not a copy"
        );
        let small = Bytes::from(alloc::vec![7u8; COALESCE_LIMIT]);
        q.push(small.clone());
        let copied = q.chunks().nth(1).unwrap();
        assert_ne!(copied.as_ptr(), small.as_ptr(), "small writes are copied");
    }

    #[test]
    fn a_busy_spell_opens_its_first_block_at_the_last_spells_size() {
        let mut q = WriteQueue::default();
        q.push_slice(b"x");
        assert_eq!(q.tail.capacity(), MIN_BLOCK, "a fresh queue starts small");
        // A burst of small writes deep enough to reach full-size blocks, then drained.
        for _ in 0..(4 * MAX_BLOCK / 64) {
            q.push_slice(&[1; 64]);
        }
        q.advance(q.len());
        // The next spell's first block is sized for that backlog at once.
        q.push_slice(b"y");
        assert_eq!(q.tail.capacity(), MAX_BLOCK);
        // A quiet spell (one small reply) brings the size back down for the one after.
        q.advance(q.len());
        q.push_slice(b"z");
        assert_eq!(q.tail.capacity(), MIN_BLOCK);
    }

    #[test]
    fn small_writes_coalesce_into_one_chunk() {
        let mut q = WriteQueue::default();
        for _ in 0..10 {
            q.push_slice(b"hello");
        }
        assert_eq!(q.chunks().count(), 1);
    }

    /// The regression of issue 12: 16 MiB of 100-byte writes used to sit in one `BytesMut`
    /// that doubled to 32 MiB. Now blocks are at most `MAX_BLOCK`, each sealed nearly full.
    #[test]
    fn small_writes_fill_bounded_blocks_and_are_charged_their_size_plus_a_little() {
        let mut q = WriteQueue::default();
        let line = Bytes::from(alloc::vec![b'x'; 100]);
        let cap = 4 * 1024 * 1024;
        let mut writes = 0usize;
        while q.footprint() + q.cost_of(&line) <= cap {
            q.push(line.clone());
            writes += 1;
        }
        assert!(q.footprint() <= cap);
        // Blocks of 16 KiB lose under 100 bytes and one entry overhead each: under 2 %.
        assert!(q.len() * 100 >= cap * 98, "{} of {cap}", q.len());
        assert_eq!(q.len(), writes * 100);
        let blocks = q.chunks().count();
        // Full blocks, plus the few small ones a young queue starts with.
        assert!(blocks <= cap / (MAX_BLOCK - 100) + 8, "{blocks} blocks");
        assert!(q.chunks().all(|c| c.len() <= MAX_BLOCK));
    }

    /// A buffer shared among connections is queued as it is, never copied, however small, and
    /// charged its bytes plus one entry.
    #[test]
    fn shared_entries_are_queued_without_a_copy() {
        let mut q = WriteQueue::default();
        let frame = Bytes::from(alloc::vec![b'f'; 100]);
        q.push_slice(b"hi");
        let before = q.footprint();
        assert_eq!(q.cost(frame.len(), false), 100 + ENTRY_OVERHEAD);
        q.push_entry(frame.clone());
        assert_eq!(q.footprint(), before + 100 + ENTRY_OVERHEAD);
        let slices: Vec<&[u8]> = q.chunks().collect();
        assert_eq!(slices.len(), 2);
        assert_eq!(slices[1].as_ptr(), frame.as_ptr(), "the frame's own bytes");
    }

    #[test]
    fn a_drained_queue_gives_back_a_large_tail_block() {
        let mut q = WriteQueue::default();
        for _ in 0..200 {
            q.push_slice(&[7; 100]);
        }
        assert_eq!(q.advance(usize::MAX), 20_000);
        assert_eq!(q.footprint(), 0);
        assert!(q.tail.capacity() <= MAX_BLOCK / 4);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Slice(usize),
        Write(usize),
        Shared(usize),
        Written(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0usize..300).prop_map(Op::Slice),
            (0usize..3000).prop_map(Op::Write),
            (0usize..300).prop_map(Op::Shared),
            (0usize..5000).prop_map(Op::Written),
        ]
    }

    proptest! {
        /// `cost` predicts the footprint's growth exactly, the footprint never undercounts
        /// the payload, and the bytes come out in order.
        #[test]
        fn cost_is_exact_and_order_is_kept(ops in proptest::collection::vec(op(), 0..200)) {
            cost_is_exact_and_order_is_kept_for(ops)?;
        }

        /// The cheap bound of a run of writes (a frame's header, payload and trailer) is never
        /// below what the run really costs, from any state of the queue.
        #[test]
        fn the_bound_of_a_run_of_writes_holds(
            ops in proptest::collection::vec(op(), 0..60),
            run in proptest::collection::vec((0usize..3000, any::<bool>()), 1..4),
        ) {
            let mut q = WriteQueue::default();
            for op in ops {
                match op {
                    Op::Slice(n) => q.push_slice(&alloc::vec![1; n]),
                    Op::Write(n) => q.push(Bytes::from(alloc::vec![2; n])),
                    Op::Shared(n) => q.push_entry(Bytes::from(alloc::vec![3; n])),
                    Op::Written(n) => { q.advance(n); }
                }
            }
            let parts: Vec<(usize, bool)> = run
                .iter()
                .map(|&(len, copy)| (len, copy && WriteQueue::coalesces(len)))
                .collect();
            prop_assert!(q.cost_of_all(&parts) <= q.cost_bound_all(&parts));
        }
    }

    fn cost_is_exact_and_order_is_kept_for(ops: Vec<Op>) -> Result<(), TestCaseError> {
        {
            let mut q = WriteQueue::default();
            let mut model: VecDeque<u8> = VecDeque::new();
            let mut next = 0u8;
            let mut data = |n: usize| -> Vec<u8> {
                (0..n)
                    .map(|_| {
                        next = next.wrapping_add(1);
                        next
                    })
                    .collect()
            };
            for op in ops {
                let before = q.footprint();
                match op {
                    Op::Slice(n) => {
                        let d = data(n);
                        let cost = q.cost(n, true);
                        prop_assert!(cost <= q.cost_bound(n));
                        q.push_slice(&d);
                        prop_assert_eq!(q.footprint(), before + cost);
                        model.extend(d);
                    }
                    Op::Write(n) => {
                        let d = Bytes::from(data(n));
                        let cost = q.cost_of(&d);
                        prop_assert!(cost <= q.cost_bound(n));
                        model.extend(d.iter().copied());
                        q.push(d);
                        prop_assert_eq!(q.footprint(), before + cost);
                    }
                    Op::Shared(n) => {
                        let d = Bytes::from(data(n));
                        let cost = q.cost(n, false);
                        prop_assert!(cost <= q.cost_bound(n));
                        model.extend(d.iter().copied());
                        q.push_entry(d);
                        prop_assert_eq!(q.footprint(), before + cost);
                    }
                    Op::Written(n) => {
                        let done = q.advance(n);
                        prop_assert_eq!(done, n.min(model.len()));
                        model.drain(..done);
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert!(q.footprint() >= q.len());
                prop_assert_eq!(flatten(&q), model.iter().copied().collect::<Vec<u8>>());
            }
        }
        Ok(())
    }
}
