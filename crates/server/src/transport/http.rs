//! The HTTP side (hyper 1): the accept loop (plain or TLS), per-connection
//! accounting, and routing of `/ws`, `/sse`, `/publish`, `/healthz` and
//! `/metrics` on one port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::Subprotocol;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::head::{self, Prefixed};
use super::ws::Socket;
use super::{ConnGuard, Shared};
use crate::session::driver::Cold;

/// Response body type of every route.
pub(crate) type Body = UnsyncBoxBody<Bytes, Infallible>;

/// Slowloris guard: the request head must arrive within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes must finish within this time.
const TLS_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn empty() -> Body {
    Empty::new().boxed_unsync()
}

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

pub(crate) fn text_response(status: StatusCode, text: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(full(text))
        .expect("valid response")
}

/// Accepts connections until the drain after shutdown ends.
pub(crate) async fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
) {
    // Accepting goes on through the drain, so that load balancers get
    // `/healthz` 503 rather than a refused connection.
    let stopped = shared.env.lifecycle.stopped();
    tokio::pin!(stopped);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let _ = tcp.set_nodelay(true);
        let guard = shared.connection(peer);
        let shared = shared.clone();
        // One task type per kind of socket: the task of a WebSocket session
        // lives as long as the session, and its size is that of the largest
        // state its future can be in.
        match tls.clone() {
            None => tokio::spawn(serve(shared, tcp, peer, guard)),
            Some(acceptor) => tokio::spawn(async move {
                // Boxed: a TLS handshake's state is kilobytes, needed once.
                let handshake: Cold<'_, _> =
                    Box::pin(tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)));
                match handshake.await {
                    Ok(Ok(stream)) => serve(shared, stream, peer, guard).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }),
        };
    }
    tracing::debug!("stopped accepting connections");
}

/// Serves one accepted connection. Its first request head is read here: a
/// plain WebSocket upgrade is answered off the socket and the task goes on
/// as the WebSocket session (see `head`); anything else is served by hyper,
/// the bytes read so far replayed first.
pub(crate) async fn serve<I: Socket>(
    shared: Arc<Shared>,
    io: I,
    peer: SocketAddr,
    guard: ConnGuard,
) {
    // Cold: the handshake's state stays out of the task a session lives in.
    let first: Cold<'_, First<I>> = Box::pin(first_request(&shared, io, peer));
    match first.await {
        First::WebSocket { io, read, selected } => {
            let session = super::ws::open(shared, io, &read, selected, guard);
            drop(read);
            session.await;
        }
        First::Http(io) => {
            let http: Cold<'_, ()> = Box::pin(serve_http(shared, io, peer, guard));
            http.await;
        }
        First::Gone => {}
    }
}

/// What a connection's first request turned out to be.
enum First<I> {
    /// A plain upgrade, answered with the `101`: the session follows, with
    /// the bytes read behind the request head.
    WebSocket {
        io: I,
        read: Vec<u8>,
        selected: Option<Subprotocol>,
    },
    /// Any other request, for hyper, the bytes read so far replayed first.
    Http(Prefixed<I>),
    /// The peer left or stalled before a whole head, or the `101` could
    /// not be written.
    Gone,
}

/// Reads the first request head (within [`HEADER_TIMEOUT`]: slowloris) and
/// answers it when it is a plain upgrade.
async fn first_request<I: Socket>(shared: &Shared, mut io: I, peer: SocketAddr) -> First<I> {
    let mut buf = Vec::new();
    let read = head::read(&mut io, &mut buf, |req| plain_upgrade(shared, req));
    let (accepted, len) = match tokio::time::timeout(HEADER_TIMEOUT, read).await {
        Ok(Ok(Some(picked))) => picked,
        Ok(Ok(None)) => return First::Http(Prefixed::new(buf, io)),
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "connection ended before a request");
            return First::Gone;
        }
        Err(_) => {
            tracing::debug!(%peer, "request head timed out");
            return First::Gone;
        }
    };
    let read = buf.split_off(len);
    let written = async {
        io.write_all(&accepted.response_head()).await?;
        io.flush().await
    };
    if let Err(e) = written.await {
        tracing::debug!(%peer, error = %e, "writing the 101 failed");
        return First::Gone;
    }
    First::WebSocket {
        io,
        read,
        selected: accepted.selected,
    }
}

/// A request `serve` answers itself: `GET /ws` over HTTP/1.1, without a
/// body, an upgrade that [`super::ws::accept`] takes, while the server
/// takes sessions. Refusals are hyper's to answer (the route runs the same
/// check and renders its status).
fn plain_upgrade(shared: &Shared, req: &head::Parsed<'_, '_>) -> Option<super::ws::Accepted> {
    let to_ws = req.path == "/ws" || req.path.starts_with("/ws?");
    if req.method != "GET"
        || !to_ws
        || !req.http11
        || req.has_body()
        || shared.env.lifecycle.is_shutting_down()
    {
        return None;
    }
    super::ws::accept(shared, req.headers).ok()
}

async fn serve_http<I: Socket>(shared: Arc<Shared>, io: I, peer: SocketAddr, guard: ConnGuard) {
    let mut shutdown = shared.env.lifecycle.shutdown_rx();
    let svc_shared = shared.clone();
    let service = service_fn(move |req| {
        let shared = svc_shared.clone();
        let guard = guard.clone();
        async move { Ok::<_, Infallible>(route(&shared, req, guard).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}

async fn route(shared: &Arc<Shared>, req: Request<Incoming>, guard: ConnGuard) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let draining = shared.env.lifecycle.is_shutting_down();
    match (path.as_str(), method) {
        // CLOSE-SHUTDOWN: no new session while draining; a load balancer
        // retries elsewhere.
        ("/ws" | "/sse" | "/publish", _) if draining => {
            text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
        }
        ("/ws", Method::GET) => super::ws::upgrade(shared, req, guard),
        ("/sse", Method::GET) if shared.env.config.sse => super::sse::stream(shared, req, guard),
        ("/publish", Method::POST) if shared.env.config.sse => {
            super::sse::publish(shared, req).await
        }
        ("/healthz", Method::GET) => {
            if shared.env.lifecycle.is_shutting_down() {
                text_response(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
            } else {
                text_response(StatusCode::OK, "ok\n")
            }
        }
        ("/metrics", Method::GET) => Response::builder()
            .header(
                hyper::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )
            .body(full(shared.env.metrics.render(&metrics_scraped(shared))))
            .expect("valid response"),
        ("/ws" | "/healthz" | "/metrics", _) => {
            text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        ("/sse" | "/publish", _) if shared.env.config.sse => {
            text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => text_response(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// The figures `/metrics` reads from the hub and the engine.
fn metrics_scraped(shared: &Shared) -> crate::metrics::Scraped<'_> {
    let engine = shared.env.hub.engine();
    let dedupe = engine.dedupe_stats();
    crate::metrics::Scraped {
        queue_depth: shared.queue_depth(),
        channels: engine.channel_count(),
        dedupe_records: dedupe.records,
        dedupe_bytes: dedupe.bytes,
        dedupe_evicted_early: dedupe.evicted_early,
        delivery: shared.env.hub.delivery_latency(),
    }
}
