//! TCP stream reassembly: segments in sequence order, retransmissions and
//! overlaps dropped, out-of-order segments held (boundedly) until the hole
//! before them fills. Each stream remembers when each byte arrived, so a
//! message can carry the time of the packet that completed it.

use std::collections::BTreeMap;

/// Out-of-order bytes held per stream before later segments are dropped.
const MAX_PENDING: usize = 4 * 1024 * 1024;

/// One direction of a TCP connection.
#[derive(Debug, Default)]
pub struct Stream {
    /// Sequence number of the first data byte.
    base: Option<u32>,
    /// The contiguous bytes received.
    pub data: Vec<u8>,
    /// Segments beyond a hole, by offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// `(end offset, time)`: the bytes before `end` had arrived at `time`.
    marks: Vec<(u64, u64)>,
    /// Bytes were lost (a hole never filled, or pending overflow).
    pub lost: bool,
    /// A FIN or RST was seen.
    pub closed: bool,
}

impl Stream {
    /// Adds a segment; returns how many bytes the contiguous data grew by.
    pub fn add(&mut self, seq: u32, syn: bool, payload: &[u8], ts: u64) -> usize {
        if syn {
            self.base = Some(seq.wrapping_add(1));
            return 0;
        }
        if payload.is_empty() {
            return 0;
        }
        let base = *self.base.get_or_insert(seq);
        let off = u64::from(seq.wrapping_sub(base));
        if off >= 1 << 31 {
            return 0; // before the start we know of: a retransmission
        }
        let before = self.data.len();
        let have = before as u64;
        if off > have {
            if self.pending_bytes + payload.len() > MAX_PENDING {
                self.lost = true;
            } else if !self.pending.contains_key(&off) {
                self.pending_bytes += payload.len();
                self.pending.insert(off, payload.to_vec());
            }
            return 0;
        }
        self.append(off, payload);
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.data.len() as u64 {
                break;
            }
            let (off, bytes) = entry.remove_entry();
            self.pending_bytes -= bytes.len();
            self.append(off, &bytes);
        }
        let grown = self.data.len() - before;
        if grown > 0 {
            self.marks.push((self.data.len() as u64, ts));
        }
        grown
    }

    fn append(&mut self, off: u64, bytes: &[u8]) {
        let have = self.data.len() as u64;
        let skip = (have - off) as usize;
        if skip < bytes.len() {
            self.data.extend_from_slice(&bytes[skip..]);
        }
    }

    /// Marks the stream finished: held segments beyond a hole are lost.
    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.lost = true;
            self.pending.clear();
            self.pending_bytes = 0;
        }
    }

    /// The data from `start` on, split where packets ended, with times.
    pub fn parts_from(&self, start: usize) -> Vec<(Option<u64>, Vec<u8>)> {
        let mut parts = Vec::new();
        let mut at = start;
        for &(end, ts) in &self.marks {
            let end = end as usize;
            if end > at {
                parts.push((Some(ts), self.data[at..end].to_vec()));
                at = end;
            }
        }
        if at < self.data.len() {
            parts.push((None, self.data[at..].to_vec()));
        }
        parts
    }

    /// When the byte before `end` arrived (microseconds since the epoch).
    pub fn time_of(&self, end: usize) -> Option<u64> {
        let i = self.marks.partition_point(|&(e, _)| e < end as u64);
        self.marks.get(i).map(|&(_, t)| t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reorders_and_drops_retransmissions() {
        let mut s = Stream::default();
        s.add(99, true, b"", 1);
        assert_eq!(s.add(100, false, b"abc", 2), 3);
        assert_eq!(s.add(106, false, b"ghi", 3), 0); // beyond a hole
        assert_eq!(s.add(100, false, b"abc", 4), 0); // retransmitted
        assert_eq!(s.add(102, false, b"cdef", 5), 6); // overlaps, fills the hole
        assert_eq!(s.data, b"abcdefghi");
        assert_eq!(s.time_of(3), Some(2));
        assert_eq!(s.time_of(9), Some(5));
        assert!(!s.lost);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let mut s = Stream::default();
        s.add(u32::MAX - 1, true, b"", 1);
        s.add(u32::MAX, false, b"ab", 2);
        s.add(1, false, b"cd", 3);
        assert_eq!(s.data, b"abcd");
    }

    #[test]
    fn a_hole_never_filled_is_reported() {
        let mut s = Stream::default();
        s.add(0, false, b"ab", 1);
        s.add(10, false, b"zz", 2);
        s.finish();
        assert!(s.lost);
        assert_eq!(s.data, b"ab");
    }
}
