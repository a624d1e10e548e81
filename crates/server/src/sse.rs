//! The Server-Sent Events transport (docs/spec/sse.md): `GET /sse` streams
//! a session's envelopes as JSON events, `POST /publish` publishes.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::ErrorCode;
use courier_protocol::{close, v2, Codec, Encoding, Subprotocol, Version, WireEnvelope};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use crate::auth::Operation;
use crate::broker::PublishRequest;
use crate::faults::Fault;
use crate::http::{full, Body as HttpBody};
use crate::outbox::{Features, Out, Outbox};
use crate::server::{ConnGuard, Shared, Transport};
use crate::session::{self, Session};

/// `GET /sse`: opens a stream; failures after this point are `disconnect`
/// events, not HTTP statuses.
pub(crate) fn stream(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    guard: ConnGuard,
) -> Response<HttpBody> {
    if !shared.origin_allowed(req.headers()) {
        return crate::http::text_response(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let query = parse_query(req.uri().query().unwrap_or(""));
    let params = SseRequest {
        version: version_param(shared, &query),
        token: bearer(req.headers()),
        channels: query
            .iter()
            .filter(|(k, _)| k == "channel")
            .map(|(_, v)| v.clone())
            .collect(),
        since: query
            .iter()
            .filter(|(k, _)| k == "since")
            .filter_map(|(_, v)| parse_position(v))
            .collect(),
        last_event_id: req
            .headers()
            .get("last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_position),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    tokio::spawn(run(shared.clone(), params, tx, guard));
    let body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(Frame::data(b)), rx))
    }));
    Response::builder()
        .header(CONTENT_TYPE, "text/event-stream")
        .header(CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(BodyExt::boxed_unsync(body))
        .expect("valid response")
}

struct SseRequest {
    version: Option<Version>,
    token: String,
    channels: Vec<String>,
    since: Vec<(String, v2::StreamPosition)>,
    last_event_id: Option<(String, v2::StreamPosition)>,
}

async fn run(shared: Arc<Shared>, req: SseRequest, tx: mpsc::Sender<Bytes>, guard: ConnGuard) {
    let Some(version) = req.version else {
        // VER-SSE: unsupported version → disconnect 4002 listing what is supported.
        let reason = courier_protocol::subprotocol::mismatch_reason(&shared.supported);
        let _ = tx
            .send(disconnect_event(
                Version::V2,
                close::UNSUPPORTED_VERSION,
                &reason,
                None,
            ))
            .await;
        return shared.metrics.disconnect(close::UNSUPPORTED_VERSION);
    };
    let sp = Subprotocol::new(version, Encoding::Json);
    if let Some((code, reason)) = guard.refusal() {
        shared.metrics.disconnect(code);
        let _ = tx
            .send(disconnect_event(version, code, &reason, None))
            .await;
        return;
    }
    let _session = shared.session_opened(Transport::Sse);
    // SSE-AUTH: the Authorization header is checked as hello.token is.
    let identity = match shared.auth.authenticate(&req.token, crate::now_ms()) {
        Ok(i) => i,
        Err(e) => {
            shared.metrics.disconnect(e.close_code());
            let _ = tx
                .send(disconnect_event(
                    version,
                    e.close_code(),
                    &e.to_string(),
                    None,
                ))
                .await;
            return;
        }
    };
    let session_id = shared.new_session_id();
    let welcome = session::welcome(&shared, sp, &session_id, Vec::new(), &identity);
    if tx
        .send(event(
            "welcome",
            None,
            &Codec::new(sp).encode(&welcome).unwrap_or_default(),
        ))
        .await
        .is_err()
    {
        return;
    }
    let member = v2::PresenceMember {
        session_id,
        user: identity.user.to_string(),
        info: identity.info.clone(),
    };
    let capacity = shared.config.send_queue_frames as usize;
    let outbox = Arc::new(Outbox::new(
        member,
        sp,
        Features::default(),
        capacity,
        shared.fault(Fault::UnboundedQueue),
        true,
    ));
    let _registered = shared.register(outbox.clone());
    let mut session = Session::new(shared.clone(), outbox.clone(), identity);
    // SSE-CHANNELS, SSE-RESUME: `since` wins over Last-Event-ID.
    for channel in &req.channels {
        let resume = req
            .since
            .iter()
            .find(|(c, _)| c == channel)
            .or(req.last_event_id.as_ref().filter(|(c, _)| c == channel))
            .map(|(_, p)| p.clone());
        session.subscribe(v2::Subscribe {
            id: String::new(),
            channel: channel.clone(),
            resume,
        });
    }
    let mut shutdown = shared.shutdown_rx();
    let mut tick = shared.tick_rx();
    let mut buf = VecDeque::new();
    let mut closing = false;
    loop {
        let mut close = outbox.take(&mut buf);
        if !buf.is_empty() {
            let write = async {
                for out in buf.drain(..) {
                    let ev = match out {
                        Out::Own(bytes, ty) => event(ty, None, &bytes),
                        // Never queued: SSE outboxes keep envelopes for event ids.
                        Out::Encoded(_) => continue,
                        Out::Shared(f) => {
                            let Ok(bytes) = f.bytes(sp) else { continue };
                            let ty = f.envelope().type_name().unwrap_or("message");
                            event(ty, event_id(f.envelope()).as_deref(), &bytes)
                        }
                    };
                    tx.send(ev).await.map_err(|_| ())?;
                    shared.metrics.messages_out(1);
                }
                Ok::<(), ()>(())
            };
            let result = tokio::select! {
                r = write => r,
                _ = crate::ws::blocked_write_abort(&outbox) => Err(()),
            };
            buf.clear();
            match result {
                // Wake-ups of frames pushed during the write may have been
                // consumed by `blocked_write_abort`: take again before waiting.
                Ok(()) if close.is_none() => continue,
                Ok(()) => {}
                Err(()) if outbox.closing().is_none() => break,
                Err(()) => close = close.or_else(|| outbox.closing()),
            }
        }
        if let Some(c) = close {
            // SSE-END: a disconnect event ends every stream the server ends.
            shared.metrics.disconnect(c.code);
            let reason = if shared.fault(Fault::NoCloseReason) {
                String::new()
            } else {
                c.reason
            };
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                tx.send(disconnect_event(version, c.code, &reason, c.retry_after_ms)),
            )
            .await;
            break;
        }
        tokio::select! {
            _ = outbox.changed() => {}
            _ = tx.closed() => break,
            r = shutdown.changed(), if !closing => {
                if r.is_ok() && *shutdown.borrow() {
                    closing = true;
                    outbox.close(close::GOING_AWAY, "server shutting down", None);
                }
            }
            _ = tick.changed(), if !closing => {
                // SSE-HEARTBEAT: pings flow; no pong deadline (clients cannot answer).
                if let Err((code, reason)) = session.tick(Instant::now(), false) {
                    closing = true;
                    outbox.close(code, reason, None);
                }
            }
        }
    }
    session.leave_all();
}

/// `POST /publish` (SSE-PUBLISH).
pub(crate) async fn publish(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<HttpBody> {
    if !shared.origin_allowed(req.headers()) {
        return crate::http::text_response(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let query = parse_query(req.uri().query().unwrap_or(""));
    let Some(version) = version_param(shared, &query) else {
        let codec = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
        return error_response(
            codec,
            StatusCode::BAD_REQUEST,
            ErrorCode::Unsupported,
            "unsupported version",
            "",
            "",
        );
    };
    let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
    let identity = match shared
        .auth
        .authenticate(&bearer(req.headers()), crate::now_ms())
    {
        Ok(i) => i,
        Err(e) => {
            return error_response(
                codec,
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                &e.to_string(),
                "",
                "",
            )
        }
    };
    let max = shared.config.max_message_bytes as usize;
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return error_response(
                codec,
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BadRequest,
                "body larger than max_message_bytes",
                "",
                "",
            )
        }
    };
    let p: v2::Publish = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error_response(
                codec,
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                &format!("invalid publish: {e}"),
                "",
                "",
            )
        }
    };
    if p.id.is_empty() {
        return error_response(
            codec,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "publish needs a non-empty id",
            "",
            &p.channel,
        );
    }
    if !session::valid_channel(&p.channel) {
        return error_response(
            codec,
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            "invalid channel name",
            &p.id,
            &p.channel,
        );
    }
    if !shared
        .authz
        .allows(Operation::Publish, &p.channel, &identity)
    {
        return error_response(
            codec,
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "not allowed to publish",
            &p.id,
            &p.channel,
        );
    }
    let request = PublishRequest {
        id: p.id.clone(),
        channel: p.channel.clone(),
        payload: p.payload,
        publisher: shared.new_session_id().into(),
        user: identity.user.clone(),
    };
    shared.metrics.messages_in(1);
    match shared.broker.publish(request) {
        Ok(mut ack) => {
            shared
                .metrics
                .publishes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ack.id = p.id;
            json_response(codec, StatusCode::OK, Body::PublishAck(ack))
        }
        Err(e) => error_response(
            codec,
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            &e.to_string(),
            &p.id,
            &p.channel,
        ),
    }
}

fn json_response(codec: Codec, status: StatusCode, body: Body) -> Response<HttpBody> {
    let bytes = codec
        .encode(&v2::Envelope { body: Some(body) })
        .unwrap_or_default();
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(full(bytes))
        .expect("valid response")
}

fn error_response(
    codec: Codec,
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    id: &str,
    channel: &str,
) -> Response<HttpBody> {
    json_response(
        codec,
        status,
        Body::Error(v2::Error {
            id: id.into(),
            code: code as i32,
            message: message.into(),
            channel: channel.into(),
            retry_after_ms: None,
        }),
    )
}

/// VER-SSE: `v` picks the version, defaulting to the highest served in JSON.
fn version_param(shared: &Shared, query: &[(String, String)]) -> Option<Version> {
    let json = |v: Version| {
        shared
            .supported
            .contains(&Subprotocol::new(v, Encoding::Json))
    };
    match query.iter().find(|(k, _)| k == "v") {
        None => Version::ALL.into_iter().find(|v| json(*v)),
        Some((_, v)) => v
            .parse()
            .ok()
            .and_then(Version::from_number)
            .filter(|v| json(*v)),
    }
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
        .unwrap_or_default()
}

/// SSE-EVENT-ID: `<channel>:<epoch>:<seq>` on message events only.
fn event_id(env: &v2::Envelope) -> Option<String> {
    match &env.body {
        Some(Body::Message(m)) => Some(format!("{}:{}:{}", m.channel, m.epoch, m.seq)),
        _ => None,
    }
}

/// SSE-STREAM: one event per envelope, its type as `event:`, one `data:` line.
fn event(ty: &str, id: Option<&str>, json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + ty.len() + 32);
    out.put_slice(b"event: ");
    out.put_slice(ty.as_bytes());
    out.put_u8(b'\n');
    if let Some(id) = id {
        out.put_slice(b"id: ");
        // An id must not contain line breaks; channel names exclude control characters.
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: ");
    out.put_slice(json);
    out.put_slice(b"\n\n");
    out.freeze()
}

fn disconnect_event(
    version: Version,
    code: u16,
    reason: &str,
    retry_after_ms: Option<u64>,
) -> Bytes {
    let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
    let env = v2::Envelope {
        body: Some(Body::Disconnect(v2::Disconnect {
            code: code as u32,
            reason: reason.into(),
            retry_after_ms,
        })),
    };
    event("disconnect", None, &codec.encode(&env).unwrap_or_default())
}

/// `<channel>:<epoch>:<seq>`, split at the last two colons.
fn parse_position(s: &str) -> Option<(String, v2::StreamPosition)> {
    let mut parts = s.rsplitn(3, ':');
    let seq = parts.next()?.parse().ok()?;
    let epoch = parts.next()?.to_string();
    let channel = parts.next()?.to_string();
    Some((channel, v2::StreamPosition { epoch, seq }))
}

/// `application/x-www-form-urlencoded` query pairs.
fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_queries() {
        let (c, p) = parse_position("a:b:c:ep-1:42").unwrap();
        assert_eq!((c.as_str(), p.epoch.as_str(), p.seq), ("a:b:c", "ep-1", 42));
        assert!(parse_position("nope").is_none());
        let q = parse_query("v=2&channel=a%20b&channel=c%3Ad&since=x:e:1&bad=%zz&t=%4");
        assert_eq!(q[1].1, "a b");
        assert_eq!(q[2].1, "c:d");
        assert_eq!(q[4].1, "%zz");
        assert_eq!(q[5].1, "%4");
    }
}
