//! The WebSocket transport: the opening handshake (subprotocol
//! negotiation, Origin), then the connection's task runs the session core
//! over the connection's frames: RFC 6455 frames read by `ws_read`, the
//! session's frames written pre-framed by `ws_socket`. The handshake is
//! answered by `http::serve` straight off the socket for a plain upgrade
//! (`head`), or by hyper's `/ws` route for anything else; both run
//! [`accept`] and [`open`].

use std::sync::Arc;

use courier_protocol::{close, Codec, Subprotocol};
use hyper::body::Incoming;
use hyper::header::{
    HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_PROTOCOL, SEC_WEBSOCKET_VERSION,
    UPGRADE,
};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use super::head::RequestHeaders;
use super::http::{text_response, Body as HttpBody};
use super::linger::Lingering;
use super::ws_read::{self, ReadState};
use super::ws_socket;
use super::{ConnGuard, Shared, Transport};
use crate::frame::Wire;
use crate::session;
use crate::session::driver::{self, Cold, FrameSink, FrameSource, Inbound, CLOSE_WAIT};

/// What a connection's socket must be.
pub(crate) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Socket for S {}

// LINGER: the socket outlives the connection briefly so a close frame
// is not destroyed by a reset (see `linger`).
type WsSink<S> = ws_socket::WsSink<Lingering<S>>;

/// An upgrade request the server takes.
pub(crate) struct Accepted {
    /// `Sec-WebSocket-Accept` (RFC 6455 4.2.2).
    key: String,
    /// The subprotocol selected, `None` when no offer is supported (the
    /// upgrade still succeeds, then closes with 4001: VER-ACCEPT-THEN-CLOSE).
    pub selected: Option<Subprotocol>,
}

/// Why an upgrade request is answered with an HTTP error.
pub(crate) enum Refused {
    NotAnUpgrade,
    /// Not `Sec-WebSocket-Version: 13` (RFC 6455 4.4).
    Version,
    /// `Origin` not in `allowed_origins`.
    Origin,
}

impl Refused {
    fn response(self) -> Response<HttpBody> {
        match self {
            Refused::NotAnUpgrade => {
                text_response(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade\n")
            }
            Refused::Version => {
                let mut r = text_response(
                    StatusCode::UPGRADE_REQUIRED,
                    "unsupported WebSocket version\n",
                );
                r.headers_mut()
                    .insert(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
                r
            }
            Refused::Origin => text_response(StatusCode::FORBIDDEN, "origin not allowed\n"),
        }
    }
}

/// Judges an upgrade request's headers and negotiates the subprotocol.
pub(crate) fn accept(
    shared: &Shared,
    headers: &(impl RequestHeaders + ?Sized),
) -> Result<Accepted, Refused> {
    let is_upgrade = headers
        .header("upgrade")
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"websocket"));
    let Some(key) = headers.header("sec-websocket-key").filter(|_| is_upgrade) else {
        return Err(Refused::NotAnUpgrade);
    };
    if headers
        .header("sec-websocket-version")
        .map(<[u8]>::trim_ascii)
        != Some(b"13")
    {
        return Err(Refused::Version);
    }
    if !shared.origin_allowed(headers) {
        return Err(Refused::Origin);
    }
    let offers: Vec<String> = headers
        .values("sec-websocket-protocol")
        .filter_map(|v| std::str::from_utf8(v).ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_string()))
        .collect();
    Ok(Accepted {
        key: tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.trim_ascii()),
        selected: shared.negotiate(&offers),
    })
}

impl Accepted {
    /// The `101` response head, for a socket answered without hyper.
    pub(crate) fn response_head(&self) -> Vec<u8> {
        let mut h = Vec::with_capacity(160);
        h.extend_from_slice(
            b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ",
        );
        h.extend_from_slice(self.key.as_bytes());
        if let Some(sp) = self.selected {
            // VER-SUBPROTOCOL: echo the selected name.
            h.extend_from_slice(b"\r\nsec-websocket-protocol: ");
            h.extend_from_slice(sp.name().as_bytes());
        }
        h.extend_from_slice(b"\r\n\r\n");
        h
    }
}

/// Answers `GET /ws` through hyper (the requests `http::serve` does not
/// answer itself): validates the upgrade and spawns the connection.
pub(crate) fn upgrade(
    shared: &Arc<Shared>,
    mut req: Request<Incoming>,
    guard: ConnGuard,
) -> Response<HttpBody> {
    let accepted = match accept(shared, req.headers()) {
        Ok(a) => a,
        Err(refused) => return refused.response(),
    };
    let mut resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "Upgrade")
        .header(SEC_WEBSOCKET_ACCEPT, &accepted.key);
    if let Some(sp) = accepted.selected {
        // VER-SUBPROTOCOL: echo the selected name.
        resp = resp.header(SEC_WEBSOCKET_PROTOCOL, sp.name());
    }
    let shared = shared.clone();
    let on_upgrade = hyper::upgrade::on(&mut req);
    let selected = accepted.selected;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => open(shared, TokioIo::new(upgraded), &[], selected, guard).await,
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    });
    resp.body(super::http::empty()).expect("valid response")
}

/// The session of a WebSocket connection whose `101` was sent; `read`
/// holds bytes the peer sent behind its request head. Built before it is
/// awaited, so the task that awaits it holds the session's future and
/// nothing of its set-up.
pub(crate) fn open<S: Socket>(
    shared: Arc<Shared>,
    io: S,
    read: &[u8],
    selected: Option<Subprotocol>,
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> + Send {
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
    let text = selected.is_some_and(|sp| sp.encoding.is_text());
    let state = ReadState::new(max, c.ws_read_buffer_bytes as usize).with_read(read);
    let (socket, sink) = ws_socket::split(Lingering::new(io), text, state);
    run(shared, sink, WsSource { socket }, selected, guard)
}

/// Runs the connection, through the faulty transport layer when a fault
/// is injected (feature `faults`). Not `async`: an async function keeps
/// its arguments for its whole life, and the session's future already
/// holds the sink and the source once.
fn run<S: Socket>(
    shared: Arc<Shared>,
    sink: WsSink<S>,
    source: WsSource<S>,
    selected: Option<Subprotocol>,
    guard: ConnGuard,
) -> impl std::future::Future<Output = ()> + Send {
    #[cfg(feature = "faults")]
    if let Some(fault) = shared.fault {
        let wire = selected.map(Wire::WebSocket);
        let (sink, source) =
            crate::faults::transport::wrap(shared.env.clone(), fault, wire, sink, source);
        // Boxed: the mutants' connections need not share the task layout.
        let faulty: Cold<'static, ()> = Box::pin(connect(shared, sink, source, selected, guard));
        return futures_util::future::Either::Left(faulty);
    }
    let session = connect(shared, sink, source, selected, guard);
    #[cfg(feature = "faults")]
    let session = futures_util::future::Either::Right(session);
    session
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
    driver::run(session, &mut sink, &mut source).await;
}

/// The reading half of a WebSocket.
struct WsSource<S: Socket> {
    socket: ws_socket::Shared<Lingering<S>>,
}

impl<S: Socket> FrameSource for WsSource<S> {
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
