//! The outgoing byte queue: `Bytes` chunks kept as they are for vectored writes, small writes
//! coalesced so a chatty protocol does not turn every 20-byte reply into its own iovec.

use alloc::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Writes up to this size are copied into a shared tail buffer instead of queued on their own.
const COALESCE_LIMIT: usize = 1024;

/// Ordered queue of outgoing bytes.
#[derive(Debug, Default)]
pub(crate) struct WriteQueue {
    chunks: VecDeque<Bytes>,
    /// Small writes accumulate here; it is always logically after every entry of `chunks`.
    tail: BytesMut,
    queued: usize,
}

impl WriteQueue {
    pub(crate) fn len(&self) -> usize {
        self.queued
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.queued == 0
    }

    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.queued += data.len();
        if data.len() <= COALESCE_LIMIT {
            self.tail.extend_from_slice(&data);
        } else {
            self.seal_tail();
            self.chunks.push_back(data);
        }
    }

    pub(crate) fn push_slice(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        // A slice must be copied anyway; copying it into the tail costs no more than into a
        // chunk of its own and keeps the iovec count down.
        self.queued += data.len();
        self.tail.extend_from_slice(data);
    }

    /// Moves the tail into the chunk list so that a large chunk can follow it in order.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
    }

    /// The queued bytes in order, as slices ready for a vectored write.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.chunks
            .iter()
            .map(|c| c.as_ref())
            .chain(core::iter::once(self.tail.as_ref()))
            .filter(|c| !c.is_empty())
    }

    /// Drops the first `n` bytes (they were written); clamps `n` to what is queued.
    pub(crate) fn advance(&mut self, mut n: usize) -> usize {
        n = n.min(self.queued);
        let consumed = n;
        while n > 0 {
            match self.chunks.front_mut() {
                Some(front) if front.len() <= n => {
                    n -= front.len();
                    self.chunks.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    n = 0;
                }
                None => {
                    self.tail.advance(n);
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
    }

    /// Idle connections should not pin large buffers: once drained, give back any tail capacity
    /// beyond a small working size.
    fn release_if_large(&mut self) {
        if self.tail.capacity() > 16 * 1024 {
            self.tail = BytesMut::new();
        } else {
            self.tail.clear();
        }
        if self.chunks.capacity() > 16 {
            self.chunks = VecDeque::new();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

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
    }

    #[test]
    fn small_writes_coalesce_into_one_chunk() {
        let mut q = WriteQueue::default();
        for _ in 0..10 {
            q.push_slice(b"hello");
        }
        assert_eq!(q.chunks().count(), 1);
    }
}
