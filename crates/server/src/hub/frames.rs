//! The queue of encoded frames an outbox holds and its writer drains: a
//! FIFO whose first frame is kept inline. Most deliveries to a connection
//! come alone (a quiet channel, a fixed-rate stream, a reply), and a plain
//! `VecDeque` allocated its storage for each of them at the hub's push and
//! freed it at the writer: ~40% of a lone delivery's instructions outside
//! the kernel went to that (callgrind, docs/benchmarks.md step 9). A burst
//! still spills into the `VecDeque` behind the first frame.

use std::collections::VecDeque;

use bytes::Bytes;

/// Frames in order; no heap storage while it holds at most one.
#[derive(Default)]
pub(crate) struct Frames {
    /// The front frame; `None` only when `rest` is empty or the front was
    /// just popped (then `rest` holds the front).
    first: Option<Bytes>,
    rest: VecDeque<Bytes>,
}

impl Frames {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.is_empty()
    }

    pub(crate) fn push_back(&mut self, frame: Bytes) {
        if self.first.is_none() && self.rest.is_empty() {
            self.first = Some(frame);
        } else {
            self.rest.push_back(frame);
        }
    }

    pub(crate) fn push_front(&mut self, frame: Bytes) {
        if let Some(old) = self.first.replace(frame) {
            self.rest.push_front(old);
        }
    }

    pub(crate) fn pop_front(&mut self) -> Option<Bytes> {
        self.first.take().or_else(|| self.rest.pop_front())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Bytes> {
        self.first.iter().chain(self.rest.iter())
    }

    /// Empties the queue, keeping its storage.
    pub(crate) fn clear(&mut self) {
        self.first = None;
        self.rest.clear();
    }

    /// Empties the queue and frees its storage.
    pub(crate) fn free(&mut self) {
        *self = Frames::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every interleaving of pushes at both ends and pops keeps the order
    /// a `VecDeque` keeps, and a queue that never held two frames never
    /// allocated.
    #[test]
    fn behaves_as_a_deque() {
        let mut seed = 7u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut ours, mut model) = (Frames::new(), VecDeque::new());
        for i in 0..20_000u32 {
            let frame = Bytes::from(i.to_be_bytes().to_vec());
            match next() % 5 {
                0 | 1 => {
                    ours.push_back(frame.clone());
                    model.push_back(frame);
                }
                2 => {
                    ours.push_front(frame.clone());
                    model.push_front(frame);
                }
                _ => assert_eq!(ours.pop_front(), model.pop_front()),
            }
            assert_eq!(ours.len(), model.len());
            assert_eq!(ours.is_empty(), model.is_empty());
            assert!(ours.iter().eq(model.iter()));
        }
        let mut lone = Frames::new();
        for i in 0..100u8 {
            lone.push_back(Bytes::from(vec![i]));
            assert_eq!(lone.pop_front().unwrap()[0], i);
        }
        assert_eq!(lone.rest.capacity(), 0);
    }
}
