//! Per-channel delivery tracking without I/O: the last delivered position,
//! gap detection (SEQ-CLIENT-GAP-DETECTION), dropping old messages
//! (SEQ-CLIENT-DROP-OLD) and duplicates by id (DEDUP-CLIENT-DROP).

use std::collections::{HashSet, VecDeque};
use std::time::{Duration, Instant};

use crate::event::{Position, Recovery};

/// What to do with an arriving `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it to the application.
    Deliver,
    /// Drop it silently: already delivered by position (SEQ-CLIENT-DROP-OLD).
    Old,
    /// Drop it: its id was delivered before (DEDUP-CLIENT-DROP). The
    /// position still advances, so the next message is not taken for a gap.
    Duplicate,
    /// A gap: do not deliver; resubscribe with `resume` = `tracked` and
    /// discard this channel's messages until the new ack.
    Gap {
        /// The last position delivered.
        tracked: Position,
    },
    /// Discarded while waiting for a `subscribe_ack` (after a gap or before
    /// the first ack).
    AwaitingAck,
}

/// A size- and age-bounded record of recently delivered message ids.
#[derive(Debug)]
pub struct SeenIds {
    order: VecDeque<(Instant, Box<str>)>,
    set: HashSet<Box<str>>,
    max: usize,
    window: Duration,
}

impl SeenIds {
    /// Keeps at most `max` ids, each for at least `window` while `max` allows.
    pub fn new(max: usize, window: Duration) -> Self {
        SeenIds {
            order: VecDeque::new(),
            set: HashSet::new(),
            max: max.max(1),
            window,
        }
    }

    /// Sets the window (from `welcome.dedupe_window_ms`).
    pub fn set_window(&mut self, window: Duration) {
        self.window = window;
    }

    /// Records `id`; returns false when it was already recorded.
    pub fn insert(&mut self, id: &str, now: Instant) -> bool {
        if self.set.contains(id) {
            return false;
        }
        while let Some((t, _)) = self.order.front() {
            let expired = now.saturating_duration_since(*t) > self.window;
            if !expired && self.order.len() < self.max {
                break;
            }
            let (_, old) = self.order.pop_front().expect("front exists");
            self.set.remove(&old);
        }
        let id: Box<str> = id.into();
        self.set.insert(id.clone());
        self.order.push_back((now, id));
        true
    }

    /// Number of ids held.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// Delivery state of one subscribed channel.
#[derive(Debug)]
pub struct ChannelTracker {
    /// Last delivered position; None before the first ack.
    position: Option<Position>,
    /// True from a (re)subscribe until its ack: messages are discarded.
    awaiting_ack: bool,
    seen: SeenIds,
}

impl ChannelTracker {
    /// A tracker for a new subscription.
    pub fn new(max_ids: usize, window: Duration) -> Self {
        ChannelTracker {
            position: None,
            awaiting_ack: true,
            seen: SeenIds::new(max_ids, window),
        }
    }

    /// Starts from `from`, a position the application kept: the first
    /// subscribe resumes from it, as a resubscription would
    /// (RESUME-CLIENT-FROM).
    pub fn start_from(&mut self, from: Position) {
        self.position = Some(from);
        self.awaiting_ack = true;
    }

    /// The last delivered position: what a resubscribe resumes from
    /// (RESUME-CLIENT-RESUBSCRIBE).
    pub fn position(&self) -> Option<&Position> {
        self.position.as_ref()
    }

    /// Sets the dedupe window from `welcome`.
    pub fn set_window(&mut self, window: Duration) {
        self.seen.set_window(window);
    }

    /// A (re)subscribe was sent: discard messages until its ack.
    pub fn resubscribing(&mut self) {
        self.awaiting_ack = true;
    }

    /// Whether the tracker waits for an ack.
    pub fn awaiting_ack(&self) -> bool {
        self.awaiting_ack
    }

    /// A `subscribe_ack` arrived. `resume` is what the subscribe carried.
    /// Returns the outcome to report (RESUME-CLIENT-REPORT).
    pub fn on_ack(
        &mut self,
        position: Position,
        recovery: Recovery,
        resume: Option<&Position>,
    ) -> Recovery {
        self.awaiting_ack = false;
        // SEQ-CLIENT-GAP-DETECTION: after a recovered resume, the replay
        // continues from the resume position; otherwise from the ack's.
        self.position = match (&recovery, resume) {
            (Recovery::Recovered { .. }, Some(r)) => Some(r.clone()),
            _ => Some(position),
        };
        recovery
    }

    /// Classifies an arriving message and, when delivered (or a duplicate),
    /// advances the tracked position.
    pub fn on_message(&mut self, epoch: &str, seq: u64, id: &str, now: Instant) -> Verdict {
        if self.awaiting_ack {
            return Verdict::AwaitingAck;
        }
        let Some(pos) = self.position.as_mut() else {
            return Verdict::AwaitingAck;
        };
        if epoch == pos.epoch && seq <= pos.seq && !fault!(DeliverOld) {
            return Verdict::Old;
        }
        if (epoch != pos.epoch || seq > pos.seq + 1) && fault!(DeliverGaps) {
            *pos = Position {
                epoch: epoch.to_string(),
                seq,
            };
            return Verdict::Deliver;
        }
        if epoch != pos.epoch || seq > pos.seq + 1 {
            let tracked = pos.clone();
            self.awaiting_ack = true;
            return Verdict::Gap { tracked };
        }
        let prev = pos.seq;
        pos.seq = seq;
        if !id.is_empty() && !self.seen.insert(id, now) && !fault!(DeliverDuplicates) {
            // DEDUP-CLIENT-ADVANCE: the position stays advanced.
            if fault!(DuplicateKeepsPosition) {
                pos.seq = prev;
            }
            return Verdict::Duplicate;
        }
        Verdict::Deliver
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_protocol::v2::RecoveryReason;

    fn pos(e: &str, s: u64) -> Position {
        Position {
            epoch: e.into(),
            seq: s,
        }
    }

    fn acked(p: Position) -> ChannelTracker {
        let mut t = ChannelTracker::new(100, Duration::from_secs(120));
        t.on_ack(p, Recovery::NotRequested, None);
        t
    }

    #[test]
    fn delivers_in_order_and_drops_old() {
        let now = Instant::now();
        let mut t = acked(pos("e", 5));
        assert_eq!(t.on_message("e", 6, "a", now), Verdict::Deliver);
        assert_eq!(t.on_message("e", 7, "b", now), Verdict::Deliver);
        assert_eq!(t.on_message("e", 7, "b", now), Verdict::Old);
        assert_eq!(t.on_message("e", 3, "z", now), Verdict::Old);
        assert_eq!(t.position(), Some(&pos("e", 7)));
    }

    #[test]
    fn gap_resubscribes_from_tracked_and_discards_until_ack() {
        let now = Instant::now();
        let mut t = acked(pos("e", 5));
        assert_eq!(t.on_message("e", 6, "a", now), Verdict::Deliver);
        assert_eq!(
            t.on_message("e", 8, "c", now),
            Verdict::Gap {
                tracked: pos("e", 6)
            }
        );
        assert_eq!(t.on_message("e", 9, "d", now), Verdict::AwaitingAck);
        let r = t.on_ack(
            pos("e", 9),
            Recovery::Recovered { replayed: 3 },
            Some(&pos("e", 6)),
        );
        assert_eq!(r, Recovery::Recovered { replayed: 3 });
        assert_eq!(t.on_message("e", 7, "b", now), Verdict::Deliver);
        assert_eq!(t.on_message("e", 8, "c", now), Verdict::Deliver);
    }

    #[test]
    fn epoch_change_is_a_gap() {
        let mut t = acked(pos("e", 5));
        assert_eq!(
            t.on_message("f", 1, "x", Instant::now()),
            Verdict::Gap {
                tracked: pos("e", 5)
            }
        );
    }

    #[test]
    fn failed_recovery_continues_from_ack_position() {
        let now = Instant::now();
        let mut t = acked(pos("e", 5));
        t.resubscribing();
        let failed = Recovery::Failed {
            reason: RecoveryReason::EpochChanged,
        };
        assert_eq!(
            t.on_ack(pos("f", 2), failed.clone(), Some(&pos("e", 5))),
            failed
        );
        assert_eq!(t.on_message("f", 3, "n", now), Verdict::Deliver);
    }

    #[test]
    fn starts_from_a_kept_position() {
        let now = Instant::now();
        let mut t = ChannelTracker::new(100, Duration::from_secs(120));
        t.start_from(pos("e", 5));
        assert_eq!(t.position(), Some(&pos("e", 5)));
        assert_eq!(t.on_message("e", 6, "a", now), Verdict::AwaitingAck);
        let recovered = Recovery::Recovered { replayed: 3 };
        t.on_ack(pos("e", 8), recovered, Some(&pos("e", 5)));
        assert_eq!(t.on_message("e", 6, "a", now), Verdict::Deliver);
        assert_eq!(
            t.on_message("e", 8, "c", now),
            Verdict::Gap {
                tracked: pos("e", 6)
            }
        );
    }

    #[test]
    fn duplicate_ids_are_dropped_but_advance_position() {
        let now = Instant::now();
        let mut t = acked(pos("e", 0));
        assert_eq!(t.on_message("e", 1, "p1", now), Verdict::Deliver);
        assert_eq!(t.on_message("e", 2, "p1", now), Verdict::Duplicate);
        assert_eq!(t.on_message("e", 3, "p2", now), Verdict::Deliver);
        // Messages without an id are never treated as duplicates.
        assert_eq!(t.on_message("e", 4, "", now), Verdict::Deliver);
        assert_eq!(t.on_message("e", 5, "", now), Verdict::Deliver);
    }

    #[test]
    fn seen_ids_are_bounded_by_count_and_age() {
        let t0 = Instant::now();
        let mut s = SeenIds::new(3, Duration::from_secs(10));
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            assert!(s.insert(id, t0 + Duration::from_millis(i as u64)));
        }
        assert_eq!(s.len(), 3);
        assert!(s.insert("a", t0), "oldest id was evicted by count");
        assert!(!s.insert("d", t0));
        // After the window, old ids go even below the count bound.
        assert!(s.insert("e", t0 + Duration::from_secs(11)));
        assert_eq!(s.len(), 1);
    }
}
