//! The checks and the engine call behind `subscribe`, `publish` and
//! `ephemeral`, shared by every way a request arrives (a session's frames,
//! `POST /publish`): one validation, one set of error codes and texts, one
//! metric per accepted publish.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use courier_protocol::v2;
use courier_protocol::v2::ErrorCode;

use super::Env;
use crate::auth::{Identity, Operation};
use crate::engine::{EngineError, PublishRequest};

/// A request answered with an `error` instead of its reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// ERR-RETRY-AFTER.
    pub retry_after_ms: Option<u64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: impl ToString) -> Self {
        Refusal {
            code,
            message: message.to_string(),
            retry_after_ms: None,
        }
    }

    pub(crate) fn not_subscribed(channel: &str) -> Self {
        Refusal::new(
            ErrorCode::NotSubscribed,
            format!("not subscribed to `{channel}`"),
        )
    }

    /// The `error` envelope body answering request `id`.
    pub(crate) fn into_error(self, id: &str, channel: &str) -> v2::Error {
        v2::Error {
            id: id.to_string(),
            code: self.code as i32,
            message: self.message,
            channel: channel.to_string(),
            retry_after_ms: self.retry_after_ms,
        }
    }
}

impl From<EngineError> for Refusal {
    fn from(e: EngineError) -> Self {
        // ERR-ENGINE-UNAVAILABLE: ERROR_CODE_INTERNAL, which the client may
        // retry with the same id, with a wait when one is known. The
        // message is the variant's stable text; the detail is logged.
        tracing::warn!(error = %e, "engine request failed");
        let message = match &e {
            EngineError::Unavailable(_) | EngineError::TimedOut { .. } => {
                "engine temporarily unavailable, retry"
            }
            EngineError::Backend(_) | EngineError::Corrupt(_) => "engine error",
        };
        Refusal {
            code: ErrorCode::Internal,
            message: message.to_string(),
            retry_after_ms: e.retry_after_ms(),
        }
    }
}

/// CHAN-NAME.
fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c.is_control() && (c as u32) < 0x80)
}

impl Env {
    /// CHAN-NAME, AUTHZ-PER-OPERATION, AUTHZ-DENIAL-IS-ERROR, then
    /// LIMIT-SUBSCRIPTIONS when `limit` is given (a new subscription).
    pub(crate) fn check_subscribe(
        &self,
        identity: &Identity,
        channel: &str,
        held: usize,
        limit: Option<usize>,
    ) -> Result<(), Refusal> {
        if !valid_channel(channel) {
            return Err(Refusal::new(ErrorCode::BadRequest, "invalid channel name"));
        }
        if !self.authz.allows(Operation::Subscribe, channel, identity) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "not allowed to subscribe to this channel",
            ));
        }
        if limit.is_some_and(|max| held >= max) {
            return Err(Refusal::new(
                ErrorCode::TooManySubscriptions,
                "too many subscriptions",
            ));
        }
        Ok(())
    }

    /// CHAN-NAME, AUTHZ-PER-OPERATION for `publish` and `ephemeral`.
    pub(crate) fn check_publish(&self, identity: &Identity, channel: &str) -> Result<(), Refusal> {
        if !valid_channel(channel) {
            return Err(Refusal::new(ErrorCode::BadRequest, "invalid channel name"));
        }
        if !self.authz.allows(Operation::Publish, channel, identity) {
            return Err(Refusal::new(
                ErrorCode::Forbidden,
                "not allowed to publish to this channel",
            ));
        }
        Ok(())
    }

    /// DEDUP-ID-REQUIRED and the publish checks, then numbering by the
    /// engine: the `publish_ack` answering `p`. `publisher` is the session
    /// id the message carries.
    pub(crate) async fn publish(
        &self,
        identity: &Identity,
        publisher: Arc<str>,
        p: v2::Publish,
    ) -> Result<v2::PublishAck, Refusal> {
        if p.id.is_empty() {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "publish needs a non-empty id",
            ));
        }
        self.check_publish(identity, &p.channel)?;
        let request = PublishRequest {
            id: p.id.as_str().into(),
            channel: p.channel.as_str().into(),
            payload: p.payload,
            publisher,
            user: identity.user.clone(),
        };
        let published = self.hub.engine().publish(request).await?;
        self.metrics.publishes.fetch_add(1, Ordering::Relaxed);
        Ok(v2::PublishAck {
            id: p.id,
            channel: p.channel,
            epoch: published.position.epoch.to_string(),
            seq: published.position.seq,
            duplicate: published.duplicate,
        })
    }
}
