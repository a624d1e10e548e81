//! Presence across nodes, and ephemerals. A member lives in the channel's
//! members hash with an expiry its node pushes back every third of
//! `presence_ttl_ms` (the heartbeat), so the members of a node that died
//! without leaving expire: the next node to touch the channel drops them
//! and streams their leaves. Joins and leaves reach every node by pub/sub;
//! `members` reads Redis. Ephemerals are pub/sub only (EPHEMERAL-NO-SEQ).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::config::Keys;
use super::listener::presence_change;
use super::wire::{self, Fields};
use super::{scripts, Inner};
use crate::engine::{EngineError, Member, Members};

/// The members this node holds, per channel: what the heartbeat refreshes
/// (and adds back when Redis lost them).
#[derive(Default)]
pub(super) struct LocalMembers(Mutex<HashMap<Arc<str>, Vec<Member>>>);

impl LocalMembers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Vec<Member>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add(&self, channel: &str, member: &Member) {
        let mut map = self.lock();
        let list = map.entry(channel.into()).or_default();
        if !list.iter().any(|m| m.session_id == member.session_id) {
            list.push(member.clone());
        }
    }

    fn remove(&self, channel: &str, session_id: &str) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(channel) {
            list.retain(|m| &*m.session_id != session_id);
            if list.is_empty() {
                map.remove(channel);
            }
        }
    }

    fn snapshot(&self) -> Vec<(Arc<str>, Vec<Member>)> {
        self.lock()
            .iter()
            .map(|(c, m)| (c.clone(), m.clone()))
            .collect()
    }
}

impl Inner {
    /// Streams the changes a presence script made to this node's hub (the
    /// other nodes get them by pub/sub).
    fn deliver_changes(&self, channel: &str, record: Vec<u8>) -> Result<(), EngineError> {
        let mut f = Fields::new(record);
        let sink = self.sink();
        while !f.is_empty() {
            let change = presence_change(channel, &mut f)?;
            if let Some(sink) = &sink {
                sink.presence(change);
            }
        }
        Ok(())
    }

    fn presence_ttl_ms(&self) -> u64 {
        self.presence_ttl.as_millis() as u64
    }

    pub(super) async fn join(&self, channel: &str, member: Member) -> Result<(), EngineError> {
        // Recorded first: if Redis is down now, the heartbeat adds it later.
        self.members.add(channel, &member);
        let keys = Keys::new(&self.prefix, channel);
        let mut invocation = scripts::JOIN.prepare_invoke();
        for key in keys.presence() {
            invocation.key(key);
        }
        invocation
            .arg(&*member.session_id)
            .arg(&*member.user)
            .arg(&member.info[..])
            .arg(self.presence_ttl_ms())
            .arg(keys.topic())
            .arg(&*self.node);
        let record = self.run("join", &invocation).await?;
        self.deliver_changes(channel, record)
    }

    pub(super) async fn leave(&self, channel: &str, session_id: &str) -> Result<(), EngineError> {
        // Forgotten first: if Redis is down now, the entry expires there.
        self.members.remove(channel, session_id);
        let keys = Keys::new(&self.prefix, channel);
        let mut invocation = scripts::LEAVE.prepare_invoke();
        for key in keys.presence() {
            invocation.key(key);
        }
        invocation
            .arg(session_id)
            .arg(keys.topic())
            .arg(&*self.node);
        let record = self.run("leave", &invocation).await?;
        self.deliver_changes(channel, record)
    }

    /// PRESENCE-QUERY: every node's members, in join order.
    pub(super) async fn members(&self, channel: &str) -> Result<Members, EngineError> {
        let keys = Keys::new(&self.prefix, channel);
        let mut invocation = scripts::MEMBERS.prepare_invoke();
        for key in keys.presence() {
            invocation.key(key);
        }
        invocation.arg(keys.topic()).arg(&*self.node);
        let mut f = Fields::new(self.run("members", &invocation).await?);
        let changes = f.bytes()?;
        self.deliver_changes(channel, changes.to_vec())?;
        let version = f.number()?;
        let mut members = Vec::new();
        while !f.is_empty() {
            let session_id = f.text()?;
            let order = f.number()?;
            let member = Member {
                session_id,
                user: f.text()?,
                info: f.bytes()?,
            };
            members.push((order, member));
        }
        members.sort_by_key(|(order, _)| *order);
        Ok(Members {
            members: members.into_iter().map(|(_, m)| m).collect(),
            version,
        })
    }

    /// EPHEMERAL-NO-SEQ: to this node's hub now, to the others by pub/sub.
    pub(super) async fn ephemeral(
        &self,
        channel: &str,
        publisher: &str,
        payload: Bytes,
    ) -> Result<(), EngineError> {
        if let Some(sink) = self.sink() {
            sink.ephemeral(channel, publisher, payload.clone());
        }
        let mut record = Vec::with_capacity(payload.len() + publisher.len() + 48);
        wire::put(&mut record, b"e");
        wire::put(&mut record, self.node.as_bytes());
        wire::put(&mut record, publisher.as_bytes());
        wire::put(&mut record, &payload);
        let keys = Keys::new(&self.prefix, channel);
        let mut conn = self.conn();
        let mut publish = redis::cmd("PUBLISH");
        publish.arg(keys.topic()).arg(record);
        match tokio::time::timeout(self.timeout, publish.query_async::<i64>(&mut conn)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(scripts::error("ephemeral", self.timeout, e)),
            Err(_) => Err(scripts::timed_out("ephemeral", self.timeout)),
        }
    }

    /// One heartbeat: refreshes this node's members in every channel
    /// where it has some (a bounded number of scripts in flight).
    async fn refresh_members(&self) {
        const IN_FLIGHT: usize = 64;
        let snapshot = self.members.snapshot();
        for chunk in snapshot.chunks(IN_FLIGHT) {
            let calls = chunk.iter().map(|(channel, members)| async move {
                if let Err(e) = self.refresh_channel(channel, members).await {
                    tracing::debug!(channel = %channel, error = %e, "presence refresh failed");
                }
            });
            futures_util::future::join_all(calls).await;
        }
    }

    async fn refresh_channel(&self, channel: &str, members: &[Member]) -> Result<(), EngineError> {
        let keys = Keys::new(&self.prefix, channel);
        let [m, exp, pmeta] = keys.presence();
        let (_, history_ttl) = self.policy.for_channel(channel);
        let mut invocation = scripts::REFRESH.prepare_invoke();
        invocation
            .key(m)
            .key(exp)
            .key(pmeta)
            .key(keys.meta())
            .arg(self.presence_ttl_ms())
            .arg(keys.topic())
            .arg(&*self.node)
            .arg(self.state_ttl_ms(history_ttl));
        for member in members {
            invocation
                .arg(&*member.session_id)
                .arg(&*member.user)
                .arg(&member.info[..]);
        }
        let record = self.run("refresh", &invocation).await?;
        self.deliver_changes(channel, record)
    }
}

/// The node's background duty until the engine is dropped: a pub/sub
/// keepalive every second, the presence refresh every third of the TTL.
pub(super) async fn heartbeat(inner: Weak<Inner>) {
    let (tick, refresh_every) = match inner.upgrade() {
        Some(i) => {
            let every = i.presence_ttl / 3;
            (every.min(Duration::from_secs(1)), every)
        }
        None => return,
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_refresh = tokio::time::Instant::now();
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.listener.keepalive(inner.timeout).await;
        if last_refresh.elapsed() >= refresh_every {
            last_refresh = tokio::time::Instant::now();
            inner.refresh_members().await;
        }
    }
}
