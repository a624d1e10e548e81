//! The hub: this node's subscriptions (which local sessions subscribe to
//! which channels) and delivery to their outboxes, with the per-session
//! ordering guarantees: the `subscribe_ack` before any data of its channel
//! (ORDER-ACK-BEFORE-DATA), every message after the ack's position in order
//! (SEQ-ACK-CONTIGUOUS), nothing after an `unsubscribe_ack`
//! (ORDER-UNSUBSCRIBE-FINAL), presence replies consistent with the events
//! around them (PRESENCE-CONSISTENT).
//!
//! Channel state shared between nodes is the engine's (`crate::engine`);
//! the hub is the engine's [`EngineSink`]. It tolerates what a distributed
//! engine's stream does: messages numbered while a subscriber is being
//! attached are held and delivered once, after the ack; messages that
//! arrive out of order are parked until the hole before them is filled,
//! first by the stream itself, then from [`Engine::range`]. Frames are
//! built and encoded once per message per wire form, before any channel
//! lock is taken, and shared by every recipient.

mod channel;
pub(crate) mod frames;
pub(crate) mod outbox;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use crate::engine::{Engine, EngineError, EngineSink, Member, Numbered, Position, PresenceChange};
use crate::features::{EPHEMERAL, PRESENCE};
use crate::frame::SharedFrame;
use crate::metrics::Histogram;
use channel::{Channel, Held};
pub(crate) use outbox::{CloseRequest, Outbox};

/// How long a hole in a channel's stream may wait for the missing message
/// to arrive by itself before the hub reads it from the engine: engines
/// stream in numbering order, so a hole means a loss (a stream that
/// reconnected) or, from an engine that does not keep that order, a
/// message microseconds behind its successor.
const REORDER_GRACE: Duration = Duration::from_millis(20);
/// Attempts to read a hole from the engine before the affected sessions
/// are closed with 4201 (they reconnect and resume from history).
const FILL_ATTEMPTS: u32 = 5;

/// This node's subscriptions and delivery.
pub(crate) struct Hub {
    engine: Arc<dyn Engine>,
    channels: RwLock<HashMap<Arc<str>, Arc<Channel>>>,
    delivery: Arc<Histogram>,
    me: Weak<Hub>,
}

impl Hub {
    /// A hub in front of `engine`, attached as its sink.
    pub(crate) fn new(engine: Arc<dyn Engine>) -> Arc<Hub> {
        let hub = Arc::new_cyclic(|me| Hub {
            engine,
            channels: RwLock::new(HashMap::new()),
            delivery: Arc::default(),
            me: me.clone(),
        });
        let sink: Weak<dyn EngineSink> = Arc::downgrade(&hub) as Weak<dyn EngineSink>;
        hub.engine.attach(sink);
        hub
    }

    /// From numbering to queued for this node's subscribers, per message.
    pub(crate) fn delivery_latency(&self) -> &Histogram {
        &self.delivery
    }

    /// The engine behind this hub.
    pub(crate) fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    fn get(&self, channel: &str) -> Option<Arc<Channel>> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(channel)
            .cloned()
    }

    /// Registers `outbox` as a pending subscriber of `channel` (creating the
    /// channel), returning the channel and whether the session was new to it.
    fn attach(&self, channel: &str, outbox: &Arc<Outbox>) -> (Arc<Channel>, bool) {
        loop {
            let ch = match self.get(channel) {
                Some(ch) => ch,
                None => self
                    .channels
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(Arc::from(channel))
                    .or_insert_with_key(|name| {
                        Arc::new(Channel::new(name.clone(), self.delivery.clone()))
                    })
                    .clone(),
            };
            let attached = ch.lock().attach(outbox);
            if let Some(new) = attached {
                return (ch, new);
            }
            // The channel was being removed: look it up again.
        }
    }

    /// Removes the channel from the map when it has no subscriber left;
    /// true when it was removed (the engine then stops streaming it).
    fn release(&self, ch: &Channel) -> bool {
        let mut map = self.channels.write().unwrap_or_else(|e| e.into_inner());
        let mut st = ch.lock();
        if !st.is_empty() || st.dead {
            return false;
        }
        st.dead = true;
        map.remove(&*ch.name);
        true
    }

    /// ORDER-IDEMPOTENT-SUBSCRIBE, SEQ-ACK-POSITION, RESUME-*: subscribes
    /// `outbox` to `channel` and queues the `subscribe_ack` answering
    /// `request_id`, the replay, then every message numbered after the ack.
    /// A session new to the channel joins its presence (PRESENCE-JOIN-LEAVE).
    pub(crate) async fn subscribe(
        &self,
        outbox: &Arc<Outbox>,
        request_id: &str,
        channel: &str,
        resume: Option<Position>,
        member: Member,
    ) -> Result<(), EngineError> {
        let (ch, new) = self.attach(channel, outbox);
        // Subscribe race: the stream must be active before the position is
        // read, or a message numbered in between would reach nobody.
        let recovered = match ch.watched(&*self.engine).await {
            Ok(()) => self.engine.recover(channel, resume.as_ref()).await,
            Err(e) => Err(e),
        };
        let recovered = match recovered {
            Ok(r) => r,
            Err(e) => {
                self.detach(&ch, outbox, new);
                return Err(e);
            }
        };
        let wire = outbox.wire();
        let replay = match &recovered.replay {
            Some(Ok(messages)) => messages
                .iter()
                .map(|m| {
                    let frame = message_frame(m);
                    frame.bytes(wire).ok().map(|b| (m.seq, b))
                })
                .collect::<Option<Vec<_>>>()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        if new {
            // Joined before the ack: a session that subscribes after seeing
            // this ack never gets this join as an event, also when the
            // engine takes a round trip (PRESENCE-JOIN-LEAVE). A failed
            // join leaves the subscription working without presence.
            if let Err(e) = self.engine.join(channel, member).await {
                tracing::warn!(channel, error = %e, "presence join failed");
            }
        }
        let ack = subscribe_ack(request_id, channel, &recovered);
        ch.lock()
            .activate(outbox, ack, replay, &recovered.position, || {
                self.schedule_fill(&ch)
            });
        Ok(())
    }

    /// Undoes [`Hub::attach`] after a failed subscribe.
    fn detach(&self, ch: &Arc<Channel>, outbox: &Arc<Outbox>, new: bool) {
        if new {
            ch.lock().remove(outbox);
            if self.release(ch) {
                self.engine.unwatch(&ch.name);
            }
        } else {
            ch.lock().resume_live(outbox);
        }
    }

    /// Removes `outbox` from `channel` (nothing when not subscribed): no
    /// frame of the channel is queued for it afterwards, so an
    /// `unsubscribe_ack` queued next is final (ORDER-UNSUBSCRIBE-FINAL).
    /// The leave reaches the other members (PRESENCE-JOIN-LEAVE).
    pub(crate) async fn unsubscribe(&self, outbox: &Arc<Outbox>, channel: &str) {
        let Some(ch) = self.get(channel) else { return };
        if !ch.lock().remove(outbox) {
            return;
        }
        if self.release(&ch) {
            self.engine.unwatch(channel);
        }
        if let Err(e) = self.engine.leave(channel, outbox.session_id()).await {
            tracing::warn!(channel, error = %e, "presence leave failed");
        }
    }

    /// PRESENCE-QUERY, PRESENCE-CONSISTENT: queues the `presence` reply to
    /// `request_id`; changes the reply does not reflect follow it.
    pub(crate) async fn presence(
        &self,
        outbox: &Arc<Outbox>,
        request_id: &str,
        channel: &str,
    ) -> Result<(), EngineError> {
        let ch = self.get(channel);
        if let Some(ch) = &ch {
            ch.lock().hold_presence(outbox);
        }
        let members = self.engine.members(channel).await;
        let reply = members.as_ref().ok().map(|m| v2::Envelope {
            body: Some(Body::Presence(v2::Presence {
                id: request_id.to_string(),
                channel: channel.to_string(),
                members: m.members.iter().map(presence_member).collect(),
            })),
        });
        let version = members.as_ref().map(|m| m.version).unwrap_or(u64::MAX);
        match &ch {
            Some(ch) => ch.lock().release_presence(outbox, reply.as_ref(), version),
            None => {
                if let Some(reply) = &reply {
                    outbox.send(reply);
                }
            }
        }
        members.map(|_| ())
    }

    /// Relays an ephemeral from `outbox`'s session (EPHEMERAL-NO-SEQ).
    pub(crate) async fn ephemeral(
        &self,
        outbox: &Outbox,
        channel: &str,
        payload: Bytes,
    ) -> Result<(), EngineError> {
        self.engine
            .ephemeral(channel, outbox.session_id(), payload)
            .await
    }

    /// Position check, about once a second: compares each channel's last
    /// delivered position with the engine's (the position at the previous
    /// check while the stream delivers: what is in flight is not lost), so
    /// that the loss of a channel's newest messages from the stream (which
    /// no later message reveals) is filled too. Nothing to do for a
    /// complete stream ([`Engine::stream_is_complete`]).
    pub(crate) async fn check_positions(&self) {
        if self.engine.stream_is_complete() {
            return;
        }
        let channels: Vec<Arc<Channel>> = self
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for ch in channels {
            if ch.lock().last().is_none() {
                continue;
            }
            match self.engine.recover(&ch.name, None).await {
                Ok(r) => ch.lock().note_top(&r.position, || self.schedule_fill(&ch)),
                Err(e) => tracing::debug!(channel = %ch.name, error = %e, "position check failed"),
            }
        }
    }

    /// Starts the task that fills the hole before `ch`'s parked messages.
    fn schedule_fill(&self, ch: &Arc<Channel>) {
        let Some(hub) = self.me.upgrade() else { return };
        let ch = ch.clone();
        tokio::spawn(async move { hub.fill(ch).await });
    }

    /// Waits for a hole to close by itself, then reads it from the engine.
    async fn fill(&self, ch: Arc<Channel>) {
        tokio::time::sleep(REORDER_GRACE).await;
        let mut failures = 0;
        loop {
            let Some((epoch, from, to)) = ch.lock().hole() else {
                return;
            };
            match self.engine.range(&ch.name, &epoch, from, to).await {
                Ok(found) => {
                    let frames: Vec<Held> = found
                        .into_iter()
                        .filter(|m| m.seq >= from && m.seq <= to && *m.epoch == *epoch)
                        .map(|m| {
                            let frame = message_frame(&m);
                            frame.prepare(ch.wires(), &crate::frame::ALL_WIRES);
                            (m, frame)
                        })
                        .collect();
                    let mut st = ch.lock();
                    for (m, frame) in frames {
                        st.accept(m, frame, &mut || {});
                    }
                    if st.hole().is_some_and(|(_, f, _)| f == from) {
                        // The engine no longer has it (history trimmed or
                        // lost): the sessions cannot get a gap-free stream.
                        st.skip_hole("messages of this channel were lost; reconnect and resume");
                    }
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(channel = %ch.name, error = %e, failures, "cannot fill a hole in the stream");
                    if failures >= FILL_ATTEMPTS {
                        ch.lock()
                            .skip_hole("the engine is unreachable; reconnect and resume");
                    } else {
                        tokio::time::sleep(REORDER_GRACE * 2u32.pow(failures)).await;
                    }
                }
            }
        }
    }
}

impl EngineSink for Hub {
    fn numbered(&self, message: Arc<Numbered>) {
        let Some(ch) = self.get(&message.channel) else {
            return;
        };
        let frame = message_frame(&message);
        frame.prepare(ch.wires(), &crate::frame::ALL_WIRES);
        let mut st = ch.lock();
        st.streamed();
        st.accept(message, frame, &mut || self.schedule_fill(&ch));
    }

    fn presence(&self, change: PresenceChange) {
        let Some(ch) = self.get(&change.channel) else {
            return;
        };
        // A subscriber added meanwhile is held until its ack, and held
        // subscribers get no events: reading the flag unlocked loses none.
        if !ch.has_receivers(PRESENCE) {
            return;
        }
        let action = if change.joined {
            v2::PresenceAction::Join
        } else {
            v2::PresenceAction::Leave
        };
        let frame = SharedFrame::new(v2::Envelope {
            body: Some(Body::PresenceEvent(v2::PresenceEvent {
                channel: change.channel.to_string(),
                action: action as i32,
                member: Some(presence_member(&change.member)),
            })),
        });
        frame.prepare(ch.wires(), &crate::frame::ALL_WIRES);
        ch.lock().broadcast(
            &frame,
            PRESENCE,
            &change.member.session_id,
            Some(change.version),
        );
    }

    fn ephemeral(&self, channel: &str, publisher: &str, payload: Bytes) {
        let Some(ch) = self.get(channel) else { return };
        if !ch.has_receivers(EPHEMERAL) {
            return;
        }
        let frame = SharedFrame::new(v2::Envelope {
            body: Some(Body::Ephemeral(v2::Ephemeral {
                channel: channel.to_string(),
                payload,
                publisher: publisher.to_string(),
            })),
        });
        frame.prepare(ch.wires(), &crate::frame::ALL_WIRES);
        ch.lock().broadcast(&frame, EPHEMERAL, publisher, None);
    }
}

fn message_frame(m: &Numbered) -> Arc<SharedFrame> {
    SharedFrame::new(v2::Envelope {
        body: Some(Body::Message(v2::Message {
            channel: m.channel.to_string(),
            epoch: m.epoch.to_string(),
            seq: m.seq,
            id: m.id.to_string(),
            ts: m.ts,
            payload: m.payload.clone(),
            publisher: m.publisher.to_string(),
        })),
    })
}

fn presence_member(m: &Member) -> v2::PresenceMember {
    v2::PresenceMember {
        session_id: m.session_id.to_string(),
        user: m.user.to_string(),
        info: m.info.clone(),
    }
}

/// The ack for a recovered subscribe (SEQ-ACK-POSITION, RESUME-REASON,
/// RESUME-REPLAYED-COUNT, RESUME-NOT-REQUESTED).
fn subscribe_ack(
    request_id: &str,
    channel: &str,
    recovered: &crate::engine::Recovered,
) -> v2::Envelope {
    let recovery = match &recovered.replay {
        None => v2::Recovery {
            status: v2::RecoveryStatus::NotRequested as i32,
            ..Default::default()
        },
        Some(Ok(replay)) => v2::Recovery {
            status: v2::RecoveryStatus::Recovered as i32,
            reason: 0,
            replayed: replay.len() as u64,
        },
        Some(Err(reason)) => v2::Recovery {
            status: v2::RecoveryStatus::Failed as i32,
            reason: *reason as i32,
            replayed: 0,
        },
    };
    v2::Envelope {
        body: Some(Body::SubscribeAck(v2::SubscribeAck {
            id: request_id.to_string(),
            channel: channel.to_string(),
            position: Some(v2::StreamPosition {
                epoch: recovered.position.epoch.to_string(),
                seq: recovered.position.seq,
            }),
            recovery: Some(recovery),
        })),
    }
}
