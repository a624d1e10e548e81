//! The WebSocket transport: the upgrade (subprotocol negotiation, Origin),
//! the hello phase, then one task per connection running a reader (decode,
//! rate limit, dispatch, heartbeat ticks) and a writer (drains the outbox,
//! many frames per flush) side by side.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Codec, DecodeError, Subprotocol, Version};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::faults::Fault;
use crate::frame::{assemble_batch, BATCH_ENTRY_OVERHEAD, BATCH_OVERHEAD};
use crate::http::{text_response, Body as HttpBody};
use crate::outbox::{Features, Out, Outbox};
use crate::server::{ConnGuard, Shared, Transport};
use crate::session::{self, Close, Session};

type Ws = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;
type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

/// Frames fed to tungstenite accumulate up to this many bytes before a
/// socket write; `flush` writes the rest. A drained queue thus costs one
/// syscall per 16 KiB instead of one per frame. The buffer is allocated on
/// first use, so idle connections do not pay for it.
const WRITE_BUFFER: usize = 16 * 1024;
/// How long a closing connection waits for the client's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long a write blocked on a full socket may delay a close (other than 4100).
const BLOCKED_WRITE_GRACE: Duration = Duration::from_secs(1);

/// Answers `GET /ws`: validates the upgrade, negotiates the subprotocol and
/// spawns the connection.
pub(crate) fn upgrade(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    guard: ConnGuard,
) -> Response<HttpBody> {
    let headers = req.headers();
    let is_upgrade = headers
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = headers.get(SEC_WEBSOCKET_KEY).filter(|_| is_upgrade) else {
        return text_response(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n");
    };
    if headers.get(SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        let mut r = text_response(
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version\n",
        );
        r.headers_mut()
            .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        return r;
    }
    if !shared.origin_allowed(headers) {
        return text_response(StatusCode::FORBIDDEN, "origin not allowed\n");
    }
    let offers: Vec<String> = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    let selected = shared.negotiate(&offers);
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(sp) = selected {
        // VER-SUBPROTOCOL: echo the selected name.
        resp = resp.header(SEC_WEBSOCKET_PROTOCOL, sp.name());
    }
    let shared = shared.clone();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let fut = async move {
        // The socket is built in a cold box: the stream, as a local of this
        // task, would otherwise keep its size reserved for the whole
        // connection after being moved into the split halves.
        let halves: Cold<'_, Option<(Sink, Stream)>> = Box::pin(async {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return None;
                }
            };
            let c = &shared.config;
            let max = c.max_message_bytes as usize;
            let config = WebSocketConfig::default()
                .read_buffer_size(c.ws_read_buffer_bytes as usize)
                .write_buffer_size(WRITE_BUFFER)
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
            let ws = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            Some(ws.split())
        });
        if let Some((sink, stream)) = halves.await {
            run(shared, sink, stream, selected, guard).await;
        }
    };
    tokio::spawn(fut);
    resp.body(crate::http::empty()).expect("valid response")
}

/// A boxed future: the cold paths of a connection (hello phase, closes)
/// run in their own allocation, freed when they finish, so that every
/// open connection's task is only as large as its steady state.
type Cold<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

async fn run(
    shared: Arc<Shared>,
    mut sink: Sink,
    mut stream: Stream,
    selected: Option<Subprotocol>,
    guard: ConnGuard,
) {
    let Some(sp) = selected else {
        // VER-ACCEPT-THEN-CLOSE, VER-MISMATCH-REASON: no data frame, no disconnect.
        return Box::pin(async {
            let reason = courier_protocol::subprotocol::mismatch_reason(&shared.supported);
            let code = close::UNSUPPORTED_VERSION;
            shared.metrics.disconnect(code);
            close_frame(&shared, &mut sink, code, &reason).await;
            let _ = tokio::time::timeout(CLOSE_WAIT, drain(&mut stream)).await;
        })
        .await;
    };
    let codec = Codec::new(sp).with_max_message_bytes(shared.config.max_message_bytes as usize);
    let _session_guard;
    let (mut session, outbox) =
        match open_session(&shared, &mut sink, &mut stream, codec, &guard).await {
            Some(opened) => {
                _session_guard = opened.0;
                (opened.1, opened.2)
            }
            None => return,
        };
    let _registered = shared.register(outbox.clone());
    {
        // Pinned in place (`tokio::pin!` on a binding would keep a second,
        // moved-from copy of each future in this task).
        let mut writer = std::pin::pin!(write_loop(&shared, sink, &outbox));
        let mut reader = std::pin::pin!(read_loop(&mut session, &mut stream, codec));
        let reader_done = tokio::select! {
            _ = &mut writer => false,
            code = &mut reader => {
                if outbox.closing().is_none() {
                    shared.metrics.disconnect(code);
                }
                true
            }
        };
        if !reader_done {
            let wait: Cold<'_, _> = Box::pin(tokio::time::timeout(CLOSE_WAIT, &mut reader));
            let _ = wait.await;
        }
    }
    session.leave_all();
}

/// The hello phase (HELLO-FIRST, HELLO-DEADLINE, authentication, welcome):
/// the open session with its accounting guard, or `None` when the
/// connection was closed instead. Boxed: see [`Cold`].
fn open_session<'a>(
    shared: &'a Arc<Shared>,
    sink: &'a mut Sink,
    stream: &'a mut Stream,
    codec: Codec,
    guard: &'a ConnGuard,
) -> Cold<'a, Option<(crate::server::SessionGuard, Session, Arc<Outbox>)>> {
    Box::pin(async move {
        let sp = codec.subprotocol();
        if let Some((code, reason)) = guard.refusal() {
            // VER-REFUSE-AFTER-ACCEPT: over capacity (4102).
            close_early(shared, sink, stream, codec, code, &reason).await;
            return None;
        }
        let session_guard = shared.session_opened(Transport::Ws);
        let hello = match read_hello(shared, stream, codec).await {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err((code, reason)) => {
                close_early(shared, sink, stream, codec, code, &reason).await;
                return None;
            }
        };
        let identity = match shared.auth.authenticate(&hello.token, crate::now_ms()) {
            Ok(i) => i,
            Err(e) => {
                let code = e.close_code();
                close_early(shared, sink, stream, codec, code, &e.to_string()).await;
                return None;
            }
        };
        let (features, names) = session::negotiate_features(shared, &hello.features, sp.version);
        let session_id = shared.new_session_id();
        let welcome = session::welcome(shared, sp, &session_id, names, &identity);
        if send_now(sink, codec, &welcome).await.is_err() {
            return None;
        }
        tracing::debug!(session = %session_id, user = %identity.user, subprotocol = %sp, "session open");
        let member = v2::PresenceMember {
            session_id,
            user: identity.user.to_string(),
            info: identity.info.clone(),
        };
        let capacity = shared.config.send_queue_frames as usize;
        let outbox = Arc::new(Outbox::new(
            member,
            sp,
            features,
            capacity,
            shared.fault(Fault::UnboundedQueue),
            false,
        ));
        let session = Session::new(shared.clone(), outbox.clone(), identity);
        Some((session_guard, session, outbox))
    })
}

/// Waits for `hello` (HELLO-FIRST, HELLO-DEADLINE).
async fn read_hello(
    shared: &Shared,
    stream: &mut Stream,
    codec: Codec,
) -> Result<Option<v2::Hello>, Close> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(shared.config.hello_timeout_ms);
    loop {
        let frame = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                return Err((
                    close::AUTH_TIMEOUT,
                    "no hello before the first-message deadline".into(),
                ))
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return read_error(shared, e).map(|_| None),
            Ok(Some(Ok(m))) => m,
        };
        let (bytes, text) = match frame {
            Message::Text(t) => (Bytes::from(t), true),
            Message::Binary(b) => (b, false),
            Message::Close(_) => return Ok(None),
            _ => continue,
        };
        shared.metrics.messages_in(1);
        let envelope: v2::Envelope = codec
            .decode_frame(&bytes, Some(text))
            .map_err(|e| decode_close(shared, e))?;
        return match envelope.body {
            Some(Body::Hello(h)) => Ok(Some(h)),
            // HELLO-FIRST, CLOSE-UNAUTHENTICATED.
            _ => Err((
                close::PROTOCOL_VIOLATION,
                "the first message must be hello".into(),
            )),
        };
    }
}

fn decode_close(shared: &Shared, e: DecodeError) -> Close {
    let mut code = e.close_code();
    if code == close::MESSAGE_TOO_BIG && shared.fault(Fault::WrongOversizeCode) {
        code = close::BAD_FRAME;
    }
    let mut reason = e.to_string();
    truncate(&mut reason, 123);
    (code, reason)
}

/// Maps a transport read error to a close, or `Ok` when the peer is gone.
fn read_error(shared: &Shared, e: WsError) -> Result<(), Close> {
    match e {
        WsError::Capacity(c) => {
            // CLOSE-OVERSIZE: tungstenite stops at the frame header, before
            // reading the payload.
            let code = if shared.fault(Fault::WrongOversizeCode) {
                close::BAD_FRAME
            } else {
                close::MESSAGE_TOO_BIG
            };
            Err((code, format!("frame too large: {c}")))
        }
        WsError::Utf8(_) => Err((close::BAD_FRAME, "text frame is not valid UTF-8".into())),
        // The peer vanished without a close frame: nothing to answer.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ok(()),
        WsError::Protocol(p) => Err((close::BAD_FRAME, format!("WebSocket protocol error: {p}"))),
        _ => Ok(()),
    }
}

/// The reader half: returns the close code observed when the peer left.
async fn read_loop(session: &mut Session, stream: &mut Stream, codec: Codec) -> u16 {
    let shared = session.shared.clone();
    let outbox = session.outbox.clone();
    // One watch for ticks and shutdown (shutdown also ticks): one wait
    // future per connection instead of two.
    let mut tick = shared.tick_rx();
    let mut closing = false;
    if shared.is_shutting_down() {
        outbox.close(close::GOING_AWAY, "server shutting down", None);
        closing = true;
    }
    loop {
        tokio::select! {
            _ = tick.changed(), if !closing => {
                if shared.is_shutting_down() {
                    // CLOSE-SHUTDOWN; spread v2 reconnects (CLOSE-RETRY-AFTER).
                    let retry = (outbox.subprotocol().version == Version::V2).then(|| fastrand::u64(0..1000));
                    outbox.close(close::GOING_AWAY, "server shutting down", retry);
                    closing = true;
                } else if let Err((code, reason)) = session.tick(Instant::now(), true) {
                    outbox.close(code, reason, None);
                    closing = true;
                }
            }
            frame = stream.next() => {
                let frame = match frame {
                    None => return close::ABNORMAL,
                    Some(Err(e)) => match read_error(&shared, e) {
                        Ok(()) => return close::ABNORMAL,
                        Err((code, reason)) => {
                            outbox.close(code, reason, None);
                            // The stream cannot be read past a broken frame;
                            // wait for the writer to send the close.
                            return std::future::pending().await;
                        }
                    },
                    Some(Ok(f)) => f,
                };
                // HB-ANY-FRAME: every frame proves liveness.
                session.last_rx = Instant::now();
                let (bytes, text) = match frame {
                    Message::Text(t) => (Bytes::from(t), true),
                    Message::Binary(b) => (b, false),
                    Message::Close(c) => {
                        let code = c.map(|c| u16::from(c.code)).unwrap_or(close::NORMAL);
                        // Let tungstenite flush its close reply before leaving.
                        let wait: Cold<'_, _> = Box::pin(tokio::time::timeout(CLOSE_WAIT, drain(stream)));
                        let _ = wait.await;
                        return code;
                    }
                    _ => continue,
                };
                if closing {
                    continue;
                }
                shared.metrics.messages_in(1);
                if let Err((code, reason)) = process(session, codec, &bytes, text) {
                    outbox.close(code, reason, None);
                    closing = true;
                }
            }
        }
    }
}

fn process(session: &mut Session, codec: Codec, bytes: &[u8], text: bool) -> Result<(), Close> {
    let envelope: v2::Envelope = codec
        .decode_frame(bytes, Some(text))
        .map_err(|e| decode_close(&session.shared, e))?;
    let n = match &envelope.body {
        Some(Body::Batch(b)) => b.envelopes.len().max(1),
        _ => 1,
    };
    session.charge(n, Instant::now())?;
    session.handle(envelope)
}

/// The writer half: drains the outbox, then sends the disconnect and close.
async fn write_loop(shared: &Shared, mut sink: Sink, outbox: &Outbox) {
    let mut buf = VecDeque::new();
    let sp = outbox.subprotocol();
    let batch = sp.version == Version::V2
        && outbox.features().has(Features::BATCH)
        && shared.config.batch_deliveries;
    let max_frame = 2 * shared.config.max_message_bytes as usize;
    loop {
        // A flag rather than the request: the request stays in the outbox
        // (the first one wins), and the flag keeps it out of the write's state.
        let mut closing = outbox.take(&mut buf).is_some();
        if !buf.is_empty() {
            let n = buf.len() as u64;
            let max_batch = shared.config.max_batch as usize;
            let result = tokio::select! {
                r = write_frames(&mut sink, sp, &mut buf, batch, max_batch, max_frame) => r.map(|_| true),
                // Abandoned: whole frames stay buffered, the close follows them.
                _ = blocked_write_abort(outbox) => Ok(false),
            };
            buf.clear();
            shared.metrics.messages_out(n);
            match result {
                // Frames pushed during the write may have had their wake-up
                // consumed by `blocked_write_abort`: take again before waiting.
                Ok(true) if !closing => continue,
                Ok(true) => {}
                Ok(false) => closing = true,
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    if let Some(c) = outbox.closing() {
                        shared.metrics.disconnect(c.code);
                    }
                    return;
                }
            }
        }
        if let Some(c) = outbox.closing().filter(|_| closing) {
            return send_close(shared, &mut sink, sp, c).await;
        }
        // Idle: an idle session holds no queue storage (`Outbox::take`
        // left the queue's own storage with it; this frees the writer's).
        buf = VecDeque::new();
        outbox.changed().await;
    }
}

/// CLOSE-DISCONNECT-NOTICE: the disconnect envelope, then the close frame.
/// Boxed by the caller's `.await`: it runs once per connection, so its
/// state should not enlarge every idle connection's future.
fn send_close<'a>(
    shared: &'a Shared,
    sink: &'a mut Sink,
    sp: Subprotocol,
    c: crate::outbox::CloseRequest,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        shared.metrics.disconnect(c.code);
        let mut reason = if shared.fault(Fault::NoCloseReason) {
            String::new()
        } else {
            c.reason
        };
        truncate(&mut reason, 123);
        let disconnect = v2::Envelope {
            body: Some(Body::Disconnect(v2::Disconnect {
                code: c.code as u32,
                reason: reason.clone(),
                retry_after_ms: c.retry_after_ms,
            })),
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            // CLOSE-DISCONNECT-NOTICE: the disconnect is the last envelope.
            send_now(sink, Codec::new(sp), &disconnect).await?;
            close_frame_raw(sink, c.code, &reason).await
        })
        .await;
    })
}

/// Resolves when a blocked write should be abandoned: at once for a slow
/// consumer (its socket is full), after a grace period for other closes.
pub(crate) async fn blocked_write_abort(outbox: &Outbox) {
    loop {
        outbox.changed().await;
        if let Some(code) = outbox.closing().map(|c| c.code) {
            if code != close::SLOW_CONSUMER {
                // Boxed: this future is built for every write, the timer
                // only on a close.
                Box::pin(tokio::time::sleep(BLOCKED_WRITE_GRACE)).await;
            }
            return;
        }
    }
}

/// The bytes of a queued frame in this session's encoding.
fn frame_bytes(out: Out, sp: Subprotocol) -> Option<Bytes> {
    match out {
        Out::Own(b, _) | Out::Encoded(b) => Some(b),
        Out::Shared(f) => f.bytes(sp).ok(),
    }
}

/// Feeds every queued frame to tungstenite (which writes each 16 KiB it
/// accumulates) and flushes once. Written against the `Sink` poll methods:
/// its state is the queue itself, so every connection's task holds a few
/// references here instead of an async body with a message in flight.
fn write_frames<'a>(
    sink: &'a mut Sink,
    sp: Subprotocol,
    buf: &'a mut VecDeque<Out>,
    batch: bool,
    max_batch: usize,
    max_frame: usize,
) -> impl std::future::Future<Output = Result<(), WsError>> + 'a {
    std::future::poll_fn(move |cx| {
        loop {
            // A frame leaves the queue only once the sink can take it, so a
            // write abandoned while pending loses nothing it had accepted.
            std::task::ready!(sink.poll_ready_unpin(cx))?;
            let Some(bytes) = next_frame(buf, sp, batch, max_batch, max_frame) else {
                break;
            };
            sink.start_send_unpin(data_message(sp, bytes)?)?;
        }
        sink.poll_flush_unpin(cx)
    })
}

/// The next frame to write: the queue's first, or with `batch` the longest
/// run of queued frames that fits one `batch` envelope (v2, feature
/// `batch`: at most max_batch entries, LIMIT-SERVER-FRAME).
fn next_frame(
    buf: &mut VecDeque<Out>,
    sp: Subprotocol,
    batch: bool,
    max_batch: usize,
    max_frame: usize,
) -> Option<Bytes> {
    let first = loop {
        if let Some(b) = frame_bytes(buf.pop_front()?, sp) {
            break b;
        }
    };
    if !batch || buf.is_empty() {
        return Some(first);
    }
    let mut size = BATCH_OVERHEAD + first.len() + BATCH_ENTRY_OVERHEAD;
    let mut frames = vec![first];
    while frames.len() < max_batch {
        let Some(next) = buf.pop_front() else { break };
        let Some(next) = frame_bytes(next, sp) else {
            continue;
        };
        if size + next.len() + BATCH_ENTRY_OVERHEAD > max_frame {
            buf.push_front(Out::Encoded(next));
            break;
        }
        size += next.len() + BATCH_ENTRY_OVERHEAD;
        frames.push(next);
    }
    Some(if frames.len() > 1 {
        assemble_batch(sp.encoding, &frames)
    } else {
        frames.pop().expect("one frame")
    })
}

fn data_message(sp: Subprotocol, bytes: Bytes) -> Result<Message, WsError> {
    if sp.encoding.is_text() {
        let text = Utf8Bytes::try_from(bytes).map_err(|e| WsError::Utf8(e.to_string()))?;
        Ok(Message::Text(text))
    } else {
        Ok(Message::Binary(bytes))
    }
}

async fn send_now(sink: &mut Sink, codec: Codec, envelope: &v2::Envelope) -> Result<(), WsError> {
    let bytes = codec
        .encode(envelope)
        .map_err(|e| WsError::Utf8(e.to_string()))?;
    sink.send(data_message(codec.subprotocol(), bytes)?).await
}

/// Closes a connection whose session never opened: disconnect, close frame,
/// then a short wait for the client's close.
async fn close_early(
    shared: &Shared,
    sink: &mut Sink,
    stream: &mut Stream,
    codec: Codec,
    code: u16,
    reason: &str,
) {
    shared.metrics.disconnect(code);
    let mut reason = if shared.fault(Fault::NoCloseReason) {
        String::new()
    } else {
        reason.to_string()
    };
    truncate(&mut reason, 123);
    let disconnect = v2::Envelope {
        body: Some(Body::Disconnect(v2::Disconnect {
            code: code as u32,
            reason: reason.clone(),
            retry_after_ms: None,
        })),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        send_now(sink, codec, &disconnect).await?;
        close_frame_raw(sink, code, &reason).await
    })
    .await;
    let _ = tokio::time::timeout(CLOSE_WAIT, drain(stream)).await;
}

async fn close_frame(shared: &Shared, sink: &mut Sink, code: u16, reason: &str) {
    let reason = if shared.fault(Fault::NoCloseReason) {
        ""
    } else {
        reason
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, close_frame_raw(sink, code, reason)).await;
}

async fn close_frame_raw(sink: &mut Sink, code: u16, reason: &str) -> Result<(), WsError> {
    let mut reason = reason.to_string();
    // CLOSE-REASON-REQUIRED: at most 123 bytes.
    truncate(&mut reason, 123);
    sink.send(Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    })))
    .await
}

async fn drain(stream: &mut Stream) {
    while let Some(Ok(_)) = stream.next().await {}
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
