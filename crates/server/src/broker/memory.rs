//! The embedded in-memory broker: per-channel epoch and seq, a history
//! ring buffer, the dedupe window and the member list, each channel behind
//! its own mutex so that numbering, storing and fan-out are one step.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::{Broker, BrokerError, PublishRequest, Subscriber};
use crate::config::ChannelRule;
use crate::frame::SharedFrame;
use crate::server::base36;

/// SEQ-JS-SAFE: the largest seq; a channel reaching it starts a new epoch.
const MAX_SEQ: u64 = (1 << 53) - 1;

/// History and dedupe limits, with per-channel overrides.
#[derive(Debug, Clone)]
pub struct HistoryPolicy {
    /// Messages kept per channel (0: none).
    pub history_size: u32,
    /// How long a message stays in history.
    pub history_ttl: Duration,
    /// How long publish ids are remembered.
    pub dedupe_window: Duration,
    /// Rules whose `history_size`/`history_ttl_ms` override the defaults
    /// for matching channels (first match wins).
    pub rules: Vec<ChannelRule>,
}

impl HistoryPolicy {
    fn for_channel(&self, channel: &str) -> (usize, Duration) {
        let rule = self
            .rules
            .iter()
            .find(|r| crate::auth::pattern_matches(&r.pattern, channel, ""));
        let size = rule
            .and_then(|r| r.history_size)
            .unwrap_or(self.history_size);
        let ttl = rule
            .and_then(|r| r.history_ttl_ms)
            .map(Duration::from_millis)
            .unwrap_or(self.history_ttl);
        (size as usize, ttl)
    }
}

#[derive(Default, Clone, Copy)]
pub(crate) struct BrokerFaults {
    pub skip_seq: bool,
    pub seq_from_zero: bool,
    pub redeliver_duplicate: bool,
    pub resume_out_of_order: bool,
    pub data_before_ack: bool,
}

/// The default [`Broker`]: all state in this process, lost on restart
/// (a restarted server starts new epochs, SEQ-EPOCH-STABLE).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use courier_server::broker::{HistoryPolicy, MemoryBroker};
///
/// let broker = MemoryBroker::new(HistoryPolicy {
///     history_size: 300,
///     history_ttl: Duration::from_secs(300),
///     dedupe_window: Duration::from_secs(120),
///     rules: Vec::new(),
/// });
/// # let _ = broker;
/// ```
pub struct MemoryBroker {
    policy: HistoryPolicy,
    channels: RwLock<HashMap<Arc<str>, Arc<Mutex<Channel>>>>,
    epoch_prefix: String,
    epoch_counter: AtomicU64,
    faults: BrokerFaults,
}

type DedupeKey = (Arc<str>, Box<str>);

struct Channel {
    name: Arc<str>,
    /// Set when the sweeper removed the channel from the map; holders of
    /// a stale handle look it up again.
    dead: bool,
    epoch: Arc<str>,
    seq: u64,
    history_size: usize,
    history_ttl: Duration,
    history: VecDeque<(Instant, u64, Arc<SharedFrame>)>,
    dedupe: HashMap<DedupeKey, (Arc<str>, u64)>,
    dedupe_order: VecDeque<(Instant, DedupeKey)>,
    /// Members in join order (PRESENCE-QUERY).
    members: Vec<Arc<dyn Subscriber>>,
}

impl MemoryBroker {
    /// An empty broker.
    pub fn new(policy: HistoryPolicy) -> Self {
        let now = crate::now_ms();
        MemoryBroker {
            policy,
            channels: RwLock::new(HashMap::new()),
            // SEQ-EPOCH-FORMAT / SEQ-EPOCH-STABLE: start time and randomness
            // make every epoch of this process differ from earlier ones.
            epoch_prefix: format!("{}{}", base36(now), base36(fastrand::u64(..) & 0xffff_ffff)),
            epoch_counter: AtomicU64::new(0),
            faults: BrokerFaults::default(),
        }
    }

    pub(crate) fn with_faults(mut self, faults: BrokerFaults) -> Self {
        self.faults = faults;
        self
    }

    fn new_epoch(&self) -> Arc<str> {
        let n = self.epoch_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{}", self.epoch_prefix, base36(n)).into()
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
                    name: name.clone(),
                    dead: false,
                    epoch: self.new_epoch(),
                    seq: 0,
                    history_size,
                    history_ttl,
                    history: VecDeque::new(),
                    dedupe: HashMap::new(),
                    dedupe_order: VecDeque::new(),
                    members: Vec::new(),
                }))
            })
            .clone()
    }

    /// Runs `f` on the live state of `channel`, creating it if needed.
    fn with_channel<R>(&self, channel: &str, mut f: impl FnMut(&mut Channel) -> R) -> R {
        loop {
            let handle = self.get_or_create(channel);
            let mut state = handle.lock().unwrap_or_else(|e| e.into_inner());
            if !state.dead {
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
}

impl Channel {
    fn prune(&mut self, now: Instant, dedupe_window: Duration) {
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
        while self
            .history
            .front()
            .is_some_and(|(t, _, _)| now.duration_since(*t) >= self.history_ttl)
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

    fn position(&self) -> v2::StreamPosition {
        v2::StreamPosition {
            epoch: self.epoch.to_string(),
            seq: self.seq,
        }
    }

    fn member_index(&self, session_id: &str) -> Option<usize> {
        self.members
            .iter()
            .position(|m| m.session_id() == session_id)
    }

    fn presence_event(
        &self,
        action: v2::PresenceAction,
        member: &v2::PresenceMember,
        except: &str,
    ) {
        let mut frame = None;
        for m in &self.members {
            if m.session_id() != except && m.wants_presence() {
                let frame = frame.get_or_insert_with(|| {
                    SharedFrame::new(v2::Envelope {
                        body: Some(Body::PresenceEvent(v2::PresenceEvent {
                            channel: self.name.to_string(),
                            action: action as i32,
                            member: Some(member.clone()),
                        })),
                    })
                });
                m.deliver(frame);
            }
        }
    }

    /// RESUME-REASON: the recovery outcome and the frames to replay.
    fn recover(
        &self,
        resume: &v2::StreamPosition,
    ) -> Result<Vec<Arc<SharedFrame>>, v2::RecoveryReason> {
        use v2::RecoveryReason as R;
        if resume.epoch != *self.epoch {
            return Err(R::EpochChanged);
        }
        if resume.seq > self.seq {
            return Err(R::PositionAhead);
        }
        if resume.seq == self.seq {
            return Ok(Vec::new());
        }
        if self.history_size == 0 {
            return Err(R::NoHistory);
        }
        match self.history.front() {
            Some((_, first, _)) if *first <= resume.seq + 1 => {}
            _ => return Err(R::HistoryExpired),
        }
        Ok(self
            .history
            .iter()
            .filter(|(_, s, _)| *s > resume.seq)
            .map(|(_, _, f)| f.clone())
            .collect())
    }
}

impl Broker for MemoryBroker {
    fn subscribe(
        &self,
        request_id: &str,
        channel: &str,
        resume: Option<&v2::StreamPosition>,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<v2::SubscribeAck, BrokerError> {
        let now = Instant::now();
        let window = self.policy.dedupe_window;
        let faults = self.faults;
        Ok(self.with_channel(channel, |ch| {
            ch.prune(now, window);
            let (recovery, mut replay) = match resume {
                None => (
                    v2::Recovery {
                        status: v2::RecoveryStatus::NotRequested as i32,
                        ..Default::default()
                    },
                    Vec::new(),
                ),
                Some(pos) => match ch.recover(pos) {
                    Ok(replay) => (
                        v2::Recovery {
                            status: v2::RecoveryStatus::Recovered as i32,
                            reason: 0,
                            replayed: replay.len() as u64,
                        },
                        replay,
                    ),
                    Err(reason) => (
                        v2::Recovery {
                            status: v2::RecoveryStatus::Failed as i32,
                            reason: reason as i32,
                            replayed: 0,
                        },
                        Vec::new(),
                    ),
                },
            };
            let ack = v2::SubscribeAck {
                id: request_id.to_string(),
                channel: channel.to_string(),
                position: Some(ch.position()),
                recovery: Some(recovery),
            };
            if faults.resume_out_of_order {
                replay.reverse();
            }
            let reply = v2::Envelope {
                body: Some(Body::SubscribeAck(ack.clone())),
            };
            // ORDER-ACK-BEFORE-DATA, RESUME-EXACT-RANGE: the ack, then the
            // replay, then (being registered under this same lock) new messages.
            if faults.data_before_ack {
                replay.iter().for_each(|f| {
                    subscriber.deliver(f);
                });
                subscriber.reply(reply);
            } else {
                subscriber.reply(reply);
                replay.iter().for_each(|f| {
                    subscriber.deliver(f);
                });
            }
            if ch.member_index(subscriber.session_id()).is_none() {
                ch.presence_event(
                    v2::PresenceAction::Join,
                    subscriber.member(),
                    subscriber.session_id(),
                );
                ch.members.push(subscriber.clone());
            }
            ack
        }))
    }

    fn unsubscribe(&self, channel: &str, session_id: &str) {
        self.with_existing(channel, |ch| {
            if let Some(i) = ch.member_index(session_id) {
                let gone = ch.members.remove(i);
                ch.presence_event(v2::PresenceAction::Leave, gone.member(), session_id);
            }
        });
    }

    fn publish(&self, req: PublishRequest) -> Result<v2::PublishAck, BrokerError> {
        let now = Instant::now();
        let window = self.policy.dedupe_window;
        let faults = self.faults;
        Ok(self.with_channel(&req.channel, |ch| {
            ch.prune(now, window);
            let key: DedupeKey = (req.user.clone(), req.id.as_str().into());
            if let Some((epoch, seq)) = ch.dedupe.get(&key) {
                // DEDUP-ACK-ORIGINAL / DEDUP-DELIVER-ONCE.
                if !faults.redeliver_duplicate {
                    return v2::PublishAck {
                        id: String::new(),
                        channel: req.channel.clone(),
                        epoch: epoch.to_string(),
                        seq: *seq,
                        duplicate: true,
                    };
                }
            }
            // SEQ-GAPFREE: numbering, storing and fan-out happen under the
            // channel lock, so concurrent publishers get consecutive numbers.
            if ch.seq >= MAX_SEQ {
                ch.epoch = self.new_epoch();
                ch.seq = 0;
                ch.history.clear();
            }
            ch.seq += 1;
            if faults.skip_seq && ch.seq % 3 == 0 {
                ch.seq += 1;
            }
            let seq = if faults.seq_from_zero {
                ch.seq - 1
            } else {
                ch.seq
            };
            let frame = SharedFrame::new(v2::Envelope {
                body: Some(Body::Message(v2::Message {
                    channel: req.channel.clone(),
                    epoch: ch.epoch.to_string(),
                    seq,
                    id: req.id.clone(),
                    ts: crate::now_ms(),
                    payload: req.payload.clone(),
                    publisher: req.publisher.to_string(),
                })),
            });
            if ch.history_size > 0 {
                ch.history.push_back((now, seq, frame.clone()));
                if ch.history.len() > ch.history_size {
                    ch.history.pop_front();
                }
            }
            if ch
                .dedupe
                .insert(key.clone(), (ch.epoch.clone(), seq))
                .is_none()
            {
                ch.dedupe_order.push_back((now, key));
            }
            for m in &ch.members {
                m.deliver(&frame);
            }
            v2::PublishAck {
                id: String::new(),
                channel: req.channel.clone(),
                epoch: ch.epoch.to_string(),
                seq,
                duplicate: false,
            }
        }))
    }

    fn ephemeral(
        &self,
        channel: &str,
        payload: Bytes,
        sender: &dyn Subscriber,
    ) -> Result<(), BrokerError> {
        let not_subscribed = || BrokerError::NotSubscribed(channel.to_string());
        self.with_existing(channel, |ch| {
            ch.member_index(sender.session_id())
                .ok_or_else(not_subscribed)?;
            let frame = SharedFrame::new(v2::Envelope {
                body: Some(Body::Ephemeral(v2::Ephemeral {
                    channel: channel.to_string(),
                    payload,
                    publisher: sender.session_id().to_string(),
                })),
            });
            for m in &ch.members {
                if m.session_id() != sender.session_id() && m.wants_ephemeral() {
                    m.deliver(&frame);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|| Err(not_subscribed()))
    }

    fn presence(
        &self,
        request_id: &str,
        channel: &str,
        asker: &dyn Subscriber,
    ) -> Result<(), BrokerError> {
        let not_subscribed = || BrokerError::NotSubscribed(channel.to_string());
        self.with_existing(channel, |ch| {
            ch.member_index(asker.session_id())
                .ok_or_else(not_subscribed)?;
            asker.reply(v2::Envelope {
                body: Some(Body::Presence(v2::Presence {
                    id: request_id.to_string(),
                    channel: channel.to_string(),
                    members: ch.members.iter().map(|m| m.member().clone()).collect(),
                })),
            });
            Ok(())
        })
        .unwrap_or_else(|| Err(not_subscribed()))
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
