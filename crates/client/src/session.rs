//! The client's protocol state, without I/O: subscriptions and their
//! trackers, the publish queue, calls in flight, and what each received
//! envelope means. The driver (`driver.rs`) feeds it envelopes and commands
//! and carries out what it asks for (send envelopes, deliver events).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::{self, envelope::Body, ErrorCode};
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, PublishError, RequestError, SubscribeError};
use crate::event::{Position, PresenceMember, PublishAck, SubscriptionEvent};
use crate::tracker::{ChannelTracker, Verdict};

/// Where a subscription's events go.
pub(crate) type EventTx = mpsc::Sender<SubscriptionEvent>;
/// Reply of a publish.
pub(crate) type PublishReply = oneshot::Sender<Result<PublishAck, PublishError>>;
/// Reply of a call.
pub(crate) type CallReply = oneshot::Sender<Result<CallOk, RequestError>>;

/// A request/reply call.
#[derive(Debug, Clone)]
pub(crate) enum CallKind {
    Rpc { method: String, payload: Bytes },
    Presence { channel: String },
    Refresh { token: String },
}

/// A successful call's result.
#[derive(Debug)]
pub(crate) enum CallOk {
    Rpc(Bytes),
    Presence(Vec<PresenceMember>),
    Refreshed,
}

/// Things the driver must act on besides sending and delivering.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Notice {
    /// `disconnect` arrived: the code that decides the reaction (CLOSE-NOTICE-WINS).
    Disconnect {
        code: u16,
        reason: String,
        retry_after: Option<Duration>,
    },
    /// `reauth_request` arrived (AUTH-REAUTH-CLIENT).
    Reauth { reason: String },
    /// New credentials are in force; they expire at this time (ms since the Unix epoch).
    TokenAccepted {
        token: String,
        expires_at_ms: Option<u64>,
    },
}

struct Sub {
    tracker: ChannelTracker,
    tx: EventTx,
    /// Request id and resume position of the subscribe awaiting its ack.
    pending: Option<(String, Option<Position>)>,
    /// Resolves `Client::subscribe` at the first ack.
    first: Option<oneshot::Sender<Result<(), SubscribeError>>>,
}

struct Pending {
    id: String,
    channel: String,
    payload: Bytes,
    first_sent: Option<Instant>,
    reply: PublishReply,
}

struct Call {
    kind: CallKind,
    reply: Option<CallReply>,
    deadline: Instant,
}

/// The client's protocol state across connections.
pub(crate) struct Session {
    queue_capacity: usize,
    dedupe_ids: usize,
    request_timeout: Duration,
    next_id: u64,
    subs: HashMap<String, Sub>,
    /// subscribe request id -> channel, for the current connection.
    sub_requests: HashMap<String, String>,
    queue: VecDeque<Pending>,
    calls: HashMap<String, Call>,
    /// The open session's `welcome`.
    info: Option<v2::Welcome>,
    out: Vec<v2::Envelope>,
    deliveries: Vec<(EventTx, SubscriptionEvent)>,
    notices: Vec<Notice>,
}

fn env(body: Body) -> v2::Envelope {
    v2::Envelope { body: Some(body) }
}

impl Session {
    pub fn new(queue_capacity: usize, dedupe_ids: usize, request_timeout: Duration) -> Self {
        Session {
            queue_capacity,
            dedupe_ids,
            request_timeout,
            next_id: 0,
            subs: HashMap::new(),
            sub_requests: HashMap::new(),
            queue: VecDeque::new(),
            calls: HashMap::new(),
            info: None,
            out: Vec::new(),
            deliveries: Vec::new(),
            notices: Vec::new(),
        }
    }

    fn request_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{}", self.next_id)
    }

    fn dedupe_window(&self) -> Duration {
        self.info.as_ref().map_or(Duration::from_secs(120), |w| {
            Duration::from_millis(w.dedupe_window_ms)
        })
    }

    /// Whether a session is open.
    pub fn is_open(&self) -> bool {
        self.info.is_some()
    }

    /// Envelopes to send, in order.
    pub fn take_outgoing(&mut self) -> Vec<v2::Envelope> {
        std::mem::take(&mut self.out)
    }

    /// Events to deliver, in order.
    pub fn take_deliveries(&mut self) -> Vec<(EventTx, SubscriptionEvent)> {
        std::mem::take(&mut self.deliveries)
    }

    /// Notices for the driver.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Number of publishes queued or in flight.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn send_subscribe(&mut self, channel: &str) {
        let id = self.request_id("s");
        let Some(sub) = self.subs.get_mut(channel) else {
            return;
        };
        let resume = sub
            .tracker
            .position()
            .cloned()
            .filter(|_| !fault!(ResubscribeWithoutResume));
        sub.tracker.resubscribing();
        sub.pending = Some((id.clone(), resume.clone()));
        self.sub_requests.insert(id.clone(), channel.to_string());
        self.out.push(env(Body::Subscribe(v2::Subscribe {
            id,
            channel: channel.to_string(),
            resume: resume.map(Into::into),
        })));
    }

    fn send_publish(out: &mut Vec<v2::Envelope>, p: &mut Pending, now: Instant) {
        p.first_sent.get_or_insert(now);
        out.push(env(Body::Publish(v2::Publish {
            id: p.id.clone(),
            channel: p.channel.clone(),
            payload: p.payload.clone(),
        })));
    }

    /// A session opened: resubscribe every channel with `resume`
    /// (RESUME-CLIENT-RESUBSCRIBE), then resend the queue in order with the
    /// original ids (CLIENT-OFFLINE-QUEUE), failing what outlived the dedupe
    /// window (CLIENT-OFFLINE-EXPIRY).
    pub fn on_open(&mut self, welcome: v2::Welcome, now: Instant) {
        self.info = Some(welcome);
        let window = self.dedupe_window();
        let channels: Vec<String> = self.subs.keys().cloned().collect();
        for channel in channels {
            if let Some(sub) = self.subs.get_mut(&channel) {
                sub.tracker.set_window(window);
            }
            self.send_subscribe(&channel);
        }
        let queue = std::mem::take(&mut self.queue);
        for mut p in queue {
            if p.first_sent
                .is_some_and(|t| now.saturating_duration_since(t) > window)
            {
                let _ = p.reply.send(Err(PublishError::Expired));
                continue;
            }
            if fault!(NewIdOnResend) {
                p.id = uuid::Uuid::new_v4().to_string();
            }
            Self::send_publish(&mut self.out, &mut p, now);
            self.queue.push_back(p);
        }
    }

    /// The connection ended: calls in flight fail (they carry no
    /// idempotency key); publishes stay queued; subscriptions wait for the
    /// next session.
    pub fn on_close(&mut self) {
        self.info = None;
        self.sub_requests.clear();
        for sub in self.subs.values_mut() {
            sub.pending = None;
            sub.tracker.resubscribing();
        }
        for (_, call) in self.calls.drain() {
            if let Some(r) = call.reply {
                let _ = r.send(Err(RequestError::NotConnected));
            }
        }
        self.out.clear();
    }

    /// The client stopped for good: everything waiting fails with `err`.
    pub fn fail_all(&mut self, err: Arc<ClientError>) {
        self.on_close();
        for (_, mut sub) in self.subs.drain() {
            if let Some(first) = sub.first.take() {
                let _ = first.send(Err(SubscribeError::Stopped(err.clone())));
            } else {
                let _ = sub
                    .tx
                    .try_send(SubscriptionEvent::Ended(SubscribeError::Stopped(
                        err.clone(),
                    )));
            }
        }
        for p in self.queue.drain(..) {
            let _ = p.reply.send(Err(PublishError::Stopped(err.clone())));
        }
    }

    /// The application subscribes to `channel`, from a position it kept
    /// when `from` is set (RESUME-CLIENT-FROM).
    pub fn subscribe(
        &mut self,
        channel: String,
        from: Option<Position>,
        tx: EventTx,
        first: oneshot::Sender<Result<(), SubscribeError>>,
    ) {
        if self.subs.contains_key(&channel) {
            let _ = first.send(Err(SubscribeError::AlreadySubscribed(channel)));
            return;
        }
        let mut tracker = ChannelTracker::new(self.dedupe_ids, self.dedupe_window());
        if let Some(from) = from.filter(|_| !fault!(IgnoreSubscribeFrom)) {
            tracker.start_from(from);
        }
        self.subs.insert(
            channel.clone(),
            Sub {
                tracker,
                tx,
                pending: None,
                first: Some(first),
            },
        );
        if self.is_open() {
            self.send_subscribe(&channel);
        }
    }

    /// The application drops its subscription to `channel`
    /// (ORDER-UNSUBSCRIBE-FINAL: later messages of it are discarded).
    pub fn unsubscribe(&mut self, channel: &str) {
        if let Some(sub) = self.subs.remove(channel) {
            if let Some((id, _)) = sub.pending {
                self.sub_requests.remove(&id);
            }
            if self.is_open() {
                let id = self.request_id("u");
                self.out.push(env(Body::Unsubscribe(v2::Unsubscribe {
                    id,
                    channel: channel.to_string(),
                })));
            }
        }
    }

    /// The application publishes. The caller has checked the size.
    pub fn publish(
        &mut self,
        channel: String,
        id: String,
        payload: Bytes,
        reply: PublishReply,
        now: Instant,
    ) {
        if self.queue.len() >= self.queue_capacity && !fault!(UnboundedOfflineQueue) {
            let _ = reply.send(Err(PublishError::QueueFull(self.queue.len())));
            return;
        }
        let mut p = Pending {
            id,
            channel,
            payload,
            first_sent: None,
            reply,
        };
        if self.is_open() {
            Self::send_publish(&mut self.out, &mut p, now);
        }
        self.queue.push_back(p);
    }

    /// The application sends an ephemeral message (best effort: dropped
    /// while disconnected).
    pub fn ephemeral(&mut self, channel: String, payload: Bytes) {
        if self.is_open() {
            self.out.push(env(Body::Ephemeral(v2::Ephemeral {
                channel,
                payload,
                publisher: String::new(),
            })));
        }
    }

    /// The application (or the token refresher, with no reply) makes a call.
    pub fn call(&mut self, kind: CallKind, reply: Option<CallReply>, now: Instant) {
        if !self.is_open() {
            if let Some(r) = reply {
                let _ = r.send(Err(RequestError::NotConnected));
            }
            return;
        }
        let id = if fault!(ReuseRpcId) && matches!(kind, CallKind::Rpc { .. }) {
            "c-1".to_string()
        } else {
            self.request_id("c")
        };
        let body = match &kind {
            CallKind::Rpc { method, payload } => Body::RpcRequest(v2::RpcRequest {
                id: id.clone(),
                method: method.clone(),
                payload: payload.clone(),
            }),
            CallKind::Presence { channel } => Body::PresenceQuery(v2::PresenceQuery {
                id: id.clone(),
                channel: channel.clone(),
            }),
            CallKind::Refresh { token } => Body::Refresh(v2::Refresh {
                id: id.clone(),
                token: token.clone(),
            }),
        };
        self.out.push(env(body));
        self.calls.insert(
            id,
            Call {
                kind,
                reply,
                deadline: now + self.request_timeout,
            },
        );
    }

    /// The earliest call deadline.
    pub fn next_call_deadline(&self) -> Option<Instant> {
        self.calls.values().map(|c| c.deadline).min()
    }

    /// Fails the calls whose deadline passed (a late reply is then ignored,
    /// ORDER-UNKNOWN-IDS-IGNORED).
    pub fn expire_calls(&mut self, now: Instant) {
        let timeout = self.request_timeout;
        self.calls.retain(|_, c| {
            if c.deadline > now {
                return true;
            }
            if let Some(r) = c.reply.take() {
                let _ = r.send(Err(RequestError::Timeout(timeout)));
            }
            false
        });
    }

    fn deliver(&mut self, channel: &str, event: SubscriptionEvent) {
        if let Some(sub) = self.subs.get(channel) {
            self.deliveries.push((sub.tx.clone(), event));
        }
    }

    /// Processes one received envelope.
    pub fn on_envelope(&mut self, envelope: v2::Envelope, now: Instant) {
        let Some(body) = envelope.body else { return };
        match body {
            Body::Batch(b) => {
                // BATCH-ORDER: each entry as if it had its own frame.
                for e in b.envelopes {
                    if !matches!(e.body, Some(Body::Batch(_))) {
                        self.on_envelope(e, now);
                    }
                }
            }
            Body::Ping(p) if !fault!(NoPong) => {
                self.out.push(env(Body::Pong(v2::Pong { ts: p.ts })))
            }
            Body::Ping(_) => {}
            Body::Message(m) => self.on_message(m, now),
            Body::SubscribeAck(a) => self.on_subscribe_ack(a),
            Body::PublishAck(a) => {
                if let Some(i) = self.queue.iter().position(|p| p.id == a.id) {
                    let p = self.queue.remove(i).expect("index exists");
                    let _ = p.reply.send(Ok(a.into()));
                }
            }
            Body::Error(e) => self.on_error(e),
            Body::RpcResponse(r) => {
                if let Some(Call {
                    reply: Some(reply), ..
                }) = self.calls.remove(&r.id)
                {
                    let _ = reply.send(Ok(CallOk::Rpc(r.payload)));
                }
            }
            Body::Presence(p) => {
                if let Some(Call {
                    reply: Some(reply), ..
                }) = self.calls.remove(&p.id)
                {
                    let _ = reply.send(Ok(CallOk::Presence(
                        p.members.into_iter().map(Into::into).collect(),
                    )));
                }
            }
            Body::Refreshed(r) => {
                if let Some(call) = self.calls.remove(&r.id) {
                    if let CallKind::Refresh { token } = call.kind {
                        self.notices.push(Notice::TokenAccepted {
                            token,
                            expires_at_ms: r.token_expires_at_ms,
                        });
                    }
                    if let Some(reply) = call.reply {
                        let _ = reply.send(Ok(CallOk::Refreshed));
                    }
                }
            }
            Body::PresenceEvent(e) => {
                let Some(member) = e.member else { return };
                let event = match v2::PresenceAction::try_from(e.action) {
                    Ok(v2::PresenceAction::Join) => SubscriptionEvent::Joined(member.into()),
                    Ok(v2::PresenceAction::Leave) => SubscriptionEvent::Left(member.into()),
                    _ => return,
                };
                self.deliver(&e.channel, event);
            }
            Body::Ephemeral(e) => self.deliver(
                &e.channel,
                SubscriptionEvent::Ephemeral {
                    payload: e.payload,
                    publisher: e.publisher,
                },
            ),
            Body::Disconnect(d) => self.notices.push(Notice::Disconnect {
                code: u16::try_from(d.code).unwrap_or(u16::MAX),
                reason: d.reason,
                retry_after: d.retry_after_ms.map(Duration::from_millis),
            }),
            Body::ReauthRequest(r) => self.notices.push(Notice::Reauth { reason: r.reason }),
            Body::UnsubscribeAck(_) | Body::Pong(_) | Body::Welcome(_) => {}
            // Client-to-server types: a server never sends them; ignore.
            Body::Hello(_)
            | Body::Refresh(_)
            | Body::Subscribe(_)
            | Body::Unsubscribe(_)
            | Body::Publish(_)
            | Body::PresenceQuery(_)
            | Body::RpcRequest(_) => {}
        }
    }

    fn on_message(&mut self, m: v2::Message, now: Instant) {
        // ORDER-UNSUBSCRIBE-FINAL: no subscription, no delivery.
        let Some(sub) = self.subs.get_mut(&m.channel) else {
            return;
        };
        match sub.tracker.on_message(&m.epoch, m.seq, &m.id, now) {
            Verdict::Deliver => self
                .deliveries
                .push((sub.tx.clone(), SubscriptionEvent::Message(m.into()))),
            Verdict::Old | Verdict::Duplicate | Verdict::AwaitingAck => {}
            Verdict::Gap { tracked } => {
                // SEQ-CLIENT-GAP-DETECTION: report, then resubscribe from the tracked position.
                let received = Position {
                    epoch: m.epoch,
                    seq: m.seq,
                };
                self.deliveries.push((
                    sub.tx.clone(),
                    SubscriptionEvent::Gap {
                        last: tracked,
                        received,
                    },
                ));
                if let Some((old, _)) = sub.pending.take() {
                    self.sub_requests.remove(&old);
                }
                self.send_subscribe(&m.channel);
            }
        }
    }

    fn on_subscribe_ack(&mut self, a: v2::SubscribeAck) {
        // ORDER-UNKNOWN-IDS-IGNORED: an ack of a superseded subscribe is ignored.
        let Some(channel) = self.sub_requests.remove(&a.id) else {
            return;
        };
        let Some(sub) = self.subs.get_mut(&channel) else {
            return;
        };
        let Some((_, resume)) = sub.pending.take() else {
            return;
        };
        let position: Position = a.position.unwrap_or_default().into();
        let mut recovery = sub
            .tracker
            .on_ack(position.clone(), a.recovery.into(), resume.as_ref());
        if fault!(HideFailedRecovery) && matches!(recovery, crate::Recovery::Failed { .. }) {
            recovery = crate::Recovery::Recovered { replayed: 0 };
        }
        if let Some(first) = sub.first.take() {
            let _ = first.send(Ok(()));
        }
        self.deliveries.push((
            sub.tx.clone(),
            SubscriptionEvent::Subscribed { position, recovery },
        ));
    }

    fn on_error(&mut self, e: v2::Error) {
        let code = ErrorCode::try_from(e.code).unwrap_or(ErrorCode::Unspecified);
        let retry_after = e.retry_after_ms.map(Duration::from_millis);
        if let Some(channel) = self.sub_requests.remove(&e.id) {
            // AUTHZ-NO-AUTO-RETRY: a refused (re)subscribe ends the subscription.
            if let Some(mut sub) = self.subs.remove(&channel) {
                let err = SubscribeError::Rejected {
                    code,
                    message: e.message,
                };
                match sub.first.take() {
                    Some(first) => {
                        let _ = first.send(Err(err));
                    }
                    None => self
                        .deliveries
                        .push((sub.tx.clone(), SubscriptionEvent::Ended(err))),
                }
            }
        } else if let Some(i) = self
            .queue
            .iter()
            .position(|p| p.id == e.id && !e.id.is_empty())
        {
            let p = self.queue.remove(i).expect("index exists");
            let _ = p.reply.send(Err(PublishError::Rejected {
                code,
                message: e.message,
                retry_after,
            }));
        } else if let Some(call) = self.calls.remove(&e.id) {
            if let Some(reply) = call.reply {
                let _ = reply.send(Err(RequestError::Server {
                    code,
                    message: e.message,
                    retry_after,
                }));
            }
        }
        // Errors with no matching id (ephemeral refusals) concern no request.
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
