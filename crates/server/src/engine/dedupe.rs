//! A channel's dedupe record for the memory engine, compact and bounded
//! (DEDUP-WINDOW, DEDUP-MAX): per numbered publish a 128-bit keyed
//! fingerprint of (user, id) and the time it was numbered, in a ring in
//! numbering order, plus an index from fingerprint to `seq`. No string is
//! kept per record: a record costs a 24-byte ring entry and a 25-byte index
//! slot (about 70 bytes with the tables' spare capacity) whatever the id's
//! length, and a channel holds at most `max` of them.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// A keyed 128-bit digest of a dedupe key (user, id). Two different keys
/// share a fingerprint with probability 2^-128 per pair, which is what
/// makes dropping the strings safe: a false duplicate would lose a
/// publish (DEDUP-DELIVER-ONCE must never hit a distinct message). The key
/// (a per-process random SipHash key) keeps a client from choosing ids
/// that collide with another user's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint(u64, u64);

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already uniformly distributed: one word is the table hash.
        state.write_u64(self.0);
    }
}

/// The identity hasher for [`Fingerprint`]s (they are keyed digests).
#[derive(Default)]
struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for `Fingerprint`; fold anything else in (FNV-1a).
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Makes the fingerprints of one engine (one random key per process).
pub(super) struct Fingerprinter(RandomState);

impl Fingerprinter {
    pub fn new() -> Self {
        Fingerprinter(RandomState::new())
    }

    fn of(&self, user: &str, id: &str) -> Fingerprint {
        // Two outputs of one keyed PRF on inputs that differ in their first
        // byte: independent 64-bit halves. `str` hashes with a terminator,
        // so (user, id) pairs cannot run into each other.
        let half = |domain: u8| {
            let mut h = self.0.build_hasher();
            domain.hash(&mut h);
            user.hash(&mut h);
            id.hash(&mut h);
            h.finish()
        };
        Fingerprint(half(0), half(1))
    }
}

/// One record in numbering order: the `seq` is implicit (the ring holds
/// consecutive numbers, see [`DedupeRecord::first_seq`]).
#[derive(Debug, Clone, Copy)]
struct Entry {
    fingerprint: Fingerprint,
    /// When it was numbered, in ms since the engine's start.
    at_ms: u64,
}

/// What one publish did to a channel's record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Inserted {
    /// Records forgotten by the maximum before their window ended.
    pub evicted_early: u64,
}

/// The dedupe record of one channel and epoch.
#[derive(Default)]
pub(super) struct DedupeRecord {
    index: HashMap<Fingerprint, u64, BuildHasherDefault<FingerprintHasher>>,
    /// Every numbered publish of the epoch still remembered, oldest first;
    /// `ring[i]` was numbered `first_seq + i`.
    ring: VecDeque<Entry>,
    /// The seq of `ring[0]`.
    first_seq: u64,
}

impl DedupeRecord {
    /// The seq the key was numbered with, if it is remembered.
    pub fn find(&self, fp: &Fingerprinter, user: &str, id: &str) -> Option<u64> {
        self.index.get(&fp.of(user, id)).copied()
    }

    /// Remembers the key as numbered `seq` at `at_ms`; `seq` follows the
    /// last one inserted (SEQ-GAPFREE: every numbered publish is recorded).
    /// DEDUP-MAX: beyond `max` records the oldest go, before their window.
    pub fn insert(
        &mut self,
        fp: &Fingerprinter,
        user: &str,
        id: &str,
        seq: u64,
        at_ms: u64,
        max: usize,
    ) -> Inserted {
        if self.ring.is_empty() || seq != self.first_seq + self.ring.len() as u64 {
            // First record, or the numbering moved on without us (a new
            // epoch restarts at 1): nothing older is comparable.
            self.clear();
            self.first_seq = seq;
        }
        let fingerprint = fp.of(user, id);
        self.index.insert(fingerprint, seq);
        self.ring.push_back(Entry { fingerprint, at_ms });
        let mut out = Inserted::default();
        while self.ring.len() > max.max(1) {
            self.pop_front();
            out.evicted_early += 1;
        }
        out
    }

    /// Forgets the records numbered at or before `cutoff_ms` (the window's end).
    pub fn expire(&mut self, cutoff_ms: u64) {
        while self.ring.front().is_some_and(|e| e.at_ms <= cutoff_ms) {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.ring.pop_front() {
            // The index may point at a later record of the same fingerprint
            // only if two keys collided; keep that one.
            if self.index.get(&e.fingerprint) == Some(&self.first_seq) {
                self.index.remove(&e.fingerprint);
            }
            self.first_seq += 1;
        }
        if self.ring.is_empty() {
            self.clear();
        }
    }

    /// Forgets everything and gives the memory back.
    pub fn clear(&mut self) {
        self.index = HashMap::default();
        self.ring = VecDeque::new();
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Heap bytes held by the record (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        self.ring.capacity() * std::mem::size_of::<Entry>()
            + self.index.capacity() * (std::mem::size_of::<(Fingerprint, u64)>() + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_the_window_or_the_maximum() {
        let fp = Fingerprinter::new();
        let mut r = DedupeRecord::default();
        for seq in 1..=5 {
            let out = r.insert(&fp, "alice", &format!("p{seq}"), seq, seq * 10, 3);
            assert_eq!(out.evicted_early, u64::from(seq > 3));
        }
        // DEDUP-MAX: the last three remain.
        assert_eq!(r.len(), 3);
        assert_eq!(r.find(&fp, "alice", "p2"), None);
        assert_eq!(r.find(&fp, "alice", "p3"), Some(3));
        assert_eq!(r.find(&fp, "alice", "p5"), Some(5));
        // The key includes the user.
        assert_eq!(r.find(&fp, "bob", "p5"), None);
        // Expiry by time, oldest first.
        r.expire(40);
        assert_eq!(r.len(), 1);
        assert_eq!(r.find(&fp, "alice", "p4"), None);
        assert_eq!(r.find(&fp, "alice", "p5"), Some(5));
        r.expire(50);
        assert!(r.is_empty());
        assert_eq!(r.heap_bytes(), 0, "an empty record holds no memory");
    }

    #[test]
    fn a_new_epoch_starts_a_new_record() {
        let fp = Fingerprinter::new();
        let mut r = DedupeRecord::default();
        r.insert(&fp, "", "a", 7, 0, 10);
        r.insert(&fp, "", "b", 8, 0, 10);
        r.insert(&fp, "", "c", 1, 0, 10);
        assert_eq!(r.len(), 1);
        assert_eq!(r.find(&fp, "", "a"), None);
        assert_eq!(r.find(&fp, "", "c"), Some(1));
    }

    #[test]
    fn user_and_id_do_not_run_into_each_other() {
        let fp = Fingerprinter::new();
        assert_ne!(fp.of("ab", "c"), fp.of("a", "bc"));
        assert_ne!(fp.of("", "x"), fp.of("x", ""));
        assert_eq!(fp.of("u", "x"), fp.of("u", "x"));
    }
}
