//! The WebSocket transport: the upgrade (subprotocol negotiation, Origin),
//! then one task per connection running the session core over the
//! connection's frames (tokio-tungstenite over hyper's upgrade).

use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use courier_protocol::{close, Codec, Subprotocol};
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

use super::http::{text_response, Body as HttpBody};
use super::linger::Lingering;
use super::{ConnGuard, Shared, Transport};
use crate::frame::Wire;
use crate::session::driver::{self, Cold, FrameSink, FrameSource, Inbound, CLOSE_WAIT};
use crate::session::{self, Close};

// LINGER: the socket outlives the connection briefly so a close frame
// is not destroyed by a reset (see `linger`).
type Ws = WebSocketStream<Lingering<TokioIo<hyper::upgrade::Upgraded>>>;

/// Frames fed to tungstenite accumulate up to this many bytes before a
/// socket write; `flush` writes the rest. A drained queue thus costs one
/// syscall per 16 KiB instead of one per frame. The buffer is allocated on
/// first use, so idle connections do not pay for it.
const WRITE_BUFFER: usize = 16 * 1024;

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
    let text = selected.is_some_and(|sp| sp.encoding.is_text());
    let fut = async move {
        // The socket is built in a cold box: the stream, as a local of this
        // task, would otherwise keep its size reserved for the whole
        // connection after being moved into the split halves.
        let halves: Cold<'_, Option<(WsSink, WsSource)>> = Box::pin(async {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => {
                    tracing::debug!(error = %e, "upgrade failed");
                    return None;
                }
            };
            let c = &shared.env.config;
            let max = c.max_message_bytes as usize;
            // Breaks CLOSE-OVERSIZE: the frame is read before its size is judged.
            #[cfg(feature = "faults")]
            let max = match shared.fault {
                Some(crate::faults::Fault::ReadOversizeFrame) => max.saturating_mul(64),
                // Breaks LIMIT-ADVERTISED: frames at the advertised size are refused.
                Some(crate::faults::Fault::StricterFrameLimit) => max - max / 8,
                _ => max,
            };
            let config = WebSocketConfig::default()
                .read_buffer_size(c.ws_read_buffer_bytes as usize)
                .write_buffer_size(WRITE_BUFFER)
                .max_message_size(Some(max))
                .max_frame_size(Some(max));
            let ws = WebSocketStream::from_raw_socket(
                Lingering::new(TokioIo::new(upgraded)),
                Role::Server,
                Some(config),
            )
            .await;
            let (sink, stream) = ws.split();
            Some((WsSink { sink, text }, WsSource { stream }))
        });
        if let Some((sink, source)) = halves.await {
            run(shared, sink, source, selected, guard).await;
        }
    };
    tokio::spawn(fut);
    resp.body(super::http::empty()).expect("valid response")
}

/// Runs the connection, through the faulty transport layer when a fault
/// is injected (feature `faults`).
async fn run(
    shared: Arc<Shared>,
    sink: WsSink,
    source: WsSource,
    selected: Option<Subprotocol>,
    guard: ConnGuard,
) {
    #[cfg(feature = "faults")]
    if let Some(fault) = shared.fault {
        let wire = selected.map(Wire::WebSocket);
        let (sink, source) =
            crate::faults::transport::wrap(shared.env.clone(), fault, wire, sink, source);
        return connect(shared, sink, source, selected, guard).await;
    }
    connect(shared, sink, source, selected, guard).await
}

pub(crate) async fn connect<W: FrameSink, R: FrameSource>(
    shared: Arc<Shared>,
    mut sink: W,
    mut source: R,
    selected: Option<Subprotocol>,
    guard: ConnGuard,
) {
    let env = shared.env.clone();
    let Some(sp) = selected else {
        // VER-ACCEPT-THEN-CLOSE, VER-MISMATCH-REASON: no data frame, no disconnect.
        let reason = courier_protocol::subprotocol::mismatch_reason(&shared.supported);
        let close = (close::UNSUPPORTED_VERSION, reason);
        return driver::close_early(&env, &mut sink, &mut source, None, close).await;
    };
    let wire = Wire::WebSocket(sp);
    // The hello phase in a cold box (see [`Cold`]).
    let opened: Cold<'_, _> = Box::pin(async {
        if let Some(close) = guard.refusal() {
            // VER-REFUSE-AFTER-ACCEPT: over capacity (4102).
            driver::close_early(&env, &mut sink, &mut source, Some(wire), close).await;
            return None;
        }
        let session_guard = shared.session_opened(Transport::Ws);
        let codec = Codec::new(sp).with_max_message_bytes(env.config.max_message_bytes as usize);
        let hello = match driver::read_hello(&env, &mut source, codec).await {
            Ok(Some(hello)) => hello,
            Ok(None) => return None,
            Err(close) => {
                driver::close_early(&env, &mut sink, &mut source, Some(wire), close).await;
                return None;
            }
        };
        match session::open(&env, wire, hello) {
            Ok(session) => Some((session_guard, session)),
            Err(close) => {
                driver::close_early(&env, &mut sink, &mut source, Some(wire), close).await;
                None
            }
        }
    });
    let Some((_session_guard, session)) = opened.await else {
        return;
    };
    let _registered = shared.register(session.outbox.clone());
    driver::run(session, sink, source).await;
}

/// The writing half of a WebSocket: session frames as text (JSON) or
/// binary messages.
struct WsSink {
    sink: SplitSink<Ws, Message>,
    text: bool,
}

impl WsSink {
    fn message(&self, bytes: Bytes) -> io::Result<Message> {
        if self.text {
            let text = Utf8Bytes::try_from(bytes).map_err(io::Error::other)?;
            Ok(Message::Text(text))
        } else {
            Ok(Message::Binary(bytes))
        }
    }
}

impl FrameSink for WsSink {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sink.poll_ready_unpin(cx).map_err(io::Error::other)
    }

    fn start_send(&mut self, frame: Bytes) -> io::Result<()> {
        let message = self.message(frame)?;
        self.sink
            .start_send_unpin(message)
            .map_err(io::Error::other)
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.sink.poll_flush_unpin(cx).map_err(io::Error::other)
    }

    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, reason: &'a str) -> Cold<'a, ()> {
        Box::pin(async move {
            if let Some(notice) = notice {
                let Ok(message) = self.message(notice) else {
                    return;
                };
                if self.sink.send(message).await.is_err() {
                    return;
                }
            }
            let _ = self
                .sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                })))
                .await;
        })
    }
}

/// The reading half of a WebSocket.
struct WsSource {
    stream: SplitStream<Ws>,
}

impl FrameSource for WsSource {
    const INBOUND: bool = true;

    async fn next(&mut self) -> Inbound {
        match self.stream.next().await {
            None => Inbound::Closed(close::ABNORMAL),
            Some(Err(e)) => match read_error(e) {
                Some(close) => Inbound::Broken(close),
                None => Inbound::Closed(close::ABNORMAL),
            },
            Some(Ok(Message::Text(t))) => Inbound::Frame {
                bytes: Bytes::from(t),
                text: true,
            },
            Some(Ok(Message::Binary(b))) => Inbound::Frame {
                bytes: b,
                text: false,
            },
            Some(Ok(Message::Close(c))) => {
                let code = c.map(|c| u16::from(c.code)).unwrap_or(close::NORMAL);
                // Let tungstenite flush its close reply before leaving.
                let wait: Cold<'_, _> = Box::pin(tokio::time::timeout(CLOSE_WAIT, self.drain()));
                let _ = wait.await;
                Inbound::Closed(code)
            }
            Some(Ok(_)) => Inbound::Control,
        }
    }

    async fn drain(&mut self) {
        while let Some(Ok(_)) = self.stream.next().await {}
    }
}

/// Maps a transport read error to a close, or `None` when the peer is gone.
fn read_error(e: WsError) -> Option<Close> {
    match e {
        // CLOSE-OVERSIZE: tungstenite stops at the frame header, before
        // reading the payload.
        WsError::Capacity(c) => Some((close::MESSAGE_TOO_BIG, format!("frame too large: {c}"))),
        WsError::Utf8(_) => Some((close::BAD_FRAME, "text frame is not valid UTF-8".into())),
        // The peer vanished without a close frame: nothing to answer.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Protocol(p) => Some((close::BAD_FRAME, format!("WebSocket protocol error: {p}"))),
        _ => None,
    }
}
