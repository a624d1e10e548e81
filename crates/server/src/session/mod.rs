//! The session core, the same for every transport: opening a session
//! (`open`), handling its requests and replies, refresh and re-auth, the
//! periodic checks (heartbeat, expiry), and the loop that connects a
//! session to a transport's frames (`driver`). Transports differ only in
//! how frames reach the wire; they implement [`driver::FrameSink`] and
//! [`driver::FrameSource`].

pub(crate) mod driver;
mod env;
mod halves;
mod open;
mod requests;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::ErrorCode;
use courier_protocol::{close, v2, Version};

use crate::auth::Identity;
use crate::engine::Member;
use crate::features::{BATCH, REAUTH};
use crate::hub::Outbox;
pub(crate) use env::Env;
pub(crate) use open::{open, Hello};
pub(crate) use requests::Refusal;

/// A close the session decided on: code and reason.
pub(crate) type Close = (u16, String);

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

    /// Milliseconds until the bucket is full again (`retry_after_ms` of a
    /// 4101 close: a client that comes back sooner finds the same limit).
    pub(crate) fn refill_ms(&self) -> u64 {
        ((self.burst - self.tokens).max(0.0) / self.per_sec * 1000.0).ceil() as u64
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
    pub env: Arc<Env>,
    pub outbox: Arc<Outbox>,
    pub identity: Identity,
    subscriptions: Vec<Arc<str>>,
    rate: RateLimit,
    pub last_rx: Instant,
    last_ping: Instant,
    next_reauth: Option<Instant>,
    reauth_deadline: Option<Instant>,
    rpc_in_flight: Arc<AtomicU32>,
}

impl Session {
    pub(crate) fn new(env: Arc<Env>, outbox: Arc<Outbox>, identity: Identity) -> Self {
        let now = Instant::now();
        #[allow(unused_mut)]
        let mut per_sec = env.config.max_messages_per_second;
        // Breaks LIMIT-RATE's refill: one token a second, whatever is advertised.
        #[cfg(feature = "faults")]
        if env.config.fault == Some(crate::faults::Fault::SlowRateRefill) {
            per_sec = 1;
        }
        let rate = RateLimit::new(per_sec, env.config.max_burst);
        let mut s = Session {
            env,
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

    fn version(&self) -> Version {
        self.outbox.wire().subprotocol().version
    }

    fn member(&self) -> Member {
        Member {
            session_id: self.outbox.session_id().clone(),
            user: self.identity.user.clone(),
            info: self.identity.info.clone(),
        }
    }

    fn schedule_reauth(&mut self, now: Instant) {
        let eligible = self.version() == Version::V2 && self.outbox.features().has(REAUTH);
        self.next_reauth = match self.env.config.auth.reauth_after_ms {
            Some(ms) if eligible => Some(now + Duration::from_millis(ms)),
            _ => None,
        };
    }

    fn send(&self, body: Body) {
        self.outbox.send(&v2::Envelope { body: Some(body) });
    }

    fn refuse(&self, id: &str, channel: &str, r: Refusal) {
        self.send(Body::Error(r.into_error(id, channel)));
    }

    /// CLOSE-RETRY-AFTER: how long a client closed with `code` should wait
    /// (the bucket's refill time for 4101).
    pub(crate) fn retry_after_ms(&self, code: u16) -> Option<u64> {
        (code == close::RATE_LIMITED).then(|| self.rate.refill_ms().max(1))
    }

    /// Counts `n` envelopes against the rate limit (LIMIT-RATE).
    pub(crate) fn charge(&mut self, n: usize, now: Instant) -> Result<(), Close> {
        if self.rate.take(n, now) {
            Ok(())
        } else {
            let c = &self.env.config;
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
    pub(crate) async fn handle(&mut self, envelope: v2::Envelope) -> Result<(), Close> {
        match envelope.body {
            Some(Body::Batch(batch)) => {
                // BATCH-V2-ONLY, BATCH-NO-NESTING, BATCH-MAX: checked before
                // any entry is processed.
                if !self.outbox.features().has(BATCH) {
                    return Err((
                        close::PROTOCOL_VIOLATION,
                        "batch without the batch feature".into(),
                    ));
                }
                if batch.envelopes.len() > self.env.config.max_batch as usize {
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
                    self.request(e.body).await?;
                }
                Ok(())
            }
            body => self.request(body).await,
        }
    }

    /// One request that is not a batch.
    async fn request(&mut self, body: Option<Body>) -> Result<(), Close> {
        let Some(body) = body else {
            return Err((close::UNKNOWN_TYPE, "envelope without a type".into()));
        };
        match body {
            Body::Hello(_) => return Err((close::PROTOCOL_VIOLATION, "second hello".into())),
            Body::Ping(p) => self.send(Body::Pong(v2::Pong { ts: p.ts })),
            Body::Pong(_) => {}
            Body::Refresh(r) => self.refresh(r),
            Body::Subscribe(s) => self.subscribe(s).await,
            Body::Unsubscribe(u) => self.unsubscribe(u).await,
            Body::Publish(p) => self.publish(p).await,
            Body::PresenceQuery(q) => self.presence(q).await,
            Body::Ephemeral(e) => self.ephemeral(e).await,
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

    fn refresh(&mut self, r: v2::Refresh) {
        match self.env.auth.authenticate(&r.token, crate::now_ms()) {
            Ok(identity) if identity.user != self.identity.user => {
                // AUTH-REFRESH-SAME-USER.
                self.refuse(
                    &r.id,
                    "",
                    Refusal::new(ErrorCode::InvalidToken, "the token names a different user"),
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
            Err(e) => {
                tracing::info!(session = %self.outbox.session_id(), error = %e, "refresh refused");
                self.refuse(&r.id, "", Refusal::new(ErrorCode::InvalidToken, e.reason()))
            }
        }
    }

    fn holds(&self, channel: &str) -> bool {
        self.subscriptions.iter().any(|c| **c == *channel)
    }

    pub(crate) async fn subscribe(&mut self, s: v2::Subscribe) {
        let held = self.holds(&s.channel);
        let limit = (!held).then_some(self.env.config.max_subscriptions as usize);
        if let Err(r) =
            self.env
                .check_subscribe(&self.identity, &s.channel, self.subscriptions.len(), limit)
        {
            return self.refuse(&s.id, &s.channel, r);
        }
        let resume = s.resume.map(|p| crate::engine::Position {
            epoch: p.epoch.into(),
            seq: p.seq,
        });
        let member = self.member();
        match self
            .env
            .hub
            .subscribe(&self.outbox, &s.id, &s.channel, resume, member)
            .await
        {
            Ok(()) if !held => self.subscriptions.push(s.channel.as_str().into()),
            Ok(()) => {}
            Err(e) => self.refuse(&s.id, &s.channel, e.into()),
        }
    }

    async fn unsubscribe(&mut self, u: v2::Unsubscribe) {
        if let Some(i) = self.subscriptions.iter().position(|c| **c == *u.channel) {
            self.subscriptions.swap_remove(i);
            self.env.hub.unsubscribe(&self.outbox, &u.channel).await;
        }
        // ORDER-UNKNOWN-IDS-IGNORED: unsubscribing a channel not held is acked too.
        self.send(Body::UnsubscribeAck(v2::UnsubscribeAck {
            id: u.id,
            channel: u.channel,
        }));
    }

    async fn publish(&mut self, p: v2::Publish) {
        let id = p.id.clone();
        let channel = p.channel.clone();
        let publisher = self.outbox.session_id().clone();
        match self.env.publish(&self.identity, publisher, p).await {
            Ok(ack) => self.send(Body::PublishAck(ack)),
            Err(r) => self.refuse(&id, &channel, r),
        }
    }

    async fn presence(&mut self, q: v2::PresenceQuery) {
        if !self.outbox.features().has(crate::features::PRESENCE) {
            let r = Refusal::new(ErrorCode::Unsupported, "presence is not enabled");
            return self.refuse(&q.id, &q.channel, r);
        }
        if !self.holds(&q.channel) {
            return self.refuse(&q.id, &q.channel, Refusal::not_subscribed(&q.channel));
        }
        if let Err(e) = self.env.hub.presence(&self.outbox, &q.id, &q.channel).await {
            self.refuse(&q.id, &q.channel, e.into());
        }
    }

    async fn ephemeral(&mut self, e: v2::Ephemeral) {
        if !self.outbox.features().has(crate::features::EPHEMERAL) {
            let r = Refusal::new(ErrorCode::Unsupported, "ephemeral is not enabled");
            return self.refuse("", &e.channel, r);
        }
        if let Err(r) = self.env.check_publish(&self.identity, &e.channel) {
            return self.refuse("", &e.channel, r);
        }
        if !self.holds(&e.channel) {
            return self.refuse("", &e.channel, Refusal::not_subscribed(&e.channel));
        }
        if let Err(err) = self
            .env
            .hub
            .ephemeral(&self.outbox, &e.channel, e.payload)
            .await
        {
            self.refuse("", &e.channel, err.into());
        }
    }

    fn rpc(&mut self, r: v2::RpcRequest) {
        if !self.outbox.features().has(crate::features::RPC) {
            let refusal = Refusal::new(ErrorCode::Unsupported, "rpc is not enabled");
            return self.refuse(&r.id, "", refusal);
        }
        let Some(handler) = self.env.rpc.get(&r.method).cloned() else {
            // RPC-UNKNOWN-METHOD.
            let refusal = Refusal::new(ErrorCode::UnknownMethod, format!("no method {}", r.method));
            return self.refuse(&r.id, "", refusal);
        };
        let limit = self.env.config.max_rpc_in_flight;
        if self.rpc_in_flight.fetch_add(1, Ordering::AcqRel) >= limit {
            self.rpc_in_flight.fetch_sub(1, Ordering::AcqRel);
            let refusal = Refusal {
                code: ErrorCode::Internal,
                message: format!("more than {limit} calls in flight"),
                // ERR-RETRY-AFTER: a slot frees up as soon as a call ends.
                retry_after_ms: Some(100),
            };
            return self.refuse(&r.id, "", refusal);
        }
        let ctx = crate::rpc::RpcContext {
            session_id: self.outbox.session_id().clone(),
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
                Err(e) => Body::Error(Refusal::new(e.code(), e).into_error(&id, "")),
            };
            outbox.send(&v2::Envelope { body: Some(body) });
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }

    /// Periodic checks: heartbeat ping and deadline, expiry, re-auth.
    /// `heartbeat_deadline` is false on transports the client cannot send
    /// on (SSE-HEARTBEAT).
    pub(crate) fn tick(&mut self, now: Instant, heartbeat_deadline: bool) -> Result<(), Close> {
        let c = &self.env.config;
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
        if self.env.auth.is_expired(&self.identity, crate::now_ms()) {
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
        if now.saturating_duration_since(self.last_ping) >= interval {
            // HB-SERVER-PING.
            self.last_ping = now;
            self.send(Body::Ping(v2::Ping {
                ts: crate::now_ms(),
            }));
        }
        Ok(())
    }

    /// AUTH-REAUTH-REQUEST: asks a v2 `reauth` session for fresh credentials.
    fn request_reauth(&mut self, now: Instant, reason: &str) {
        if self.version() != Version::V2 || !self.outbox.features().has(REAUTH) {
            return;
        }
        if self.reauth_deadline.is_some() {
            return;
        }
        let deadline_ms = self.env.config.auth.reauth_deadline_ms;
        self.reauth_deadline = Some(now + Duration::from_millis(deadline_ms));
        self.send(Body::ReauthRequest(v2::ReauthRequest {
            deadline_ms,
            reason: reason.to_string(),
        }));
    }

    /// Leaves every channel (PRESENCE-JOIN-LEAVE on disconnect).
    pub(crate) async fn leave_all(&mut self) {
        for c in std::mem::take(&mut self.subscriptions) {
            self.env.hub.unsubscribe(&self.outbox, &c).await;
        }
    }
}
