//! The Redis engine: channel state shared by every node of a deployment
//! that points at one Redis (docs/deploy.md). Numbering, history, dedupe
//! and presence live in Redis and change only through Lua scripts, each
//! one atomic step (`scripts/`); messages, presence changes and ephemerals
//! reach the other nodes by Redis pub/sub, which is at most once: the hub
//! fills any hole from the history stream (`Engine::range`) and its
//! position check finds lost tails, so pub/sub loss never reaches a client
//! as a gap.
//!
//! Files: `config.rs` (key layout, connections), `scripts.rs` (loading
//! and running the scripts), `publish.rs`, `recover.rs` (resume and
//! range), `listener.rs` (the pub/sub connection, watch/unwatch),
//! `presence.rs` (members with expiry refreshed by each node), `wire.rs`
//! (the byte format of script results and pub/sub messages).

mod config;
mod listener;
mod presence;
mod publish;
mod recover;
mod scripts;
mod wire;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use redis::aio::ConnectionManager;
use redis::ScriptInvocation;

use super::{
    Engine, EngineError, EngineFuture, EngineSink, HistoryPolicy, Member, Members, Numbered,
    Position, PublishRequest, Published, Recovered,
};
use crate::config::EngineConfig;
use crate::{base36, now_ms};

/// An [`Engine`] keeping channel state in Redis, shared by the nodes of a
/// deployment: a restarted node keeps every channel's epoch and history,
/// and clients resume on any node (docs/deploy.md).
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use courier_server::engine::{HistoryPolicy, RedisEngine};
/// use courier_server::{EngineConfig, EngineKind, ServerBuilder, ServerConfig};
///
/// let mut config = ServerConfig::default();
/// config.engine.kind = EngineKind::Redis;
/// config.engine.url = "redis://127.0.0.1:6379/0".into();
/// // `courier serve` and `ServerBuilder` build it from `[engine]` alone;
/// // an embedding application may build it itself:
/// let engine = RedisEngine::new(&config.engine, HistoryPolicy {
///     history_size: 300,
///     history_ttl: Duration::from_secs(300),
///     dedupe_window: Duration::from_secs(120),
///     dedupe_max_per_channel: 100_000,
///     overrides: Vec::new(),
/// })?;
/// let server = ServerBuilder::new(config).engine(Arc::new(engine)).start().await?;
/// # let _ = server; Ok(()) }
/// ```
pub struct RedisEngine {
    inner: Arc<Inner>,
}

/// The state shared by the engine's methods and its background tasks.
struct Inner {
    /// This node's id in pub/sub messages (its own are not delivered twice).
    node: Arc<str>,
    prefix: String,
    policy: HistoryPolicy,
    pool: Vec<ConnectionManager>,
    next: AtomicUsize,
    timeout: Duration,
    presence_ttl: Duration,
    sink: OnceLock<Weak<dyn EngineSink>>,
    /// Dedupe keys forgotten because a channel reached its maximum before
    /// their window ended (DEDUP-MAX), since start.
    dedupe_evicted_early: std::sync::atomic::AtomicU64,
    listener: listener::Listener,
    members: presence::LocalMembers,
}

impl RedisEngine {
    /// An engine for `config` (`[engine]`: url, key prefix, timeouts, pool
    /// size, presence TTL) with `policy`'s history and dedupe limits. Must
    /// be called inside a tokio runtime: it starts the pub/sub listener,
    /// the presence heartbeat and the loading of the scripts. Connections
    /// are made lazily: a node starts while Redis is down (requests then
    /// fail with the retryable [`EngineError::Unavailable`] until it is
    /// back); only an invalid URL or CA file fails here.
    pub fn new(config: &EngineConfig, policy: HistoryPolicy) -> Result<Self, EngineError> {
        let pool = config::command_pool(config)?;
        let (pushes, received) = tokio::sync::mpsc::unbounded_channel();
        let pubsub = config::pubsub(config, pushes)?;
        let inner = Arc::new(Inner {
            node: format!("{}{}", base36(now_ms()), base36(fastrand::u64(..))).into(),
            prefix: config.key_prefix.clone(),
            policy,
            pool,
            next: AtomicUsize::new(0),
            timeout: Duration::from_millis(config.command_timeout_ms),
            presence_ttl: Duration::from_millis(config.presence_ttl_ms),
            sink: OnceLock::new(),
            dedupe_evicted_early: std::sync::atomic::AtomicU64::new(0),
            listener: listener::Listener::new(pubsub),
            members: presence::LocalMembers::default(),
        });
        tokio::spawn(listener::listen(Arc::downgrade(&inner), received));
        tokio::spawn(presence::heartbeat(Arc::downgrade(&inner)));
        let loader = inner.clone();
        let url = config.url.clone();
        tokio::spawn(async move {
            if let Err(e) = loader.load_scripts().await {
                tracing::warn!(%url, error = %e, "Redis is not reachable yet; requests fail with a retryable error until it is");
            }
        });
        Ok(RedisEngine { inner })
    }
}

impl Inner {
    /// A command connection (round robin over the pool).
    fn conn(&self) -> ConnectionManager {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.pool.len();
        self.pool[i].clone()
    }

    fn sink(&self) -> Option<Arc<dyn EngineSink>> {
        self.sink.get().and_then(Weak::upgrade)
    }

    /// Runs a script on a pooled connection within the command timeout.
    async fn run(
        &self,
        op: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Vec<u8>, EngineError> {
        scripts::run(op, &mut self.conn(), invocation, self.timeout).await
    }

    /// Loads every script once (EVALSHA finds them; a Redis that lost them
    /// answers `NOSCRIPT` and the script is loaded again).
    async fn load_scripts(&self) -> Result<(), EngineError> {
        let mut conn = self.conn();
        for script in scripts::all() {
            match tokio::time::timeout(self.timeout, script.load_async(&mut conn)).await {
                Err(_) => return Err(scripts::timed_out("load scripts", self.timeout)),
                Ok(Err(e)) => return Err(scripts::error("load scripts", self.timeout, e)),
                Ok(Ok(_)) => {}
            }
        }
        Ok(())
    }

    /// A fresh epoch, used by a script only when the channel has no state:
    /// time and 64 random bits make it differ from every earlier epoch of
    /// the channel (SEQ-EPOCH-STABLE, SEQ-EPOCH-FORMAT).
    fn new_epoch() -> String {
        format!("{}{}", base36(now_ms()), base36(fastrand::u64(..)))
    }

    /// How long a channel's epoch and seq outlive its last publish, resume
    /// or member refresh: as long as anything a client could resume or
    /// dedupe against may exist.
    fn state_ttl_ms(&self, history_ttl: Duration) -> u64 {
        history_ttl
            .max(self.policy.dedupe_window)
            .max(self.presence_ttl)
            .as_millis()
            .max(1) as u64
    }
}

impl Engine for RedisEngine {
    fn attach(&self, sink: Weak<dyn EngineSink>) {
        let _ = self.inner.sink.set(sink);
    }

    fn publish(&self, request: PublishRequest) -> EngineFuture<'_, Published> {
        Box::pin(self.inner.publish(request))
    }

    fn recover<'a>(
        &'a self,
        channel: &'a str,
        resume: Option<&'a Position>,
    ) -> EngineFuture<'a, Recovered> {
        Box::pin(self.inner.recover(channel, resume))
    }

    fn range<'a>(
        &'a self,
        channel: &'a str,
        epoch: &'a str,
        from: u64,
        to: u64,
    ) -> EngineFuture<'a, Vec<Arc<Numbered>>> {
        Box::pin(self.inner.range(channel, epoch, from, to))
    }

    fn watch<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(self.inner.watch(channel))
    }

    fn unwatch(&self, channel: &str) {
        listener::unwatch(&self.inner, channel);
    }

    fn join<'a>(&'a self, channel: &'a str, member: Member) -> EngineFuture<'a, ()> {
        Box::pin(self.inner.join(channel, member))
    }

    fn leave<'a>(&'a self, channel: &'a str, session_id: &'a str) -> EngineFuture<'a, ()> {
        Box::pin(self.inner.leave(channel, session_id))
    }

    fn members<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, Members> {
        Box::pin(self.inner.members(channel))
    }

    fn ephemeral<'a>(
        &'a self,
        channel: &'a str,
        publisher: &'a str,
        payload: Bytes,
    ) -> EngineFuture<'a, ()> {
        Box::pin(self.inner.ephemeral(channel, publisher, payload))
    }

    /// The channels this node streams from Redis (those with local
    /// subscribers); the others' state lives in Redis.
    fn channel_count(&self) -> usize {
        self.inner.listener.count()
    }
}
