//! The in-memory engine, the default: per-channel epoch and seq, a history
//! ring, the dedupe record (`dedupe.rs`) and the presence members of one
//! process, each channel behind its own mutex. Its stream goes straight to
//! this node's hub, in numbering order, after the channel's state lock is
//! released.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::RecoveryReason;

use super::dedupe::{DedupeRecord, Fingerprinter};
use super::resume::{resume_range, MAX_SEQ};
use super::{
    ready, DedupeStats, Engine, EngineFuture, EngineSink, Member, Members, Numbered, Position,
    PresenceChange, PublishRequest, Published, Recovered,
};
use crate::{base36, now_ms};

/// History and dedupe limits, with per-channel overrides.
#[derive(Debug, Clone)]
pub struct HistoryPolicy {
    /// Messages kept per channel (0: none).
    pub history_size: u32,
    /// How long a message stays in history.
    pub history_ttl: Duration,
    /// How long publish ids are remembered (DEDUP-WINDOW).
    pub dedupe_window: Duration,
    /// Most publish ids remembered per channel (DEDUP-MAX, at least 1):
    /// beyond it the oldest are forgotten before the window ends.
    pub dedupe_max_per_channel: u32,
    /// Overrides for channels matching a pattern (first match wins).
    pub overrides: Vec<HistoryOverride>,
}

/// History settings for the channels matching `pattern` (`*` globs; a
/// `{sub}` pattern never matches here, as history is not per user).
#[derive(Debug, Clone)]
pub struct HistoryOverride {
    /// The channel pattern.
    pub pattern: String,
    /// Messages kept, instead of [`HistoryPolicy::history_size`].
    pub history_size: Option<u32>,
    /// Time kept, instead of [`HistoryPolicy::history_ttl`].
    pub history_ttl: Option<Duration>,
}

impl HistoryPolicy {
    /// The history size and TTL of `channel` (its first matching override,
    /// else the defaults).
    pub(crate) fn for_channel(&self, channel: &str) -> (usize, Duration) {
        let rule = self
            .overrides
            .iter()
            .find(|r| crate::pattern::pattern_matches(&r.pattern, channel, ""));
        let size = rule
            .and_then(|r| r.history_size)
            .unwrap_or(self.history_size);
        let ttl = rule.and_then(|r| r.history_ttl).unwrap_or(self.history_ttl);
        (size as usize, ttl)
    }
}

/// The default [`Engine`]: all state in this process, lost on restart
/// (a restarted server starts new epochs, SEQ-EPOCH-STABLE).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use courier_server::engine::{HistoryPolicy, MemoryEngine};
///
/// let engine = MemoryEngine::new(HistoryPolicy {
///     history_size: 300,
///     history_ttl: Duration::from_secs(300),
///     dedupe_window: Duration::from_secs(120),
///     dedupe_max_per_channel: 100_000,
///     overrides: Vec::new(),
/// });
/// # let _ = engine;
/// ```
pub struct MemoryEngine {
    policy: HistoryPolicy,
    channels: RwLock<HashMap<Arc<str>, Arc<Slot>>>,
    epoch_prefix: String,
    epoch_counter: AtomicU64,
    sink: OnceLock<Weak<dyn EngineSink>>,
    /// The clock of dedupe records (ms since this instant).
    started: Instant,
    fingerprints: Fingerprinter,
    /// Records forgotten by DEDUP-MAX before their window ended.
    dedupe_evicted_early: AtomicU64,
}

/// A channel's state, and the turn its publishes take to reach the hub.
struct Slot {
    state: Mutex<Channel>,
    /// Held by a publish from numbering until the hub took the message,
    /// so the stream hands each channel's messages over in numbering order
    /// (see [`Engine::publish`] below). Separate from `state` so that
    /// recovery, presence and the hub's reads never wait for a fan-out.
    stream: Mutex<()>,
}

struct Channel {
    /// Set when the sweeper removed the channel from the map; holders of
    /// a stale handle look it up again.
    dead: bool,
    epoch: Arc<str>,
    seq: u64,
    history_size: usize,
    history_ttl: Duration,
    history: VecDeque<(Instant, Arc<Numbered>)>,
    /// The publishes of the current epoch still remembered for dedupe.
    dedupe: DedupeRecord,
    /// By session id, with the membership version of the join: joins
    /// and leaves take constant time however many members a channel has,
    /// and a query (rarer) sorts by that version for join order.
    members: HashMap<Arc<str>, (u64, Member)>,
    members_version: u64,
}

impl MemoryEngine {
    /// An empty engine.
    pub fn new(policy: HistoryPolicy) -> Self {
        MemoryEngine {
            policy,
            channels: RwLock::new(HashMap::new()),
            // SEQ-EPOCH-FORMAT / SEQ-EPOCH-STABLE: start time and randomness
            // make every epoch of this process differ from earlier ones.
            epoch_prefix: format!(
                "{}{}",
                base36(now_ms()),
                base36(fastrand::u64(..) & 0xffff_ffff)
            ),
            epoch_counter: AtomicU64::new(0),
            sink: OnceLock::new(),
            started: Instant::now(),
            fingerprints: Fingerprinter::new(),
            dedupe_evicted_early: AtomicU64::new(0),
        }
    }

    /// The dedupe clock: ms since the engine started.
    fn clock_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.started).as_millis() as u64
    }

    /// The dedupe clock value at or before which records have left the
    /// window (`None` while the engine is younger than the window).
    fn dedupe_cutoff(&self, now: Instant) -> Option<u64> {
        let window = self.policy.dedupe_window.as_millis() as u64;
        self.clock_ms(now).checked_sub(window)
    }

    fn new_epoch(&self) -> Arc<str> {
        let n = self.epoch_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}", self.epoch_prefix, base36(n)).into()
    }

    fn sink(&self) -> Option<Arc<dyn EngineSink>> {
        self.sink.get().and_then(Weak::upgrade)
    }

    fn get(&self, channel: &str) -> Option<Arc<Slot>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
    }

    fn get_or_create(&self, channel: &str) -> Arc<Slot> {
        if let Some(c) = self.get(channel) {
            return c;
        }
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        map.entry(Arc::from(channel))
            .or_insert_with_key(|name| {
                let (history_size, history_ttl) = self.policy.for_channel(name);
                Arc::new(Slot {
                    state: Mutex::new(Channel {
                        dead: false,
                        epoch: self.new_epoch(),
                        seq: 0,
                        history_size,
                        history_ttl,
                        history: VecDeque::new(),
                        dedupe: DedupeRecord::default(),
                        members: HashMap::new(),
                        members_version: 0,
                    }),
                    stream: Mutex::new(()),
                })
            })
            .clone()
    }

    /// Runs `f` on the live, pruned state of `channel`, creating it if needed.
    fn with_channel<R>(&self, channel: &str, mut f: impl FnMut(&mut Channel) -> R) -> R {
        self.with_slot(channel, |slot| self.with_live(slot, &mut f))
    }

    /// Runs `f` on the slot of `channel`, creating it if needed, until it
    /// finds the slot live (`f` returns `None` for one the sweeper removed
    /// meanwhile).
    fn with_slot<R>(&self, channel: &str, mut f: impl FnMut(&Slot) -> Option<R>) -> R {
        loop {
            if let Some(r) = f(&self.get_or_create(channel)) {
                return r;
            }
        }
    }

    /// Runs `f` on the pruned state of `slot`, unless the sweeper removed
    /// it meanwhile (the caller looks the channel up again).
    fn with_live<R>(&self, slot: &Slot, f: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        let mut state = slot.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.dead {
            return None;
        }
        let now = Instant::now();
        state.prune(now, self.dedupe_cutoff(now));
        Some(f(&mut state))
    }

    /// Runs `f` on `channel` if it exists.
    fn with_existing<R>(&self, channel: &str, f: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        let handle = self.get(channel)?;
        let mut state = handle.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.dead {
            return None;
        }
        Some(f(&mut state))
    }

    /// Numbers and stores `req` in `slot` (`None`: swept meanwhile).
    fn number(
        &self,
        slot: &Slot,
        req: &PublishRequest,
    ) -> Option<(Published, Option<Arc<Numbered>>)> {
        let now = Instant::now();
        let max = self.policy.dedupe_max_per_channel as usize;
        self.with_live(slot, |ch| {
            if let Some(seq) = ch.dedupe.find(&self.fingerprints, &req.user, &req.id) {
                // DEDUP-ACK-ORIGINAL / DEDUP-DELIVER-ONCE. The record holds
                // the current epoch only (a new epoch clears it).
                let position = Position {
                    epoch: ch.epoch.clone(),
                    seq,
                };
                return (
                    Published {
                        position,
                        duplicate: true,
                    },
                    None,
                );
            }
            // SEQ-GAPFREE: numbering and storing happen under the channel
            // lock, so concurrent publishers get consecutive numbers.
            if ch.seq >= MAX_SEQ {
                // A new epoch may lose the dedupe record with it
                // (docs/spec/channels.md §4).
                ch.epoch = self.new_epoch();
                ch.seq = 0;
                ch.history.clear();
                ch.dedupe.clear();
            }
            ch.seq += 1;
            let message = Arc::new(Numbered {
                channel: req.channel.clone(),
                epoch: ch.epoch.clone(),
                seq: ch.seq,
                id: req.id.clone(),
                ts: now_ms(),
                publisher: req.publisher.clone(),
                payload: req.payload.clone(),
            });
            if ch.history_size > 0 {
                ch.history.push_back((now, message.clone()));
                if ch.history.len() > ch.history_size {
                    ch.history.pop_front();
                }
            }
            // DEDUP-WINDOW / DEDUP-MAX: remembered for the window, or until
            // `max` later publishes of the channel, whichever comes first.
            let inserted = ch.dedupe.insert(
                &self.fingerprints,
                &req.user,
                &req.id,
                ch.seq,
                self.clock_ms(now),
                max,
            );
            if inserted.evicted_early > 0 {
                self.dedupe_evicted_early
                    .fetch_add(inserted.evicted_early, Ordering::Relaxed);
            }
            (
                Published {
                    position: ch.position(),
                    duplicate: false,
                },
                Some(message),
            )
        })
    }
}

impl Channel {
    /// Drops expired history, and dedupe records numbered at or before
    /// `dedupe_cutoff` (the engine's dedupe clock).
    fn prune(&mut self, now: Instant, dedupe_cutoff: Option<u64>) {
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) >= self.history_ttl)
        {
            self.history.pop_front();
        }
        if let Some(cutoff) = dedupe_cutoff {
            self.dedupe.expire(cutoff);
        }
    }

    fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.seq,
        }
    }

    /// RESUME-REASON: the replay after `resume`, or why there is none.
    fn replay(&self, resume: &Position) -> Result<Vec<Arc<Numbered>>, RecoveryReason> {
        let first_kept = self.history.front().map(|(_, m)| m.seq);
        match resume_range(resume, &self.position(), self.history_size, first_kept)? {
            Some(from) => Ok(self.range(from, self.seq)),
            None => Ok(Vec::new()),
        }
    }

    fn range(&self, from: u64, to: u64) -> Vec<Arc<Numbered>> {
        self.history
            .iter()
            .map(|(_, m)| m)
            .filter(|m| m.seq >= from && m.seq <= to)
            .cloned()
            .collect()
    }
}

impl Engine for MemoryEngine {
    fn attach(&self, sink: Weak<dyn EngineSink>) {
        let _ = self.sink.set(sink);
    }

    fn publish(&self, request: PublishRequest) -> EngineFuture<'_, Published> {
        ready(Ok(self.with_slot(&request.channel, |slot| {
            // SEQ-GAPFREE, stream order (module docs of `engine`): the
            // channel's turn is held from numbering until the hub took the
            // message, so concurrent publishes reach it in numbering order.
            // Handed over in any order, a message whose thread was
            // preempted could trail its successor past the hub's reorder
            // wait, find itself trimmed from a short history (or a channel
            // without one) and have the channel's sessions closed with 4201
            // for a loss that never happened. The state lock is released
            // meanwhile: only this channel's publishes wait.
            let _turn = slot.stream.lock().unwrap_or_else(|e| e.into_inner());
            let (published, message) = self.number(slot, &request)?;
            if let (Some(message), Some(sink)) = (message, self.sink()) {
                sink.numbered(message);
            }
            Some(published)
        })))
    }

    fn recover<'a>(
        &'a self,
        channel: &'a str,
        resume: Option<&'a Position>,
    ) -> EngineFuture<'a, Recovered> {
        ready(Ok(self.with_channel(channel, |ch| Recovered {
            position: ch.position(),
            replay: resume.map(|r| ch.replay(r)),
        })))
    }

    fn range<'a>(
        &'a self,
        channel: &'a str,
        epoch: &'a str,
        from: u64,
        to: u64,
    ) -> EngineFuture<'a, Vec<Arc<Numbered>>> {
        let found = self.with_existing(channel, |ch| {
            if *ch.epoch == *epoch {
                ch.range(from, to)
            } else {
                Vec::new()
            }
        });
        ready(Ok(found.unwrap_or_default()))
    }

    fn watch<'a>(&'a self, _channel: &'a str) -> EngineFuture<'a, ()> {
        // The sink sees every channel of this process.
        ready(Ok(()))
    }

    fn unwatch(&self, _channel: &str) {}

    fn join<'a>(&'a self, channel: &'a str, member: Member) -> EngineFuture<'a, ()> {
        let change = self.with_channel(channel, |ch| {
            if ch.members.contains_key(&member.session_id) {
                return None;
            }
            ch.members_version += 1;
            ch.members.insert(
                member.session_id.clone(),
                (ch.members_version, member.clone()),
            );
            Some(PresenceChange {
                channel: channel.into(),
                joined: true,
                member: member.clone(),
                version: ch.members_version,
            })
        });
        if let (Some(change), Some(sink)) = (change, self.sink()) {
            sink.presence(change);
        }
        ready(Ok(()))
    }

    fn leave<'a>(&'a self, channel: &'a str, session_id: &'a str) -> EngineFuture<'a, ()> {
        let change = self.with_existing(channel, |ch| {
            let (_, member) = ch.members.remove(session_id)?;
            ch.members_version += 1;
            Some(PresenceChange {
                channel: channel.into(),
                joined: false,
                member,
                version: ch.members_version,
            })
        });
        if let (Some(change), Some(sink)) = (change.flatten(), self.sink()) {
            sink.presence(change);
        }
        ready(Ok(()))
    }

    fn members<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, Members> {
        let members = self.with_existing(channel, |ch| {
            // PRESENCE-QUERY: in join order.
            let mut joined: Vec<_> = ch.members.values().collect();
            joined.sort_unstable_by_key(|(version, _)| *version);
            Members {
                members: joined.into_iter().map(|(_, m)| m.clone()).collect(),
                version: ch.members_version,
            }
        });
        ready(Ok(members.unwrap_or_default()))
    }

    fn ephemeral<'a>(
        &'a self,
        channel: &'a str,
        publisher: &'a str,
        payload: Bytes,
    ) -> EngineFuture<'a, ()> {
        if let Some(sink) = self.sink() {
            sink.ephemeral(channel, publisher, payload);
        }
        ready(Ok(()))
    }

    fn channel_count(&self) -> usize {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    fn dedupe_stats(&self) -> DedupeStats {
        // At scrape time: nothing on the publish path but the rare
        // early-eviction count.
        let handles: Vec<_> = self
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        let mut stats = DedupeStats {
            evicted_early: self.dedupe_evicted_early.load(Ordering::Relaxed),
            ..DedupeStats::default()
        };
        for handle in handles {
            let ch = handle.state.lock().unwrap_or_else(|e| e.into_inner());
            stats.records += ch.dedupe.len() as u64;
            stats.bytes += ch.dedupe.heap_bytes() as u64;
        }
        stats
    }

    /// Handed over in the publish's own call, one at a time per channel.
    fn stream_is_complete(&self) -> bool {
        true
    }

    fn sweep(&self) {
        let now = Instant::now();
        let cutoff = self.dedupe_cutoff(now);
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, handle| {
            let mut ch = handle.state.lock().unwrap_or_else(|e| e.into_inner());
            ch.prune(now, cutoff);
            // A channel with no members, history or dedupe memory holds
            // nothing a client could observe except its epoch and seq;
            // forgetting it starts a new epoch later (SEQ-EPOCH-STABLE).
            let idle = ch.members.is_empty() && ch.history.is_empty() && ch.dedupe.is_empty();
            if idle {
                ch.dead = true;
            }
            !idle
        });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread;

    use super::*;

    /// Records the seqs it is handed; the first one makes it wait, as a
    /// publishing thread preempted between numbering and handing over.
    struct SlowFirst {
        seen: Mutex<Vec<u64>>,
        first_arrived: Mutex<Option<mpsc::Sender<()>>>,
    }

    impl EngineSink for SlowFirst {
        fn numbered(&self, message: Arc<Numbered>) {
            if message.seq == 1 {
                if let Some(tx) = self.first_arrived.lock().unwrap().take() {
                    tx.send(()).unwrap();
                }
                thread::sleep(Duration::from_millis(100));
            }
            self.seen.lock().unwrap().push(message.seq);
        }
        fn presence(&self, _: PresenceChange) {}
        fn ephemeral(&self, _: &str, _: &str, _: Bytes) {}
    }

    fn request(id: &str) -> PublishRequest {
        PublishRequest {
            id: id.into(),
            channel: "room".into(),
            payload: Bytes::from_static(b"\xa1x"),
            publisher: "s".into(),
            user: "".into(),
        }
    }

    /// Without history the hub cannot fill a hole: a message handed over
    /// after its successor would close the channel's sessions (4201).
    #[test]
    fn concurrent_publishes_reach_the_sink_in_numbering_order() {
        let engine = Arc::new(MemoryEngine::new(HistoryPolicy {
            history_size: 0,
            history_ttl: Duration::from_secs(60),
            dedupe_window: Duration::from_secs(60),
            dedupe_max_per_channel: 100,
            overrides: Vec::new(),
        }));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::new(SlowFirst {
            seen: Mutex::new(Vec::new()),
            first_arrived: Mutex::new(Some(tx)),
        });
        let weak: Weak<dyn EngineSink> = Arc::downgrade(&sink) as Weak<dyn EngineSink>;
        engine.attach(weak);
        let first = {
            let engine = engine.clone();
            // The memory engine does its work in the call; its future is ready.
            thread::spawn(move || drop(engine.publish(request("a"))))
        };
        // Seq 1 is numbered and on its way to the sink: publish seq 2.
        rx.recv().unwrap();
        let second = {
            let engine = engine.clone();
            thread::spawn(move || drop(engine.publish(request("b"))))
        };
        first.join().unwrap();
        second.join().unwrap();
        assert_eq!(*sink.seen.lock().unwrap(), vec![1, 2]);
    }
}
