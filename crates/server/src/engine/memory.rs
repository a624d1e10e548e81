//! The in-memory engine, the default: per-channel epoch and seq, a history
//! ring, the dedupe window and the presence members of one process, each
//! channel behind its own mutex. Its stream goes straight to this node's
//! hub, called after the channel's lock is released.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::RecoveryReason;

use super::resume::{resume_range, MAX_SEQ};
use super::{
    ready, Engine, EngineFuture, EngineSink, Member, Members, Numbered, Position, PresenceChange,
    PublishRequest, Published, Recovered,
};
use crate::{base36, now_ms};

/// History and dedupe limits, with per-channel overrides.
#[derive(Debug, Clone)]
pub struct HistoryPolicy {
    /// Messages kept per channel (0: none).
    pub history_size: u32,
    /// How long a message stays in history.
    pub history_ttl: Duration,
    /// How long publish ids are remembered.
    pub dedupe_window: Duration,
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
///     overrides: Vec::new(),
/// });
/// # let _ = engine;
/// ```
pub struct MemoryEngine {
    policy: HistoryPolicy,
    channels: RwLock<HashMap<Arc<str>, Arc<Mutex<Channel>>>>,
    epoch_prefix: String,
    epoch_counter: AtomicU64,
    sink: OnceLock<Weak<dyn EngineSink>>,
}

type DedupeKey = (Arc<str>, Arc<str>);

struct Channel {
    /// Set when the sweeper removed the channel from the map; holders of
    /// a stale handle look it up again.
    dead: bool,
    epoch: Arc<str>,
    seq: u64,
    history_size: usize,
    history_ttl: Duration,
    history: VecDeque<(Instant, Arc<Numbered>)>,
    dedupe: HashMap<DedupeKey, (Arc<str>, u64)>,
    dedupe_order: VecDeque<(Instant, DedupeKey)>,
    members: Vec<Member>,
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
        }
    }

    fn new_epoch(&self) -> Arc<str> {
        let n = self.epoch_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}", self.epoch_prefix, base36(n)).into()
    }

    fn sink(&self) -> Option<Arc<dyn EngineSink>> {
        self.sink.get().and_then(Weak::upgrade)
    }

    fn get(&self, channel: &str) -> Option<Arc<Mutex<Channel>>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
    }

    fn get_or_create(&self, channel: &str) -> Arc<Mutex<Channel>> {
        if let Some(c) = self.get(channel) {
            return c;
        }
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        map.entry(Arc::from(channel))
            .or_insert_with_key(|name| {
                let (history_size, history_ttl) = self.policy.for_channel(name);
                Arc::new(Mutex::new(Channel {
                    dead: false,
                    epoch: self.new_epoch(),
                    seq: 0,
                    history_size,
                    history_ttl,
                    history: VecDeque::new(),
                    dedupe: HashMap::new(),
                    dedupe_order: VecDeque::new(),
                    members: Vec::new(),
                    members_version: 0,
                }))
            })
            .clone()
    }

    /// Runs `f` on the live, pruned state of `channel`, creating it if needed.
    fn with_channel<R>(&self, channel: &str, mut f: impl FnMut(&mut Channel) -> R) -> R {
        loop {
            let handle = self.get_or_create(channel);
            let mut state = handle.lock().unwrap_or_else(|e| e.into_inner());
            if !state.dead {
                state.prune(Instant::now(), self.policy.dedupe_window);
                return f(&mut state);
            }
        }
    }

    /// Runs `f` on `channel` if it exists.
    fn with_existing<R>(&self, channel: &str, f: impl FnOnce(&mut Channel) -> R) -> Option<R> {
        let handle = self.get(channel)?;
        let mut state = handle.lock().unwrap_or_else(|e| e.into_inner());
        if state.dead {
            return None;
        }
        Some(f(&mut state))
    }

    fn number(&self, req: PublishRequest) -> (Published, Option<Arc<Numbered>>) {
        let now = Instant::now();
        self.with_channel(&req.channel, |ch| {
            let key: DedupeKey = (req.user.clone(), req.id.clone());
            if let Some((epoch, seq)) = ch.dedupe.get(&key) {
                // DEDUP-ACK-ORIGINAL / DEDUP-DELIVER-ONCE.
                let position = Position {
                    epoch: epoch.clone(),
                    seq: *seq,
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
                ch.epoch = self.new_epoch();
                ch.seq = 0;
                ch.history.clear();
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
            if ch
                .dedupe
                .insert(key.clone(), (ch.epoch.clone(), ch.seq))
                .is_none()
            {
                ch.dedupe_order.push_back((now, key));
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
    fn prune(&mut self, now: Instant, dedupe_window: Duration) {
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
        while let Some((t, _)) = self.dedupe_order.front() {
            if now.duration_since(*t) < dedupe_window {
                break;
            }
            let (_, key) = self.dedupe_order.pop_front().expect("front exists");
            self.dedupe.remove(&key);
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
        let (published, message) = self.number(request);
        // Streamed after the lock is released: the hub encodes the frame
        // and reorders concurrent publishes by seq.
        if let (Some(message), Some(sink)) = (message, self.sink()) {
            sink.numbered(message);
        }
        ready(Ok(published))
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
            if ch.members.iter().any(|m| m.session_id == member.session_id) {
                return None;
            }
            ch.members.push(member.clone());
            ch.members_version += 1;
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
            let i = ch
                .members
                .iter()
                .position(|m| &*m.session_id == session_id)?;
            let member = ch.members.remove(i);
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
        let members = self.with_existing(channel, |ch| Members {
            members: ch.members.clone(),
            version: ch.members_version,
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

    fn sweep(&self) {
        let now = Instant::now();
        let window = self.policy.dedupe_window;
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, handle| {
            let mut ch = handle.lock().unwrap_or_else(|e| e.into_inner());
            ch.prune(now, window);
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
