//! The pub/sub side: one RESP3 connection per node, subscribed to the
//! topics of the channels with local subscribers only. It is the one
//! source of numbered messages for the node's hub, its own publishes
//! included, so they arrive in numbering order. It resubscribes
//! by itself after reconnecting (a keepalive makes it reconnect even when
//! idle); what was published meanwhile reaches the hub's position check
//! and hole filling, not the clients as a gap.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};

use redis::aio::ConnectionManager;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::config::{channel_of_topic, Keys};
use super::wire::Fields;
use super::{scripts, Inner};
use crate::engine::{EngineError, Member, Numbered, PresenceChange};

/// Shards of the (un)subscribe ordering.
const ORDER_SHARDS: usize = 64;

/// The pub/sub connection and the channels this node wants streamed.
pub(super) struct Listener {
    conn: ConnectionManager,
    /// Channels with local subscribers (the hub's watches).
    watched: Mutex<HashSet<Arc<str>>>,
    /// (Un)subscribes of one channel run one at a time, each checking
    /// `watched` first, so a quick unwatch then watch of a channel ends
    /// subscribed; channels in different shards proceed in parallel (a
    /// subscribe waiting out a Redis outage does not hold up the others).
    order: [tokio::sync::Mutex<()>; ORDER_SHARDS],
    /// Unwatched topics that still deliver, being unsubscribed.
    strays: Mutex<HashSet<Arc<str>>>,
}

impl Listener {
    pub(super) fn new(conn: ConnectionManager) -> Self {
        Listener {
            conn,
            watched: Mutex::new(HashSet::new()),
            order: std::array::from_fn(|_| tokio::sync::Mutex::new(())),
            strays: Mutex::new(HashSet::new()),
        }
    }

    fn watched(&self) -> std::sync::MutexGuard<'_, HashSet<Arc<str>>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The ordering lock of `channel`'s (un)subscribes.
    fn order(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{Hash, Hasher};
        // Fixed keys: the same channel always maps to the same shard.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        channel.hash(&mut h);
        &self.order[(h.finish() as usize) % ORDER_SHARDS]
    }

    fn strays(&self) -> std::sync::MutexGuard<'_, HashSet<Arc<str>>> {
        self.strays.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn count(&self) -> usize {
        self.watched().len()
    }

    /// A cheap command on the pub/sub connection: makes a connection whose
    /// reconnect attempts ran out try again (and then resubscribe).
    pub(super) async fn keepalive(&self, timeout: std::time::Duration) {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        if let Ok(Err(e)) =
            tokio::time::timeout(timeout, ping.query_async::<Value>(&mut conn)).await
        {
            tracing::debug!(error = %e, "Redis pub/sub keepalive failed");
        }
    }
}

impl Inner {
    /// Subscribes to the channel's topic; resolves once Redis confirmed.
    pub(super) async fn watch(&self, channel: &str) -> Result<(), EngineError> {
        let listener = &self.listener;
        listener.watched().insert(channel.into());
        let _turn = listener.order(channel).lock().await;
        if !listener.watched().contains(channel) {
            return Ok(()); // unwatched meanwhile
        }
        let topic = Keys::new(&self.prefix, channel).topic().to_string();
        let mut conn = listener.conn.clone();
        match tokio::time::timeout(self.timeout, conn.subscribe(&topic)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(scripts::error("subscribe", self.timeout, e)),
            Err(_) => Err(scripts::timed_out("subscribe", self.timeout)),
        }
    }
}

/// Unsubscribes from the channel's topic in the background, unless it is
/// watched again by then.
pub(super) fn unwatch(inner: &Arc<Inner>, channel: &str) {
    inner.listener.watched().remove(channel);
    unsubscribe_unless_watched(inner, channel);
}

/// Unsubscribes in the background from a topic no local subscriber needs.
fn unsubscribe_unless_watched(inner: &Arc<Inner>, channel: &str) {
    let inner = inner.clone();
    let channel: Arc<str> = channel.into();
    tokio::spawn(async move {
        let listener = &inner.listener;
        let _turn = listener.order(&channel).lock().await;
        if listener.watched().contains(&channel) {
            listener.strays().remove(&channel);
            return;
        }
        let topic = Keys::new(&inner.prefix, &channel).topic().to_string();
        let mut conn = listener.conn.clone();
        if let Ok(Err(e)) = tokio::time::timeout(inner.timeout, conn.unsubscribe(&topic)).await {
            tracing::debug!(channel = %channel, error = %e, "Redis unsubscribe failed");
        }
        listener.strays().remove(&channel);
    });
}

/// Delivers what arrives on the pub/sub connection to the hub until the
/// engine is dropped.
pub(super) async fn listen(inner: Weak<Inner>, mut pushes: UnboundedReceiver<PushInfo>) {
    while let Some(push) = pushes.recv().await {
        let Some(inner) = inner.upgrade() else { return };
        match push.kind {
            PushKind::Message => match inner.dispatch(&push.data) {
                Ok(Some(stray)) => {
                    // A topic this node no longer watches: an unsubscribe
                    // that failed while Redis was away was undone by the
                    // reconnect's resubscription. Drop it now.
                    if inner.listener.strays().insert(stray.clone()) {
                        unsubscribe_unless_watched(&inner, &stray);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "ignoring an unreadable pub/sub message"),
            },
            PushKind::Disconnection => {
                tracing::warn!("lost the Redis pub/sub connection; reconnecting and resubscribing");
            }
            _ => {}
        }
    }
}

impl Inner {
    /// One pub/sub message: `[topic, record]`. Returns the channel when
    /// this node does not watch it.
    fn dispatch(&self, data: &[Value]) -> Result<Option<Arc<str>>, EngineError> {
        let (Some(Value::BulkString(topic)), Some(Value::BulkString(record))) =
            (data.first(), data.get(1))
        else {
            return Err(EngineError::Corrupt(
                "pub/sub message without topic and body".into(),
            ));
        };
        let topic = std::str::from_utf8(topic).unwrap_or_default();
        let Some(channel) = channel_of_topic(&self.prefix, topic) else {
            return Ok(None); // not a channel of this deployment
        };
        if !self.listener.watched().contains(channel) {
            return Ok(Some(channel.into()));
        }
        let mut f = Fields::new(record.clone());
        let kind = f.bytes()?;
        let node = f.text()?;
        // Presence changes and ephemerals of this node were delivered here
        // when they happened; numbered messages were not: every node,
        // this one included, takes them from this one stream, in the
        // order Redis numbered them (see `publish`).
        if node == self.node && &kind[..] != b"m" {
            return Ok(None);
        }
        let Some(sink) = self.sink() else {
            return Ok(None);
        };
        match &kind[..] {
            b"m" => sink.numbered(Arc::new(Numbered {
                channel: channel.into(),
                epoch: f.text()?,
                seq: f.number()?,
                id: f.text()?,
                ts: f.number()?,
                publisher: f.text()?,
                payload: f.bytes()?,
            })),
            b"p" => sink.presence(presence_change(channel, &mut f)?),
            b"e" => {
                let publisher = f.text()?;
                sink.ephemeral(channel, &publisher, f.bytes()?);
            }
            other => {
                return Err(EngineError::Corrupt(format!(
                    "unknown pub/sub message kind {:?}",
                    String::from_utf8_lossy(other)
                )))
            }
        }
        Ok(None)
    }
}

/// A presence change record: joined flag, version, session, join order,
/// user, info.
pub(super) fn presence_change(
    channel: &str,
    f: &mut Fields,
) -> Result<PresenceChange, EngineError> {
    let joined = f.flag()?;
    let version = f.number()?;
    let session_id = f.text()?;
    let _order = f.number()?;
    Ok(PresenceChange {
        channel: channel.into(),
        joined,
        version,
        member: Member {
            session_id,
            user: f.text()?,
            info: f.bytes()?,
        },
    })
}
