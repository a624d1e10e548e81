//! The Server-Sent Events transport (docs/spec/sse.md): `GET /sse` runs a
//! session whose frames are SSE events (the client cannot send on it) and
//! `POST /publish` publishes through the same request handling as a
//! session's `publish`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::ErrorCode;
use courier_protocol::{close, v2, Codec, Encoding, Subprotocol, Version};
use http_body_util::{BodyExt, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::sync::mpsc;

use super::http::{full, Body as HttpBody};
use super::{ConnGuard, Shared, Transport};
use crate::frame::Wire;
use crate::session::driver::{self, Cold, FrameSink, FrameSource, Inbound};
use crate::session::{self, Hello, Refusal};

/// `GET /sse`: opens a stream; failures after this point are `disconnect`
/// events, not HTTP statuses.
pub(crate) fn stream(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    guard: ConnGuard,
) -> Response<HttpBody> {
    if !shared.origin_allowed(req.headers()) {
        return super::http::text_response(StatusCode::FORBIDDEN, "origin not allowed\n");
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

/// Runs the stream's session, through the faulty transport layer when a
/// fault is injected (feature `faults`).
async fn run(shared: Arc<Shared>, req: SseRequest, tx: mpsc::Sender<Bytes>, guard: ConnGuard) {
    let sink = SseSink::new(tx.clone());
    let source = SseSource { tx };
    #[cfg(feature = "faults")]
    if let Some(fault) = shared.fault {
        let mut req = req;
        if fault == crate::faults::Fault::SseSinceSubscribes {
            let extra: Vec<String> = (req.since.iter().map(|(c, _)| c.clone()))
                .filter(|c| !req.channels.contains(c))
                .collect();
            req.channels.extend(extra);
        }
        let wire = Some(Wire::Sse(req.version.unwrap_or(Version::V2)));
        let (sink, source) =
            crate::faults::transport::wrap(shared.env.clone(), fault, wire, sink, source);
        return connect(shared, sink, source, req, guard).await;
    }
    connect(shared, sink, source, req, guard).await
}

async fn connect<W: FrameSink, R: FrameSource>(
    shared: Arc<Shared>,
    mut sink: W,
    mut source: R,
    req: SseRequest,
    guard: ConnGuard,
) {
    let env = shared.env.clone();
    let Some(version) = req.version else {
        // VER-SSE: unsupported version → disconnect 4002 listing what is supported.
        let reason = courier_protocol::subprotocol::mismatch_reason(&shared.supported);
        let wire = Some(Wire::Sse(Version::V2));
        let close = (close::UNSUPPORTED_VERSION, reason);
        return driver::close_early(&env, &mut sink, &mut source, wire, close).await;
    };
    let wire = Wire::Sse(version);
    if let Some(close) = guard.refusal() {
        return driver::close_early(&env, &mut sink, &mut source, Some(wire), close).await;
    }
    let _session_guard = shared.session_opened(Transport::Sse);
    // SSE-AUTH: the Authorization header is checked as hello.token is.
    let hello = Hello {
        token: req.token,
        features: Vec::new(),
    };
    let mut session = match session::open(&env, wire, hello) {
        Ok(session) => session,
        Err(close) => {
            return driver::close_early(&env, &mut sink, &mut source, Some(wire), close).await
        }
    };
    let _registered = shared.register(session.outbox.clone());
    // SSE-CHANNELS, SSE-RESUME: `since` wins over Last-Event-ID.
    for channel in req.channels {
        let resume = req
            .since
            .iter()
            .find(|(c, _)| *c == channel)
            .or(req.last_event_id.as_ref().filter(|(c, _)| *c == channel))
            .map(|(_, p)| p.clone());
        // Boxed: see `Cold`.
        let subscribed: Cold<'_, ()> = Box::pin(session.subscribe(v2::Subscribe {
            id: String::new(),
            channel,
            resume,
        }));
        subscribed.await;
    }
    driver::run(session, &mut sink, &mut source).await;
}

/// The event stream's writing side: frames are whole SSE events, sent to
/// the response body through a small channel.
struct SseSink {
    tx: mpsc::Sender<Bytes>,
    permit: Option<mpsc::OwnedPermit<Bytes>>,
    reserving: Option<Reserve>,
}

type Reserve = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Bytes>, mpsc::error::SendError<()>>> + Send>,
>;

impl SseSink {
    fn new(tx: mpsc::Sender<Bytes>) -> Self {
        SseSink {
            tx,
            permit: None,
            reserving: None,
        }
    }
}

impl FrameSink for SseSink {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        let tx = &self.tx;
        let reserving = self
            .reserving
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let result = std::task::ready!(reserving.as_mut().poll(cx));
        self.reserving = None;
        match result {
            Ok(permit) => {
                self.permit = Some(permit);
                Poll::Ready(Ok(()))
            }
            Err(_) => Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn start_send(&mut self, frame: Bytes) -> io::Result<()> {
        let permit = self.permit.take().ok_or(io::ErrorKind::WouldBlock)?;
        permit.send(frame);
        Ok(())
    }

    fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn close<'a>(
        &'a mut self,
        notice: Option<Bytes>,
        _code: u16,
        _reason: &'a str,
    ) -> Cold<'a, ()> {
        // SSE-END: the disconnect event is the stream's last; the stream
        // ends when the session's task drops its sender.
        Box::pin(async move {
            if let Some(notice) = notice {
                let _ = self.tx.send(notice).await;
            }
        })
    }
}

/// The event stream's reading side: clients cannot send on it, so it only
/// tells when the client went away.
struct SseSource {
    tx: mpsc::Sender<Bytes>,
}

impl FrameSource for SseSource {
    const INBOUND: bool = false;

    async fn next(&mut self) -> Inbound {
        self.tx.closed().await;
        Inbound::Closed(close::ABNORMAL)
    }

    async fn drain(&mut self) {}
}

/// `POST /publish` (SSE-PUBLISH): the request handling of a session's
/// `publish`, answered as HTTP.
pub(crate) async fn publish(shared: &Arc<Shared>, req: Request<Incoming>) -> Response<HttpBody> {
    let env = &shared.env;
    if !shared.origin_allowed(req.headers()) {
        return super::http::text_response(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let query = parse_query(req.uri().query().unwrap_or(""));
    let Some(version) = version_param(shared, &query) else {
        let codec = Codec::new(Subprotocol::new(Version::V2, Encoding::Json));
        let r = Refusal::new(ErrorCode::Unsupported, "unsupported version");
        return error_response(codec, StatusCode::BAD_REQUEST, r, "", "");
    };
    let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
    let identity = match env
        .auth
        .authenticate(&bearer(req.headers()), crate::now_ms())
    {
        Ok(i) => i,
        Err(e) => {
            tracing::info!(error = %e, "POST /publish credentials refused");
            let r = Refusal::new(ErrorCode::InvalidToken, e.reason());
            return error_response(codec, StatusCode::UNAUTHORIZED, r, "", "");
        }
    };
    #[allow(unused_mut)]
    let mut max = env.config.max_message_bytes as usize;
    #[cfg(feature = "faults")]
    if env.config.fault == Some(crate::faults::Fault::OversizePublishBody) {
        max = max.saturating_mul(64);
    }
    let timeout = Duration::from_millis(env.config.http_body_timeout_ms);
    let body =
        match tokio::time::timeout(timeout, Limited::new(req.into_body(), max).collect()).await {
            Err(_) => {
                let r = Refusal::new(
                    ErrorCode::BadRequest,
                    format!(
                        "request body not received within {} ms",
                        timeout.as_millis()
                    ),
                );
                return error_response(codec, StatusCode::REQUEST_TIMEOUT, r, "", "");
            }
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => {
                let r = Refusal::new(ErrorCode::BadRequest, "body larger than max_message_bytes");
                return error_response(codec, StatusCode::PAYLOAD_TOO_LARGE, r, "", "");
            }
        };
    let p: v2::Publish = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            let r = Refusal::new(ErrorCode::BadRequest, format!("invalid publish: {e}"));
            return error_response(codec, StatusCode::BAD_REQUEST, r, "", "");
        }
    };
    env.metrics.received(&body);
    let Some(_in_flight) = env.lifecycle.enter() else {
        return super::http::text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n");
    };
    let (id, channel) = (p.id.clone(), p.channel.clone());
    match env.publish(&identity, env.new_session_id(), p).await {
        Ok(ack) => json_response(codec, StatusCode::OK, Body::PublishAck(ack)),
        Err(r) => {
            let status = match r.code {
                ErrorCode::Forbidden => StatusCode::FORBIDDEN,
                // ERR-ENGINE-UNAVAILABLE: a retryable engine failure is a 503
                // with `Retry-After`, which HTTP clients and proxies know.
                ErrorCode::Internal if r.retry_after_ms.is_some() => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            let retry_after = r.retry_after_ms.map(|ms| ms.div_ceil(1000).max(1));
            let mut response = error_response(codec, status, r, &id, &channel);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(
                    hyper::header::RETRY_AFTER,
                    hyper::header::HeaderValue::from(secs),
                );
            }
            response
        }
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
    refusal: Refusal,
    id: &str,
    channel: &str,
) -> Response<HttpBody> {
    json_response(codec, status, Body::Error(refusal.into_error(id, channel)))
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
