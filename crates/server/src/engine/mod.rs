//! The engine: the channel state that a deployment shares between its
//! nodes. Numbering and dedupe of publishes, history for resume, stream
//! positions, presence membership, and a stream of numbered messages to
//! every node that has subscribers (this one included).
//!
//! The engine speaks domain types (positions, numbered messages holding
//! shared payload bytes, members), never wire envelopes, and its methods
//! are asynchronous so that an implementation may do network round trips.
//! The node-local side (which sessions on this node subscribe to what, and
//! the per-session ordering guarantees) is the hub's (`crate::hub`); the
//! hub receives the engine's stream through [`EngineSink`].
//!
//! # What an implementation must guarantee
//! - Numbering: per channel, consecutive `seq` from 1 within an epoch,
//!   never reused (SEQ-GAPFREE); a lost channel state shows as a new epoch
//!   (SEQ-EPOCH-STABLE); a duplicate `(channel, user, id)` within the dedupe
//!   window returns the original position with `duplicate: true` and is
//!   neither stored nor streamed (DEDUP-ACK-ORIGINAL, DEDUP-DELIVER-ONCE);
//!   an engine with a per-channel maximum of remembered publishes forgets
//!   the oldest beyond it, never fewer than the last maximum-many
//!   (DEDUP-MAX), and counts them in [`Engine::dedupe_stats`].
//! - Stream: every message numbered on any node reaches [`EngineSink::numbered`]
//!   of every node that [`Engine::watch`]es its channel, after `watch`
//!   resolved, and a channel's messages reach it in numbering order (both
//!   engines here hand a channel's messages over one at a time, in order).
//!   Completeness is *not* required: the hub parks what arrives after a
//!   hole and fills the hole with [`Engine::range`]. It waits a few
//!   milliseconds for a late message first, but one that trails its
//!   successor longer counts as lost: if `range` no longer has it, the
//!   channel's sessions are closed with 4201.
//! - Recovery: [`Engine::recover`] reads the position and the resumed range
//!   atomically with respect to numbering (RESUME-ALL-OR-NOTHING).

mod dedupe;
mod memory;
mod redis;
mod resume;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use bytes::Bytes;
use courier_protocol::v2::RecoveryReason;

pub use self::redis::RedisEngine;
pub use crate::error::EngineError;
pub use memory::{HistoryOverride, HistoryPolicy, MemoryEngine};

/// The future an [`Engine`] method returns.
pub type EngineFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, EngineError>> + Send + 'a>>;

/// A ready [`EngineFuture`] (for engines that answer without I/O).
pub fn ready<'a, T: Send + 'a>(result: Result<T, EngineError>) -> EngineFuture<'a, T> {
    Box::pin(std::future::ready(result))
}

/// A channel's position: its epoch and the `seq` of the last message
/// numbered in it (0 when none has been).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// The epoch (SEQ-EPOCH-FORMAT).
    pub epoch: Arc<str>,
    /// The last `seq` numbered in the epoch.
    pub seq: u64,
}

/// A publish to number, store and stream.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The publisher's idempotency key (`publish.id`, non-empty).
    pub id: Arc<str>,
    /// The channel (a valid name).
    pub channel: Arc<str>,
    /// Canonical MessagePack payload.
    pub payload: Bytes,
    /// The publishing session's id (`message.publisher`); for HTTP publishes
    /// a fresh id.
    pub publisher: Arc<str>,
    /// The publisher identity for dedupe (`welcome.user`; "" for anonymous).
    pub user: Arc<str>,
}

/// A numbered message, as stored in history and streamed to the hubs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Numbered {
    /// The channel.
    pub channel: Arc<str>,
    /// The channel's epoch when it was numbered.
    pub epoch: Arc<str>,
    /// Its number in the epoch.
    pub seq: u64,
    /// The publish id.
    pub id: Arc<str>,
    /// Milliseconds since the Unix epoch when it was numbered.
    pub ts: u64,
    /// The publishing session's id.
    pub publisher: Arc<str>,
    /// Canonical MessagePack payload, shared, never re-parsed.
    pub payload: Bytes,
}

/// What a publish became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Where the message stands (the original's position for a duplicate).
    pub position: Position,
    /// The key was already numbered within the dedupe window.
    pub duplicate: bool,
}

/// The answer to [`Engine::recover`].
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The channel's position at the moment the range was read.
    pub position: Position,
    /// `None` when no resume was asked; the replay (messages after the
    /// resume position up to `position`, in order) or why there is none.
    pub replay: Option<Result<Vec<Arc<Numbered>>, RecoveryReason>>,
}

/// A presence member: one session subscribed to a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The session id.
    pub session_id: Arc<str>,
    /// The session's user (empty when anonymous).
    pub user: Arc<str>,
    /// The token's `info` claim as a payload.
    pub info: Bytes,
}

/// A channel's members with the version of its membership.
#[derive(Debug, Clone, Default)]
pub struct Members {
    /// Members in join order (PRESENCE-QUERY).
    pub members: Vec<Member>,
    /// Version of the membership: every join or leave increments it, and
    /// the matching [`PresenceChange`] carries the new value, so a reader
    /// can tell which changes a snapshot already reflects (PRESENCE-CONSISTENT).
    pub version: u64,
}

/// A join or leave, streamed to the hubs.
#[derive(Debug, Clone)]
pub struct PresenceChange {
    /// The channel.
    pub channel: Arc<str>,
    /// Join (`true`) or leave.
    pub joined: bool,
    /// Who.
    pub member: Member,
    /// The membership version after this change.
    pub version: u64,
}

/// Figures of an engine's dedupe record, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DedupeStats {
    /// Publishes remembered now, all channels.
    pub records: u64,
    /// Heap bytes the record holds (0 when the engine does not know).
    pub bytes: u64,
    /// Publishes forgotten because their channel reached its maximum,
    /// before their dedupe window ended (DEDUP-MAX), since start.
    pub evicted_early: u64,
}

/// Where an engine streams what happens on the channels this node watches.
/// Implemented by the hub; called from any task, never with an engine lock
/// held, and must not block.
pub trait EngineSink: Send + Sync {
    /// A message was numbered (here or on another node).
    fn numbered(&self, message: Arc<Numbered>);
    /// A member joined or left.
    fn presence(&self, change: PresenceChange);
    /// An ephemeral from session `publisher` (EPHEMERAL-NO-SEQ: not numbered, not stored).
    fn ephemeral(&self, channel: &str, publisher: &str, payload: Bytes);
}

/// Channel state shared by the nodes of a deployment. See the module docs
/// for what an implementation must guarantee.
pub trait Engine: Send + Sync + 'static {
    /// Connects the engine's stream to this node's hub. Called once, before
    /// any other method; the engine keeps a weak reference.
    fn attach(&self, sink: Weak<dyn EngineSink>);

    /// Numbers, stores and streams a publish, or recognises a duplicate.
    fn publish(&self, request: PublishRequest) -> EngineFuture<'_, Published>;

    /// The channel's position and, when `resume` is given, the replay after
    /// it or the first applicable reason it cannot be replayed (RESUME-REASON).
    fn recover<'a>(
        &'a self,
        channel: &'a str,
        resume: Option<&'a Position>,
    ) -> EngineFuture<'a, Recovered>;

    /// The stored messages of `epoch` numbered `from..=to`, in order (the
    /// hub fills a hole in the stream with it). Missing ones are left out.
    fn range<'a>(
        &'a self,
        channel: &'a str,
        epoch: &'a str,
        from: u64,
        to: u64,
    ) -> EngineFuture<'a, Vec<Arc<Numbered>>>;

    /// Starts streaming `channel` to this node; the stream is active when
    /// the future resolves (the hub reads the position only after that).
    fn watch<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, ()>;

    /// Stops streaming `channel` to this node (no local subscriber left).
    fn unwatch(&self, channel: &str);

    /// Adds `member` to the channel's presence and streams the join.
    fn join<'a>(&'a self, channel: &'a str, member: Member) -> EngineFuture<'a, ()>;

    /// Removes session `session_id` from the channel's presence and streams
    /// the leave (nothing when it was not a member).
    fn leave<'a>(&'a self, channel: &'a str, session_id: &'a str) -> EngineFuture<'a, ()>;

    /// The channel's members, in join order, with the membership version.
    fn members<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, Members>;

    /// Streams an ephemeral to every node watching the channel.
    fn ephemeral<'a>(
        &'a self,
        channel: &'a str,
        publisher: &'a str,
        payload: Bytes,
    ) -> EngineFuture<'a, ()>;

    /// Channels with state on this engine (metrics).
    fn channel_count(&self) -> usize;

    /// The dedupe record's figures (metrics; called at scrape time, so it
    /// may walk the channels). Default: nothing known.
    fn dedupe_stats(&self) -> DedupeStats {
        DedupeStats::default()
    }

    /// Drops expired history and dedupe entries and forgets idle channels.
    /// Called about once a second.
    fn sweep(&self) {}

    /// Whether the stream is complete: every message reaches
    /// [`EngineSink::numbered`], in numbering order, before its `publish`
    /// resolves (an in-process stream). Such a stream has no holes, so the
    /// hub skips its once-a-second position check, which could otherwise
    /// take a message still being handed over for a lost one. Default:
    /// `false` (a networked stream can lose messages while it reconnects).
    fn stream_is_complete(&self) -> bool {
        false
    }
}
