//! The values the client hands to the application: delivered messages,
//! subscription events, connection events and acknowledgements.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::{self, RecoveryReason};
use courier_protocol::wire::{self, PayloadError};
use courier_protocol::Subprotocol;
use serde::de::DeserializeOwned;

use crate::error::{ClientError, SubscribeError};

/// A point in a channel's stream: (epoch, seq).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// One life of the channel's numbering; opaque, compared for equality.
    pub epoch: String,
    /// Sequence number of the last message (0: none yet in this epoch).
    pub seq: u64,
}

impl From<v2::StreamPosition> for Position {
    fn from(p: v2::StreamPosition) -> Self {
        Position {
            epoch: p.epoch,
            seq: p.seq,
        }
    }
}

impl From<Position> for v2::StreamPosition {
    fn from(p: Position) -> Self {
        v2::StreamPosition {
            epoch: p.epoch,
            seq: p.seq,
        }
    }
}

/// A published message delivered on a subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Channel name.
    pub channel: String,
    /// The channel's epoch.
    pub epoch: String,
    /// Sequence number, gap-free within the epoch.
    pub seq: u64,
    /// The publisher's dedupe id.
    pub id: String,
    /// When the server numbered it (ms since the Unix epoch; informational).
    pub ts: u64,
    /// The payload: canonical MessagePack of a JSON-model value.
    pub payload: Bytes,
    /// Session id of the publisher (empty for server-published messages).
    pub publisher: String,
}

impl Message {
    /// Decodes the payload into `T` (a generated payload type, or any serde type).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        wire::from_payload(&self.payload)
    }

    /// The payload as a JSON value.
    pub fn json(&self) -> Result<serde_json::Value, PayloadError> {
        wire::payload::to_json(&self.payload)
    }

    /// The message's position.
    pub fn position(&self) -> Position {
        Position {
            epoch: self.epoch.clone(),
            seq: self.seq,
        }
    }
}

impl From<v2::Message> for Message {
    fn from(m: v2::Message) -> Self {
        Message {
            channel: m.channel,
            epoch: m.epoch,
            seq: m.seq,
            id: m.id,
            ts: m.ts,
            payload: m.payload,
            publisher: m.publisher,
        }
    }
}

/// The outcome of a (re)subscription's resume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No resume was asked for (first subscription).
    NotRequested,
    /// Every missed message follows, in order.
    Recovered {
        /// How many messages the server replays.
        replayed: u64,
    },
    /// Messages may have been lost (RESUME-CLIENT-REPORT); delivery
    /// continues from the ack's position.
    Failed {
        /// Why the server could not replay.
        reason: RecoveryReason,
    },
}

impl From<Option<v2::Recovery>> for Recovery {
    fn from(r: Option<v2::Recovery>) -> Self {
        let Some(r) = r else {
            return Recovery::NotRequested;
        };
        match v2::RecoveryStatus::try_from(r.status) {
            Ok(v2::RecoveryStatus::Recovered) => Recovery::Recovered {
                replayed: r.replayed,
            },
            Ok(v2::RecoveryStatus::Failed) => Recovery::Failed {
                reason: RecoveryReason::try_from(r.reason).unwrap_or(RecoveryReason::Unspecified),
            },
            _ => Recovery::NotRequested,
        }
    }
}

/// A member of a channel's presence.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceMember {
    /// The member's session id.
    pub session_id: String,
    /// The member's user (`welcome.user`).
    pub user: String,
    /// Application information set by the server (canonical MessagePack; may be empty).
    pub info: Bytes,
}

impl From<v2::PresenceMember> for PresenceMember {
    fn from(m: v2::PresenceMember) -> Self {
        PresenceMember {
            session_id: m.session_id,
            user: m.user,
            info: m.info,
        }
    }
}

/// Something that happened on a subscription, in stream order.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscriptionEvent {
    /// A message, delivered exactly once and in `seq` order.
    Message(Message),
    /// The subscription was (re)established: after the first subscribe and
    /// after every resubscribe (reconnect or gap). A `Recovery::Failed`
    /// means possible message loss; delivery continues from `position`.
    Subscribed {
        /// The channel's position at the ack.
        position: Position,
        /// The resume outcome.
        recovery: Recovery,
    },
    /// A gap was detected (a message numbered past the next expected one,
    /// or a new epoch); the client resubscribes from `last` and reports
    /// the recovery outcome in the following `Subscribed`.
    Gap {
        /// The last position delivered.
        last: Position,
        /// The position of the message that revealed the gap.
        received: Position,
    },
    /// A member joined the channel (feature `presence`).
    Joined(PresenceMember),
    /// A member left the channel (feature `presence`).
    Left(PresenceMember),
    /// A transient message (feature `ephemeral`).
    Ephemeral {
        /// Canonical MessagePack payload.
        payload: Bytes,
        /// Sender's session id.
        publisher: String,
    },
    /// The subscription ended without the application asking: the server
    /// refused a resubscribe (`FORBIDDEN` after a token change, ...) or the
    /// client stopped. No further events follow.
    Ended(SubscribeError),
}

/// A connection state change, from [`crate::Client::events`].
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectionEvent {
    /// A session is open (`welcome` received).
    Connected {
        /// The negotiated subprotocol.
        subprotocol: Subprotocol,
        /// The server's session id.
        session_id: String,
        /// The authenticated user (empty when anonymous).
        user: String,
    },
    /// The connection ended with `code` (1006 when lost without a close
    /// frame, 4200 when the client's heartbeat deadline passed).
    Disconnected {
        /// The deciding close code.
        code: u16,
        /// The reason text.
        reason: String,
    },
    /// The client waits `delay` before attempt number `attempt`.
    Reconnecting {
        /// 1 for the first retry after a close.
        attempt: u32,
        /// The wait before connecting.
        delay: Duration,
    },
    /// The client stopped for good; every call now fails with this error.
    Terminal(Arc<ClientError>),
    /// The client was closed by the application.
    Closed,
}

/// A publish acknowledged by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishAck {
    /// The dedupe id the publish carried.
    pub id: String,
    /// Channel name.
    pub channel: String,
    /// The channel's epoch when the message was numbered.
    pub epoch: String,
    /// The message's sequence number.
    pub seq: u64,
    /// True when the server had already numbered this id (a resend).
    pub duplicate: bool,
}

impl From<v2::PublishAck> for PublishAck {
    fn from(a: v2::PublishAck) -> Self {
        PublishAck {
            id: a.id,
            channel: a.channel,
            epoch: a.epoch,
            seq: a.seq,
            duplicate: a.duplicate,
        }
    }
}
