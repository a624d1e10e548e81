//! Entry points for the fuzz targets (`fuzz/`) and their regression tests:
//! the real server, every layer wired as `start` wires them, driven without
//! sockets. [`FuzzServer::session`] runs the frame → session path of a
//! WebSocket connection after its upgrade (decode, rate limit, dispatch,
//! hub, engine, outbox, close); [`FuzzServer::http`] serves one HTTP/1.1
//! connection (request parsing, routing, `/sse` queries, `POST /publish`
//! bodies, the WebSocket upgrade and what follows it) over an in-memory
//! stream. Not a stable API: hidden from the docs.
//!
//! Runs are driven to quiescence rather than timed: the in-memory client
//! yields to the runtime until nothing moves any more, so an input costs
//! microseconds, not a timeout, and its outcome does not depend on the
//! machine's speed. Timers (heartbeats, deadlines) therefore never fire
//! within a run.

pub mod targets;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use courier_protocol::Subprotocol;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::session::driver::{Cold, FrameSink, FrameSource, Inbound};
use crate::transport::Shared;
use crate::{ServerBuilder, ServerConfig, ServerError};

/// Where the in-memory connections come from.
const PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 1);

/// Yields per settling round: enough for a request to travel transport →
/// session → hub → engine and its replies back to the outbox and socket.
const SETTLE_YIELDS: usize = 64;

/// Most settling rounds per HTTP run (a stream that keeps producing).
const MAX_ROUNDS: usize = 256;

/// Lets every task that can make progress do so.
async fn settle() {
    for _ in 0..SETTLE_YIELDS {
        tokio::task::yield_now().await;
    }
}

/// Most output bytes kept per run: an oracle needs the frames, not an
/// unbounded log.
const MAX_OUTPUT: usize = 1 << 20;

/// A server without a listener.
pub struct FuzzServer {
    shared: Arc<Shared>,
}

/// What a session run wrote.
#[derive(Debug, Default)]
pub struct SessionOutput {
    /// Frames the server wrote, in order (up to about 1 MiB of them).
    pub frames: Vec<Bytes>,
    /// The `disconnect` notice sent with the close, if any.
    pub notice: Option<Bytes>,
    /// The close code the server sent, if it closed.
    pub close: Option<u16>,
}

impl FuzzServer {
    /// Wires a server for `config` (its `listen` is ignored).
    pub async fn new(config: ServerConfig) -> Result<Self, ServerError> {
        let (shared, _) = ServerBuilder::new(config).assemble().await?;
        Ok(FuzzServer { shared })
    }

    /// One WebSocket session on `subprotocol` (already negotiated): the
    /// client sends `frames` (bytes, text?) in order, waits until the
    /// server has settled, then leaves with 1000.
    pub async fn session(
        &self,
        subprotocol: Subprotocol,
        frames: Vec<(Bytes, bool)>,
    ) -> SessionOutput {
        let mut out = SessionOutput::default();
        let sink = MemorySink {
            out: &mut out,
            bytes: 0,
        };
        let source = MemorySource {
            frames: frames.into(),
        };
        let guard = self.shared.connection(PEER);
        crate::transport::ws::connect(self.shared.clone(), sink, source, Some(subprotocol), guard)
            .await;
        out
    }

    /// One HTTP/1.1 connection: the client writes `input`, then reads the
    /// answer until the server closes or nothing more
    /// comes once everything settled (a live `/sse` stream or WebSocket).
    /// Returns what the server wrote (at most about 1 MiB).
    pub async fn http(&self, input: &[u8]) -> Vec<u8> {
        // Room for the whole input: writing it never waits for the server.
        let (mut client, server) = tokio::io::duplex(input.len().max(4096));
        let guard = self.shared.connection(PEER);
        let serve = tokio::spawn(crate::transport::http::serve(
            self.shared.clone(),
            server,
            PEER,
            guard,
        ));
        // The client's side stays open (hyper drops a response whose
        // request's connection was half-closed).
        let _ = client.write_all(input).await;
        let mut answer = Vec::new();
        let mut buf = vec![0u8; 16 * 1024];
        let mut idle = 0;
        for _ in 0..MAX_ROUNDS {
            settle().await;
            match client.read(&mut buf).now_or_never() {
                Some(Ok(0)) | Some(Err(_)) => break,
                Some(Ok(n)) => {
                    if answer.len() < MAX_OUTPUT {
                        answer.extend_from_slice(&buf[..n]);
                    }
                    idle = 0;
                }
                None if idle == 1 => break,
                None => idle += 1,
            }
        }
        // The server sees the client gone and ends what it still runs.
        drop(client);
        settle().await;
        serve.abort();
        answer
    }
}

/// The client side of [`FuzzServer::session`].
struct MemorySource {
    frames: VecDeque<(Bytes, bool)>,
}

impl FrameSource for MemorySource {
    const INBOUND: bool = true;

    async fn next(&mut self) -> Inbound {
        if let Some((bytes, text)) = self.frames.pop_front() {
            return Inbound::Frame { bytes, text };
        }
        // Replies and deliveries run before the client leaves.
        settle().await;
        Inbound::Closed(1000)
    }

    async fn drain(&mut self) {}
}

/// The server side of [`FuzzServer::session`]: always ready, keeps what it gets.
struct MemorySink<'a> {
    out: &'a mut SessionOutput,
    bytes: usize,
}

impl FrameSink for MemorySink<'_> {
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Bytes) -> io::Result<()> {
        if self.bytes < MAX_OUTPUT {
            self.bytes += frame.len();
            self.out.frames.push(frame);
        }
        Ok(())
    }

    fn poll_flush(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, _: &'a str) -> Cold<'a, ()> {
        self.out.notice = notice;
        self.out.close = Some(code);
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use courier_protocol::v2::envelope::Body;
    use courier_protocol::{v2, Codec};

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_session_runs_through_every_layer() {
        let sp: Subprotocol = "courier.v2.json".parse().unwrap();
        let frames = [
            r#"{"type":"hello"}"#,
            r#"{"type":"subscribe","id":"s","channel":"a"}"#,
            r#"{"type":"publish","id":"p","channel":"a","payload":1}"#,
        ]
        .map(|f| (Bytes::from(f), true))
        .to_vec();
        let out = runtime().block_on(async {
            let server = FuzzServer::new(ServerConfig::default()).await.unwrap();
            server.session(sp, frames).await
        });
        let codec = Codec::new(sp);
        let types: Vec<&str> = out
            .frames
            .iter()
            .map(|f| match codec.decode::<v2::Envelope>(f).unwrap().body {
                Some(Body::Welcome(_)) => "welcome",
                Some(Body::SubscribeAck(_)) => "subscribe_ack",
                Some(Body::PublishAck(_)) => "publish_ack",
                Some(Body::Message(_)) => "message",
                _ => "other",
            })
            .collect();
        assert_eq!(types[..2], ["welcome", "subscribe_ack"], "{types:?}");
        assert!(
            types.contains(&"publish_ack") && types.contains(&"message"),
            "{types:?}"
        );
        // The client left with 1000: the server sent no close of its own.
        assert_eq!(out.close, None);

        let bad = vec![(Bytes::from_static(b"{"), true)];
        let out = runtime().block_on(async {
            let server = FuzzServer::new(ServerConfig::default()).await.unwrap();
            server.session(sp, bad).await
        });
        assert_eq!(out.close, Some(courier_protocol::close::BAD_FRAME));
    }

    #[test]
    fn an_http_connection_is_served() {
        let answer = runtime().block_on(async {
            let server = FuzzServer::new(ServerConfig::default()).await.unwrap();
            server
                .http(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
        });
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("ok\n"), "{text}");
    }
}
