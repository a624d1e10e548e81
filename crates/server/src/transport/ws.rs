//! The WebSocket transport: the upgrade (subprotocol negotiation, Origin),
//! then one task per connection running the session core over the
//! connection's frames over hyper's upgraded socket: RFC 6455 frames read
//! by `ws_read`, the session's frames written pre-framed by `ws_socket`.

use std::sync::Arc;

use courier_protocol::{close, Codec, Subprotocol};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_PROTOCOL,
    SEC_WEBSOCKET_VERSION, UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::http::{text_response, Body as HttpBody};
use super::linger::Lingering;
use super::ws_read::{self, ReadState};
use super::ws_socket;
use super::{ConnGuard, Shared, Transport};
use crate::frame::Wire;
use crate::session;
use crate::session::driver::{self, Cold, FrameSink, FrameSource, Inbound, CLOSE_WAIT};

// LINGER: the socket outlives the connection briefly so a close frame
// is not destroyed by a reset (see `linger`).
type Io = Lingering<TokioIo<hyper::upgrade::Upgraded>>;
type WsSink = ws_socket::WsSink<Io>;

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
        // Built in a cold box: its locals would otherwise stay reserved in
        // the connection's task for its whole life.
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
            let read = ReadState::new(max, c.ws_read_buffer_bytes as usize);
            let (socket, sink) =
                ws_socket::split(Lingering::new(TokioIo::new(upgraded)), text, read);
            Some((sink, WsSource { socket }))
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

/// The reading half of a WebSocket.
struct WsSource {
    socket: ws_socket::Shared<Io>,
}

impl FrameSource for WsSource {
    const INBOUND: bool = true;

    async fn next(&mut self) -> Inbound {
        let inbound = std::future::poll_fn(|cx| ws_read::poll_next(&self.socket, cx)).await;
        if let Inbound::Closed(code) = inbound {
            if code != close::ABNORMAL {
                // The peer's close was answered: let the reply go out and
                // the peer close the TCP connection before leaving.
                let wait: Cold<'_, _> = Box::pin(tokio::time::timeout(CLOSE_WAIT, self.drain()));
                let _ = wait.await;
            }
        }
        inbound
    }

    async fn drain(&mut self) {
        std::future::poll_fn(|cx| ws_read::poll_drain(&self.socket, cx)).await
    }
}
