//! The HTTP side (hyper 1): the accept loop (plain or TLS), per-connection
//! accounting, and routing of `/ws`, `/sse`, `/publish`, `/healthz` and
//! `/metrics` on one port.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{ConnGuard, Shared};

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
        let tls = tls.clone();
        tokio::spawn(async move {
            match tls {
                None => serve(shared, tcp, peer, guard).await,
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve(shared, stream, peer, guard).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    tracing::debug!("stopped accepting connections");
}

pub(crate) async fn serve<I>(shared: Arc<Shared>, io: I, peer: SocketAddr, guard: ConnGuard)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
