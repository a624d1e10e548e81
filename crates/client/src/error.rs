//! Client errors, split by concern: the client as a whole ([`ClientError`])
//! and each kind of request ([`PublishError`], [`SubscribeError`],
//! [`RequestError`]).

use std::sync::Arc;
use std::time::Duration;

use courier_protocol::v2::ErrorCode;
use courier_protocol::{EncodeError, Subprotocol};

/// Why the client stopped for good. Reported once through
/// [`crate::ConnectionEvent::Terminal`] and then by every call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server closed with a terminal code (CLOSE-TERMINAL-NO-RECONNECT:
    /// 1002, 1007, 1009, 4000–4099). Fix the cause (credentials, protocol
    /// bug, oversized frame) before creating a new client.
    #[error("server closed the connection with terminal code {code}: {reason}")]
    TerminalClose {
        /// The close code.
        code: u16,
        /// The reason text.
        reason: String,
    },
    /// The server supports none of the offered subprotocols (4002, or a
    /// handshake that selected none). Offer one of `supported`.
    #[error("no common protocol version; server supports {supported:?}")]
    UnsupportedVersion {
        /// What the server lists in its 4002 reason (may be empty).
        supported: Vec<Subprotocol>,
        /// The close reason, if any.
        reason: String,
    },
    /// The handshake selected a subprotocol the client did not offer
    /// (VER-CLIENT-VERIFY). The server is not a conforming Courier server.
    #[error("server selected `{0}`, which was not offered")]
    UnexpectedSubprotocol(String),
    /// The configured maximum number of reconnect attempts failed.
    /// Check the server's availability, then create a new client.
    #[error("gave up after {attempts} reconnect attempts (last: {last})")]
    AttemptsExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// New credentials were needed (4300–4399) and the token provider had
    /// none (CLOSE-REFRESH). Sign the user in again.
    #[error("credentials needed and the token provider returned none: {0}")]
    NoCredentials(String),
    /// The configuration is unusable (bad URL, no offers). Fix it.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The application closed the client.
    #[error("the client was closed")]
    Closed,
}

/// Why a publish failed. A publish that is still queued is never dropped
/// silently: it resolves with an ack or one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PublishError {
    /// The offline queue is full (CLIENT-OFFLINE-QUEUE). Wait for acks or
    /// the reconnect, then publish again.
    #[error("the publish queue is full ({0} publishes waiting)")]
    QueueFull(usize),
    /// The encoded publish exceeds the server's `max_message_bytes`
    /// (LIMIT-MESSAGE-SIZE). Send a smaller payload.
    #[error("publish of {size} bytes exceeds the server limit of {limit} bytes")]
    TooLarge {
        /// Encoded frame size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The payload could not be encoded. Fix the value.
    #[error("cannot encode the payload: {0}")]
    Encode(String),
    /// The server refused it with an `error`. `INTERNAL` may be retried with
    /// the same id ([`crate::Client::publish_with_id`]) after `retry_after`.
    #[error("server refused the publish: {code:?}: {message}")]
    Rejected {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// v2 retry hint.
        retry_after: Option<Duration>,
    },
    /// The publish waited longer than the dedupe window since it was first
    /// sent (CLIENT-OFFLINE-EXPIRY): a resend could be numbered twice.
    /// Decide in the application whether to publish it again.
    #[error("the publish expired in the offline queue (first sent over the dedupe window ago)")]
    Expired,
    /// The client stopped (closed or terminal) before the ack.
    #[error("the client stopped: {0}")]
    Stopped(Arc<ClientError>),
}

impl From<EncodeError> for PublishError {
    fn from(e: EncodeError) -> Self {
        PublishError::Encode(e.to_string())
    }
}

/// Why a subscription failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubscribeError {
    /// The server refused it (`FORBIDDEN`, `TOO_MANY_SUBSCRIPTIONS`,
    /// `BAD_REQUEST`). Not retried automatically (AUTHZ-NO-AUTO-RETRY).
    #[error("server refused the subscription: {code:?}: {message}")]
    Rejected {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
    },
    /// The client already has a subscription to this channel; use it, or
    /// drop it first.
    #[error("already subscribed to `{0}`")]
    AlreadySubscribed(String),
    /// The client stopped before the subscription was acknowledged.
    #[error("the client stopped: {0}")]
    Stopped(Arc<ClientError>),
}

/// Why a request/reply call (`rpc`, `presence`, `refresh`) failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// The server answered with an `error`.
    #[error("server error {code:?}: {message}")]
    Server {
        /// The error code.
        code: ErrorCode,
        /// The server's message.
        message: String,
        /// v2 retry hint (ERR-RETRY-AFTER).
        retry_after: Option<Duration>,
    },
    /// No reply within the call timeout; the call may still have run.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection closed while the call was in flight, or there was no
    /// session. Calls are not retried: they carry no idempotency key.
    #[error("not connected")]
    NotConnected,
    /// The arguments could not be encoded, or the reply not decoded into
    /// the requested type.
    #[error("payload: {0}")]
    Payload(String),
    /// The client stopped.
    #[error("the client stopped: {0}")]
    Stopped(Arc<ClientError>),
}
