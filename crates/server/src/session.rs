//! The protocol state of one open session, independent of the transport:
//! hello/welcome, requests and their replies, refresh and re-auth, and the
//! periodic checks (heartbeat, expiry). WebSocket and SSE drive it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::ErrorCode;
use courier_protocol::{close, v2, Subprotocol, Version};

use crate::auth::{Identity, Operation};
use crate::broker::{BrokerError, PublishRequest};
use crate::outbox::{Features, Outbox};
use crate::rpc::RpcContext;
use crate::server::Shared;

/// Feature names in `hello.features` / `welcome.features`.
pub const FEATURES: [&str; 5] = ["presence", "ephemeral", "rpc", "batch", "reauth"];

/// A close the session decided on: code and reason.
pub(crate) type Close = (u16, String);

/// FEATURE-NEGOTIATION: the requested features the server offers for `version`.
pub(crate) fn negotiate_features(
    shared: &Shared,
    requested: &[String],
    version: Version,
) -> (Features, Vec<String>) {
    let mut bits = 0u8;
    let mut names = Vec::new();
    for (i, name) in FEATURES.iter().enumerate() {
        let v2_only = matches!(*name, "batch" | "reauth");
        if requested.iter().any(|r| r == name)
            && shared.features.has(1 << i)
            && (!v2_only || version == Version::V2)
        {
            bits |= 1 << i;
            names.push(name.to_string());
        }
    }
    (Features(bits), names)
}

/// WELCOME-FIELDS.
pub(crate) fn welcome(
    shared: &Shared,
    sp: Subprotocol,
    session_id: &str,
    features: Vec<String>,
    identity: &Identity,
) -> v2::Envelope {
    let c = &shared.config;
    let encoding = match sp.encoding {
        courier_protocol::Encoding::Json => v2::Encoding::Json,
        courier_protocol::Encoding::MsgPack => v2::Encoding::Msgpack,
        courier_protocol::Encoding::Protobuf => v2::Encoding::Protobuf,
    };
    v2::Envelope {
        body: Some(Body::Welcome(v2::Welcome {
            version: sp.version.number(),
            encoding: encoding as i32,
            session_id: session_id.to_string(),
            features,
            heartbeat_interval_ms: c.heartbeat_interval_ms,
            heartbeat_grace_ms: c.heartbeat_grace_ms,
            dedupe_window_ms: c.dedupe_window_ms,
            limits: Some(v2::Limits {
                max_message_bytes: c.max_message_bytes,
                max_messages_per_second: c.max_messages_per_second,
                max_burst: c.max_burst,
                send_queue_frames: c.send_queue_frames,
                max_subscriptions: c.max_subscriptions,
                history_size: c.history_size,
                history_ttl_ms: c.history_ttl_ms,
                max_batch: c.max_batch,
            }),
            token_expires_at_ms: identity.expires_at_ms,
            server: c.server_name.clone(),
            user: identity.user.to_string(),
        })),
    }
}

/// CHAN-NAME.
pub(crate) fn valid_channel(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| c.is_control() && (c as u32) < 0x80)
}

/// Token bucket for LIMIT-RATE.
pub(crate) struct RateLimit {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    last: Instant,
}

impl RateLimit {
    pub(crate) fn new(per_sec: u32, burst: u32) -> Self {
        RateLimit {
            tokens: burst as f64,
            burst: burst as f64,
            per_sec: per_sec as f64,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens; false when the bucket runs empty.
    pub(crate) fn take(&mut self, n: usize, now: Instant) -> bool {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.per_sec).min(self.burst);
        if self.tokens < n as f64 {
            return false;
        }
        self.tokens -= n as f64;
        true
    }
}

/// An open session.
pub(crate) struct Session {
    pub shared: Arc<Shared>,
    pub outbox: Arc<Outbox>,
    pub identity: Identity,
    pub subscriptions: Vec<Arc<str>>,
    pub rate: RateLimit,
    pub last_rx: Instant,
    pub last_ping: Instant,
    pub next_reauth: Option<Instant>,
    pub reauth_deadline: Option<Instant>,
    rpc_in_flight: Arc<AtomicU32>,
}

impl Session {
    pub(crate) fn new(shared: Arc<Shared>, outbox: Arc<Outbox>, identity: Identity) -> Self {
        let now = Instant::now();
        let rate = RateLimit::new(
            shared.config.max_messages_per_second,
            shared.config.max_burst,
        );
        let mut s = Session {
            shared,
            outbox,
            identity,
            subscriptions: Vec::new(),
            rate,
            last_rx: now,
            last_ping: now,
            next_reauth: None,
            reauth_deadline: None,
            rpc_in_flight: Arc::new(AtomicU32::new(0)),
        };
        s.schedule_reauth(now);
        s
    }

    fn session_id(&self) -> &str {
        &self.outbox.member_ref().session_id
    }

    fn schedule_reauth(&mut self, now: Instant) {
        let eligible = self.outbox.subprotocol().version == Version::V2
            && self.outbox.features().has(Features::REAUTH);
        self.next_reauth = match self.shared.config.auth.reauth_after_ms {
            Some(ms) if eligible => Some(now + Duration::from_millis(ms)),
            _ => None,
        };
    }

    fn error(&self, id: &str, code: ErrorCode, message: impl Into<String>, channel: &str) {
        self.outbox.send(&v2::Envelope {
            body: Some(Body::Error(v2::Error {
                id: id.to_string(),
                code: code as i32,
                message: message.into(),
                channel: channel.to_string(),
                retry_after_ms: None,
            })),
        });
    }

    fn send(&self, body: Body) {
        self.outbox.send(&v2::Envelope { body: Some(body) });
    }

    /// Counts `n` envelopes against the rate limit (LIMIT-RATE).
    pub(crate) fn charge(&mut self, n: usize, now: Instant) -> Result<(), Close> {
        if self.rate.take(n, now) {
            Ok(())
        } else {
            let c = &self.shared.config;
            Err((
                close::RATE_LIMITED,
                format!(
                    "rate limit exceeded: {} msg/s, burst {}",
                    c.max_messages_per_second, c.max_burst
                ),
            ))
        }
    }

    /// Processes one envelope of an open session (SESSION-IN-ORDER).
    pub(crate) fn handle(&mut self, envelope: v2::Envelope) -> Result<(), Close> {
        let Some(body) = envelope.body else {
            return Err((close::UNKNOWN_TYPE, "envelope without a type".into()));
        };
        match body {
            Body::Hello(_) => return Err((close::PROTOCOL_VIOLATION, "second hello".into())),
            Body::Batch(batch) => {
                // BATCH-V2-ONLY, BATCH-NO-NESTING, BATCH-MAX: checked before
                // any entry is processed.
                if !self.outbox.features().has(Features::BATCH) {
                    return Err((
                        close::PROTOCOL_VIOLATION,
                        "batch without the batch feature".into(),
                    ));
                }
                if batch.envelopes.len() > self.shared.config.max_batch as usize {
                    return Err((
                        close::PROTOCOL_VIOLATION,
                        "batch longer than max_batch".into(),
                    ));
                }
                if batch
                    .envelopes
                    .iter()
                    .any(|e| matches!(e.body, Some(Body::Batch(_)) | Some(Body::Hello(_))))
                {
                    return Err((
                        close::PROTOCOL_VIOLATION,
                        "nested batch or hello inside a batch".into(),
                    ));
                }
                for e in batch.envelopes {
                    self.handle(e)?;
                }
            }
            Body::Ping(p) => self.send(Body::Pong(v2::Pong { ts: p.ts })),
            Body::Pong(_) => {}
            Body::Refresh(r) => self.refresh(r),
            Body::Subscribe(s) => self.subscribe(s),
            Body::Unsubscribe(u) => {
                if let Some(i) = self.subscriptions.iter().position(|c| **c == *u.channel) {
                    self.subscriptions.swap_remove(i);
                    self.shared
                        .broker
                        .unsubscribe(&u.channel, self.session_id());
                }
                // ORDER-UNKNOWN-IDS-IGNORED: unsubscribing a channel not held is acked too.
                self.send(Body::UnsubscribeAck(v2::UnsubscribeAck {
                    id: u.id,
                    channel: u.channel,
                }));
            }
            Body::Publish(p) => self.publish(p),
            Body::PresenceQuery(q) => {
                if !self.outbox.features().has(Features::PRESENCE) {
                    self.error(
                        &q.id,
                        ErrorCode::Unsupported,
                        "presence is not enabled",
                        &q.channel,
                    );
                    return Ok(());
                }
                if let Err(e) = self
                    .shared
                    .broker
                    .presence(&q.id, &q.channel, &*self.outbox)
                {
                    self.broker_error(&q.id, &q.channel, e);
                }
            }
            Body::Ephemeral(e) => self.ephemeral(e),
            Body::RpcRequest(r) => self.rpc(r),
            other => {
                let t =
                    courier_protocol::WireEnvelope::type_name(&v2::Envelope { body: Some(other) })
                        .unwrap_or("?");
                return Err((
                    close::PROTOCOL_VIOLATION,
                    format!("`{t}` is sent by servers only"),
                ));
            }
        }
        Ok(())
    }

    fn broker_error(&self, id: &str, channel: &str, e: BrokerError) {
        let code = match e {
            BrokerError::NotSubscribed(_) => ErrorCode::NotSubscribed,
            BrokerError::Unavailable(_) => ErrorCode::Internal,
        };
        self.error(id, code, e.to_string(), channel);
    }

    fn refresh(&mut self, r: v2::Refresh) {
        let now_ms = crate::now_ms();
        match self.shared.auth.authenticate(&r.token, now_ms) {
            Ok(identity) if identity.user != self.identity.user => {
                // AUTH-REFRESH-SAME-USER.
                self.error(
                    &r.id,
                    ErrorCode::InvalidToken,
                    "the token names a different user",
                    "",
                );
            }
            Ok(identity) => {
                // AUTH-REFRESH: the new credentials govern later operations.
                let expires = identity.expires_at_ms;
                self.identity = identity;
                self.reauth_deadline = None;
                self.schedule_reauth(Instant::now());
                self.send(Body::Refreshed(v2::Refreshed {
                    id: r.id,
                    token_expires_at_ms: expires,
                }));
            }
            Err(e) => self.error(&r.id, ErrorCode::InvalidToken, e.to_string(), ""),
        }
    }

    pub(crate) fn subscribe(&mut self, s: v2::Subscribe) {
        if !valid_channel(&s.channel) {
            return self.error(
                &s.id,
                ErrorCode::BadRequest,
                "invalid channel name",
                &s.channel,
            );
        }
        // AUTHZ-PER-OPERATION, AUTHZ-DENIAL-IS-ERROR.
        if !self
            .shared
            .authz
            .allows(Operation::Subscribe, &s.channel, &self.identity)
        {
            return self.error(
                &s.id,
                ErrorCode::Forbidden,
                "not allowed to subscribe to this channel",
                &s.channel,
            );
        }
        let held = self.subscriptions.iter().any(|c| **c == *s.channel);
        if !held && self.subscriptions.len() >= self.shared.config.max_subscriptions as usize {
            return self.error(
                &s.id,
                ErrorCode::TooManySubscriptions,
                "too many subscriptions",
                &s.channel,
            );
        }
        match self.shared.broker.subscribe(
            &s.id,
            &s.channel,
            s.resume.as_ref(),
            self.outbox.clone(),
        ) {
            Ok(_) if !held => self.subscriptions.push(s.channel.as_str().into()),
            Ok(_) => {}
            Err(e) => self.broker_error(&s.id, &s.channel, e),
        }
    }

    fn publish(&mut self, p: v2::Publish) {
        if p.id.is_empty() {
            // DEDUP-ID-REQUIRED.
            return self.error(
                &p.id,
                ErrorCode::BadRequest,
                "publish needs a non-empty id",
                &p.channel,
            );
        }
        if !valid_channel(&p.channel) {
            return self.error(
                &p.id,
                ErrorCode::BadRequest,
                "invalid channel name",
                &p.channel,
            );
        }
        if !self
            .shared
            .authz
            .allows(Operation::Publish, &p.channel, &self.identity)
        {
            return self.error(
                &p.id,
                ErrorCode::Forbidden,
                "not allowed to publish to this channel",
                &p.channel,
            );
        }
        let request = PublishRequest {
            id: p.id.clone(),
            channel: p.channel.clone(),
            payload: p.payload,
            publisher: self.outbox.member_ref().session_id.as_str().into(),
            user: self.identity.user.clone(),
        };
        match self.shared.broker.publish(request) {
            Ok(mut ack) => {
                self.shared
                    .metrics
                    .publishes
                    .fetch_add(1, Ordering::Relaxed);
                ack.id = p.id;
                self.send(Body::PublishAck(ack));
            }
            Err(e) => self.broker_error(&p.id, &p.channel, e),
        }
    }

    fn ephemeral(&mut self, e: v2::Ephemeral) {
        if !self.outbox.features().has(Features::EPHEMERAL) {
            return self.error(
                "",
                ErrorCode::Unsupported,
                "ephemeral is not enabled",
                &e.channel,
            );
        }
        if !valid_channel(&e.channel) {
            return self.error(
                "",
                ErrorCode::BadRequest,
                "invalid channel name",
                &e.channel,
            );
        }
        if !self
            .shared
            .authz
            .allows(Operation::Publish, &e.channel, &self.identity)
        {
            return self.error(
                "",
                ErrorCode::Forbidden,
                "not allowed to publish to this channel",
                &e.channel,
            );
        }
        if let Err(err) = self
            .shared
            .broker
            .ephemeral(&e.channel, e.payload, &*self.outbox)
        {
            self.broker_error("", &e.channel, err);
        }
    }

    fn rpc(&mut self, r: v2::RpcRequest) {
        if !self.outbox.features().has(Features::RPC) {
            return self.error(&r.id, ErrorCode::Unsupported, "rpc is not enabled", "");
        }
        let Some(handler) = self.shared.rpc.get(&r.method).cloned() else {
            // RPC-UNKNOWN-METHOD.
            return self.error(
                &r.id,
                ErrorCode::UnknownMethod,
                format!("no method {}", r.method),
                "",
            );
        };
        let limit = self.shared.config.max_rpc_in_flight;
        if self.rpc_in_flight.fetch_add(1, Ordering::AcqRel) >= limit {
            self.rpc_in_flight.fetch_sub(1, Ordering::AcqRel);
            self.outbox.send(&v2::Envelope {
                body: Some(Body::Error(v2::Error {
                    id: r.id,
                    code: ErrorCode::Internal as i32,
                    message: format!("more than {limit} calls in flight"),
                    channel: String::new(),
                    // ERR-RETRY-AFTER: a slot frees up as soon as a call ends.
                    retry_after_ms: Some(100),
                })),
            });
            return;
        }
        let ctx = RpcContext {
            session_id: self.session_id().into(),
            user: self.identity.user.clone(),
            scopes: self.identity.scopes.clone().into(),
            method: r.method,
        };
        let outbox = self.outbox.clone();
        let in_flight = self.rpc_in_flight.clone();
        let id = r.id;
        // RPC-CORRELATION: exactly one response or error per request, in
        // whatever order calls finish.
        tokio::spawn(async move {
            let body = match handler.call(ctx, r.payload).await {
                Ok(payload) => Body::RpcResponse(v2::RpcResponse { id, payload }),
                Err(e) => Body::Error(v2::Error {
                    id,
                    code: e.code() as i32,
                    message: e.to_string(),
                    channel: String::new(),
                    retry_after_ms: None,
                }),
            };
            outbox.send(&v2::Envelope { body: Some(body) });
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Periodic checks: heartbeat ping and deadline, expiry, re-auth.
    pub(crate) fn tick(&mut self, now: Instant, heartbeat_deadline: bool) -> Result<(), Close> {
        let c = &self.shared.config;
        let interval = Duration::from_millis(c.heartbeat_interval_ms);
        if heartbeat_deadline
            && now.saturating_duration_since(self.last_rx)
                >= interval + Duration::from_millis(c.heartbeat_grace_ms)
        {
            // HB-DEADLINE.
            return Err((
                close::HEARTBEAT_TIMEOUT,
                "heartbeat timeout: no frame within the deadline".into(),
            ));
        }
        if self.shared.auth.is_expired(&self.identity, crate::now_ms()) {
            // AUTH-EXPIRY.
            return Err((close::TOKEN_EXPIRED, "credentials expired".into()));
        }
        if self.reauth_deadline.is_some_and(|d| now >= d) {
            return Err((
                close::REAUTH_TIMEOUT,
                "no refresh before the reauth deadline".into(),
            ));
        }
        if self.next_reauth.is_some_and(|t| now >= t) {
            self.next_reauth = None;
            self.request_reauth(now, "periodic re-authentication");
        }
        if now.saturating_duration_since(self.last_ping) >= interval
            && !self.shared.fault_never_ping()
        {
            // HB-SERVER-PING.
            self.last_ping = now;
            self.send(Body::Ping(v2::Ping {
                ts: crate::now_ms(),
            }));
        }
        Ok(())
    }

    /// AUTH-REAUTH-REQUEST: asks a v2 `reauth` session for fresh credentials.
    pub(crate) fn request_reauth(&mut self, now: Instant, reason: &str) {
        if self.outbox.subprotocol().version != Version::V2
            || !self.outbox.features().has(Features::REAUTH)
        {
            return;
        }
        if self.reauth_deadline.is_some() {
            return;
        }
        let deadline_ms = self.shared.config.auth.reauth_deadline_ms;
        self.reauth_deadline = Some(now + Duration::from_millis(deadline_ms));
        self.send(Body::ReauthRequest(v2::ReauthRequest {
            deadline_ms,
            reason: reason.to_string(),
        }));
    }

    /// Leaves every channel (PRESENCE-JOIN-LEAVE on disconnect).
    pub(crate) fn leave_all(&mut self) {
        for c in self.subscriptions.drain(..) {
            self.shared
                .broker
                .unsubscribe(&c, &self.outbox.member_ref().session_id);
        }
    }
}
