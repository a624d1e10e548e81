//! The `Broker` trait: channel state (numbering, history, dedupe, members)
//! behind one interface, so a distributed backend can replace the embedded
//! [`MemoryBroker`] without touching connection handling.

mod memory;

use std::sync::Arc;

use bytes::Bytes;
use courier_protocol::v2;

pub use crate::error::BrokerError;
use crate::frame::SharedFrame;
pub use memory::{HistoryPolicy, MemoryBroker};

/// The memory broker's injected faults (feature `faults`).
pub(crate) fn memory_faults(
    skip_seq: bool,
    seq_from_zero: bool,
    redeliver_duplicate: bool,
    resume_out_of_order: bool,
    data_before_ack: bool,
) -> memory::BrokerFaults {
    memory::BrokerFaults {
        skip_seq,
        seq_from_zero,
        redeliver_duplicate,
        resume_out_of_order,
        data_before_ack,
    }
}

/// A session as the broker sees it: where to put frames for it.
///
/// Implementations must not block: `deliver` and `reply` are called with
/// the channel's lock held, and return `false` when the session is gone or
/// closing (the frame is then dropped; the session unsubscribes itself).
pub trait Subscriber: Send + Sync {
    /// The member this session appears as in presence (session id, user, info).
    fn member(&self) -> &v2::PresenceMember;
    /// The session id.
    fn session_id(&self) -> &str {
        &self.member().session_id
    }
    /// Whether the session enabled `presence` (receives `presence_event`).
    fn wants_presence(&self) -> bool;
    /// Whether the session enabled `ephemeral` (receives `ephemeral`).
    fn wants_ephemeral(&self) -> bool;
    /// Queues a frame shared with other sessions.
    fn deliver(&self, frame: &Arc<SharedFrame>) -> bool;
    /// Queues an envelope for this session only (a reply).
    fn reply(&self, envelope: v2::Envelope) -> bool;
}

/// A publish to number, store and deliver.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The publisher's idempotency key (`publish.id`, non-empty).
    pub id: String,
    /// The channel (a valid name).
    pub channel: String,
    /// Canonical MessagePack payload.
    pub payload: Bytes,
    /// The publishing session's id (`message.publisher`); empty for the server.
    pub publisher: Arc<str>,
    /// The publisher identity for dedupe (`welcome.user`; "" for anonymous).
    pub user: Arc<str>,
}

/// Channel state and fan-out.
///
/// Every method that answers a session (`subscribe`, `presence`) queues its
/// reply through [`Subscriber::reply`] while it holds the channel's state,
/// so the reply is ordered exactly against the channel's deliveries
/// (ORDER-ACK-BEFORE-DATA, PRESENCE-CONSISTENT).
pub trait Broker: Send + Sync + 'static {
    /// Subscribes (or re-subscribes, ORDER-IDEMPOTENT-SUBSCRIBE) `subscriber`
    /// to `channel`: queues the `subscribe_ack` answering `request_id`, then
    /// the replay when `resume` recovers, and registers the session for
    /// every message numbered after the ack. A new member's join is sent to
    /// the other members (PRESENCE-JOIN-LEAVE). Returns the ack sent.
    fn subscribe(
        &self,
        request_id: &str,
        channel: &str,
        resume: Option<&v2::StreamPosition>,
        subscriber: Arc<dyn Subscriber>,
    ) -> Result<v2::SubscribeAck, BrokerError>;

    /// Removes the session from `channel` (no-op when not subscribed) and
    /// sends its leave to the remaining members.
    fn unsubscribe(&self, channel: &str, session_id: &str);

    /// Numbers, stores and delivers a publish, or recognises a duplicate
    /// (DEDUP-ACK-ORIGINAL). Returns the `publish_ack` (without the request id).
    fn publish(&self, request: PublishRequest) -> Result<v2::PublishAck, BrokerError>;

    /// Relays an ephemeral from `sender`, a member of `channel`, to the other
    /// members that enabled `ephemeral` (EPHEMERAL-NO-SEQ).
    fn ephemeral(
        &self,
        channel: &str,
        payload: Bytes,
        sender: &dyn Subscriber,
    ) -> Result<(), BrokerError>;

    /// Queues the `presence` reply to `request_id` for `asker`, a member of
    /// `channel` (PRESENCE-QUERY).
    fn presence(
        &self,
        request_id: &str,
        channel: &str,
        asker: &dyn Subscriber,
    ) -> Result<(), BrokerError>;

    /// Number of channels with state, for metrics.
    fn channel_count(&self) -> usize;

    /// Drops expired history and dedupe entries and forgets idle channels.
    /// Called about once a second.
    fn sweep(&self) {}
}
