//! Session transcripts recorded from a live run of the embedded reference
//! server: scripted sessions over real WebSockets on 127.0.0.1, each frame
//! kept with its direction, decoded JSON and, for binary encodings, bytes.
//! Nothing is hand-written, so the transcripts cannot drift from what the
//! server does.

use std::time::Duration;

use courier_client::{handshake, raw};
use courier_conformance::embedded::Embedded;
use courier_conformance::tokens;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{wire, Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::encodings::{hex_lines, indent_json};

/// One recorded session.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    /// Anchor (`publish-duplicate`).
    pub id: String,
    pub title: String,
    /// What the session shows (Markdown).
    pub description: String,
    pub steps: Vec<Step>,
}

/// One frame, or a note between frames.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `c2s`, `s2c` or empty for a note.
    pub dir: &'static str,
    /// `→` (client to server) or `←`.
    pub arrow: &'static str,
    /// The envelope's type, when the frame is one.
    pub type_name: Option<String>,
    /// The envelope as JSON text (decoded from binary encodings), or the
    /// close frame.
    pub text: String,
    /// Hex of a binary frame.
    pub hex: Option<String>,
    /// A note (connection opened, dropped, closed).
    pub note: Option<String>,
}

impl Step {
    /// The recorded envelope as JSON, when the step is one.
    pub fn json(&self) -> Option<serde_json::Value> {
        self.type_name
            .as_ref()
            .and_then(|_| serde_json::from_str(&self.text).ok())
    }
}

/// Why recording failed. The server and the script run on loopback with
/// generous timeouts, so any of these is a bug in the server or the script.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The embedded server did not start.
    #[error("starting the reference server: {0}")]
    Server(String),
    /// The WebSocket connection or a frame failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    /// No frame arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The server answered something other than what the script expects.
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// The recording runtime could not be created.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

const SECRET: &str = "courier-docs-transcript-secret";
const WAIT: Duration = Duration::from_secs(3);

/// Records every scripted session against a fresh embedded server; returns
/// them with the server's name. Runs on its own thread and runtime, so it
/// works whether or not the caller is inside a tokio runtime.
pub fn record_all() -> Result<(Vec<Transcript>, String), TranscriptError> {
    std::thread::spawn(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async { tokio::time::timeout(Duration::from_secs(60), record()).await })
            .map_err(|_| TranscriptError::Timeout("the whole recording".into()))?
    })
    .join()
    .map_err(|_| TranscriptError::Unexpected("the recording thread panicked".into()))?
}

async fn record() -> Result<(Vec<Transcript>, String), TranscriptError> {
    let mut config = courier_server::ServerConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..Default::default()
    };
    config.auth.hs256_secret = Some(SECRET.into());
    config.auth.allow_anonymous = Some(false);
    let server = Embedded::start_config(config)
        .await
        .map_err(|e| TranscriptError::Server(e.to_string()))?;
    let url = server.ws_url();
    let mut out = Vec::new();
    out.push(handshake(&url).await?);
    out.push(auth_and_refresh(&url).await?);
    out.push(publish_and_duplicate(&url).await?);
    out.push(drop_and_resume(&url).await?);
    let (mut closing, mut conn) = close_start(&url).await?;
    server.shutdown().await;
    conn.read_until_close(&mut closing).await?;
    out.push(closing);
    Ok((out, server.server_name().to_string()))
}

/// A JWT for `sub` valid for `ttl_s` seconds.
fn token(sub: &str, ttl_s: u64) -> Result<String, TranscriptError> {
    tokens::mint(SECRET, &tokens::Claims::new(sub, "chat", ttl_s))
        .map_err(|e| TranscriptError::Unexpected(e.to_string()))
}

fn env(body: Body) -> v2::Envelope {
    v2::Envelope { body: Some(body) }
}

fn hello(token: String) -> v2::Envelope {
    env(Body::Hello(v2::Hello {
        token,
        client: "courier-docs/transcript".into(),
        features: vec![],
    }))
}

fn note(t: &mut Transcript, text: impl Into<String>) {
    t.steps.push(Step {
        dir: "",
        arrow: "",
        type_name: None,
        text: String::new(),
        hex: None,
        note: Some(text.into()),
    });
}

fn transcript(id: &str, title: &str, description: &str) -> Transcript {
    Transcript {
        id: id.into(),
        title: title.into(),
        description: description.into(),
        steps: Vec::new(),
    }
}

/// One client connection that records what it sends and receives.
struct Conn {
    ws: WebSocketStream<handshake::CloseCodes<handshake::Stream>>,
    codec: Codec,
}

impl Conn {
    /// Opens a connection offering `offers`; notes what the server chose
    /// (the shared upgrade accepts a 101 without a subprotocol, which is how
    /// a server answers offers it cannot serve, VER-ACCEPT-THEN-CLOSE, and
    /// what the transcript shows).
    async fn open(
        url: &str,
        offers: &[&str],
        t: &mut Transcript,
    ) -> Result<(Conn, Option<String>), TranscriptError> {
        let unexpected = |e: String| TranscriptError::Unexpected(e);
        let endpoint = handshake::Endpoint {
            url: handshake::parse_url(url).map_err(|e| unexpected(e.to_string()))?,
            tls: None,
        };
        let up = tokio::time::timeout(WAIT, async {
            let stream = handshake::dial(&endpoint).await?;
            handshake::upgrade(stream, &endpoint.url, offers, Default::default()).await
        })
        .await
        .map_err(|_| TranscriptError::Timeout("the upgrade response".into()))?
        .map_err(|e| unexpected(e.to_string()))?;
        let chosen = up.selected;
        note(
            t,
            format!(
                "WebSocket `GET {}` offering `Sec-WebSocket-Protocol: {}`; the server answers `101 Switching Protocols` with {}.",
                endpoint.url.path,
                offers.join(", "),
                chosen.as_deref().map_or("no subprotocol".to_string(), |c| format!("`{c}`"))
            ),
        );
        let sp = chosen
            .as_deref()
            .and_then(|c| c.parse::<Subprotocol>().ok())
            .unwrap_or(Subprotocol::ALL[0]);
        Ok((
            Conn {
                ws: up.ws,
                codec: Codec::new(sp),
            },
            chosen,
        ))
    }

    async fn send(&mut self, t: &mut Transcript, e: v2::Envelope) -> Result<(), TranscriptError> {
        let bytes = self
            .codec
            .encode(&e)
            .map_err(|err| TranscriptError::Unexpected(err.to_string()))?;
        t.steps.push(self.step("c2s", "→", &e, &bytes));
        self.ws.send(raw::to_message(bytes, &self.codec)).await?;
        Ok(())
    }

    fn step(&self, dir: &'static str, arrow: &'static str, e: &v2::Envelope, bytes: &[u8]) -> Step {
        let json_codec = Codec::new(Subprotocol::new(
            self.codec.subprotocol().version,
            courier_protocol::Encoding::Json,
        ));
        let json = json_codec
            .encode(e)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        let binary = !self.codec.subprotocol().encoding.is_text();
        Step {
            dir,
            arrow,
            type_name: serde_json::from_str::<serde_json::Value>(&json)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_string)),
            text: if binary { indent_json(&json) } else { json },
            hex: binary.then(|| hex_lines(bytes)),
            note: None,
        }
    }

    /// Receives the next envelope (pings from the server are answered and
    /// recorded like any frame).
    async fn recv(&mut self, t: &mut Transcript) -> Result<v2::Envelope, TranscriptError> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .map_err(|_| TranscriptError::Timeout("a frame".into()))?
                .ok_or_else(|| TranscriptError::Unexpected("connection ended".into()))??;
            let bytes = match msg {
                Message::Text(s) => s.as_bytes().to_vec(),
                Message::Binary(b) => b.to_vec(),
                Message::Close(frame) => {
                    return Err(TranscriptError::Unexpected(format!("closed: {frame:?}")));
                }
                _ => continue,
            };
            let e: v2::Envelope = self
                .codec
                .decode(&bytes)
                .map_err(|err| TranscriptError::Unexpected(err.to_string()))?;
            t.steps.push(self.step("s2c", "←", &e, &bytes));
            return Ok(e);
        }
    }

    /// Receives until the close frame, recording envelopes and the close.
    async fn read_until_close(&mut self, t: &mut Transcript) -> Result<(), TranscriptError> {
        loop {
            let next = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .map_err(|_| TranscriptError::Timeout("the close frame".into()))?;
            match next {
                Some(Ok(Message::Close(frame))) => {
                    let text = frame.map_or("close frame without a code".to_string(), |f| {
                        format!(
                            "close frame: code {}, reason {:?}",
                            u16::from(f.code),
                            f.reason.as_str()
                        )
                    });
                    t.steps.push(Step {
                        dir: "s2c",
                        arrow: "←",
                        type_name: None,
                        text,
                        hex: None,
                        note: None,
                    });
                    return Ok(());
                }
                Some(Ok(Message::Text(s))) => self.push_received(t, s.as_bytes()),
                Some(Ok(Message::Binary(b))) => self.push_received(t, &b),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => {
                    note(t, "The TCP connection ended without a close frame.");
                    return Ok(());
                }
            }
        }
    }

    fn push_received(&self, t: &mut Transcript, bytes: &[u8]) {
        if let Ok(e) = self.codec.decode::<v2::Envelope>(bytes) {
            t.steps.push(self.step("s2c", "←", &e, bytes));
        }
    }

    /// Opens a session: connect, `hello` with a token for `user`, `welcome`.
    async fn session(
        url: &str,
        offers: &[&str],
        user: &str,
        t: &mut Transcript,
    ) -> Result<Conn, TranscriptError> {
        let (mut c, _) = Conn::open(url, offers, t).await?;
        c.send(t, hello(token(user, 3600)?)).await?;
        match c.recv(t).await?.body {
            Some(Body::Welcome(_)) => Ok(c),
            other => Err(TranscriptError::Unexpected(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }
}

async fn handshake(url: &str) -> Result<Transcript, TranscriptError> {
    let mut t = transcript(
        "handshake",
        "Handshake and negotiation",
        "The client offers subprotocols in preference order; the server picks the highest version both support (VER-HIGHEST-COMMON). `hello` carries the credentials, `welcome` the session's parameters. A second connection speaks MessagePack (bytes shown in hex), and a third offers only a version the server does not know: it is accepted and closed with 4002 and a reason listing what the server supports (VER-ACCEPT-THEN-CLOSE).",
    );
    let c = Conn::session(
        url,
        &["courier.v2.json", "courier.v1.json"],
        "alice",
        &mut t,
    )
    .await?;
    drop(c);
    let mut c = Conn::session(url, &["courier.v2.msgpack"], "alice", &mut t).await?;
    c.send(&mut t, env(Body::Ping(v2::Ping { ts: 1 }))).await?;
    c.recv(&mut t).await?;
    drop(c);
    let (mut c, _) = Conn::open(url, &["courier.v9.json"], &mut t).await?;
    c.read_until_close(&mut t).await?;
    Ok(t)
}

async fn auth_and_refresh(url: &str) -> Result<Transcript, TranscriptError> {
    let mut t = transcript(
        "auth-refresh",
        "Authentication and refresh",
        "The JWT in `hello` names the user (`sub`), which `welcome.user` echoes with the token's expiry. `refresh` replaces the credentials in band (AUTH-REFRESH); an invalid token gets `error` `ERROR_CODE_INVALID_TOKEN` and the session continues with the previous one. A second connection presents a token with a bad signature and is closed with 4004 (AUTH-FAILED).",
    );
    let mut c = Conn::session(url, &["courier.v2.json"], "alice", &mut t).await?;
    c.send(
        &mut t,
        env(Body::Refresh(v2::Refresh {
            id: "r-1".into(),
            token: token("alice", 7200)?,
        })),
    )
    .await?;
    c.recv(&mut t).await?;
    c.send(
        &mut t,
        env(Body::Refresh(v2::Refresh {
            id: "r-2".into(),
            token: "not-a-jwt".into(),
        })),
    )
    .await?;
    c.recv(&mut t).await?;
    drop(c);
    let (mut c, _) = Conn::open(url, &["courier.v2.json"], &mut t).await?;
    let mut forged = token("mallory", 3600)?;
    forged.push('x');
    c.send(&mut t, hello(forged)).await?;
    c.read_until_close(&mut t).await?;
    Ok(t)
}

async fn publish_and_duplicate(url: &str) -> Result<Transcript, TranscriptError> {
    let mut t = transcript(
        "publish-duplicate",
        "Subscribe, publish, and a duplicate publish",
        "`subscribe_ack` carries the channel's position before any `message` (ORDER-ACK-BEFORE-DATA). The publisher is subscribed, so it gets both its `publish_ack` and its own `message`, in either order (ORDER-PUBLISH-ACK). Resending the same `id` is answered with the original position and `duplicate: true`, and nothing is delivered again (DEDUP-ACK-ORIGINAL, DEDUP-DELIVER-ONCE).",
    );
    let mut c = Conn::session(url, &["courier.v2.json"], "alice", &mut t).await?;
    c.send(
        &mut t,
        env(Body::Subscribe(v2::Subscribe {
            id: "s-1".into(),
            channel: "chat.lobby".into(),
            resume: None,
        })),
    )
    .await?;
    c.recv(&mut t).await?;
    let payload = wire::payload::from_json(&serde_json::json!({ "text": "hello, lobby" }))
        .map_err(|e| TranscriptError::Unexpected(e.to_string()))?;
    let publish = env(Body::Publish(v2::Publish {
        id: "p-1".into(),
        channel: "chat.lobby".into(),
        payload,
    }));
    c.send(&mut t, publish.clone()).await?;
    c.recv(&mut t).await?;
    c.recv(&mut t).await?;
    note(
        &mut t,
        "The client did not see the ack (say the link flickered) and sends the same publish again.",
    );
    c.send(&mut t, publish).await?;
    c.recv(&mut t).await?;
    // Show that no second copy is delivered: a ping round trip comes next.
    c.send(&mut t, env(Body::Ping(v2::Ping { ts: 2 }))).await?;
    c.recv(&mut t).await?;
    Ok(t)
}

async fn drop_and_resume(url: &str) -> Result<Transcript, TranscriptError> {
    let mut t = transcript(
        "drop-resume",
        "Drop and resume",
        "Bob is subscribed and has received message 1. His connection drops without a close frame; while he is away, Alice publishes two more. Bob reconnects and subscribes with `resume` set to the last position he saw: the ack reports `RECOVERY_STATUS_RECOVERED` with `replayed: 2`, and exactly the missed messages follow, in order, before any new one (RESUME-EXACT-RANGE, SEQ-GAPFREE).",
    );
    let channel = "chat.resume";
    let mut bob = Conn::session(url, &["courier.v2.json"], "bob", &mut t).await?;
    bob.send(
        &mut t,
        env(Body::Subscribe(v2::Subscribe {
            id: "s-1".into(),
            channel: channel.into(),
            resume: None,
        })),
    )
    .await?;
    bob.recv(&mut t).await?;
    let mut alice_log = transcript("", "", "");
    let mut alice = Conn::session(url, &["courier.v2.json"], "alice", &mut alice_log).await?;
    let publish = |id: &str, text: &str| -> Result<v2::Envelope, TranscriptError> {
        let payload = wire::payload::from_json(&serde_json::json!({ "text": text }))
            .map_err(|e| TranscriptError::Unexpected(e.to_string()))?;
        Ok(env(Body::Publish(v2::Publish {
            id: id.into(),
            channel: channel.into(),
            payload,
        })))
    };
    alice.send(&mut alice_log, publish("a-1", "one")?).await?;
    alice.recv(&mut alice_log).await?;
    note(&mut t, "Alice publishes message 1.");
    let last = match bob.recv(&mut t).await?.body {
        Some(Body::Message(m)) => v2::StreamPosition {
            epoch: m.epoch,
            seq: m.seq,
        },
        other => {
            return Err(TranscriptError::Unexpected(format!(
                "expected message, got {other:?}"
            )))
        }
    };
    drop(bob);
    note(
        &mut t,
        "Bob's connection drops (no close frame). Alice publishes messages 2 and 3.",
    );
    for (id, text) in [("a-2", "two"), ("a-3", "three")] {
        alice.send(&mut alice_log, publish(id, text)?).await?;
        alice.recv(&mut alice_log).await?;
    }
    let mut bob = Conn::session(url, &["courier.v2.json"], "bob", &mut t).await?;
    bob.send(
        &mut t,
        env(Body::Subscribe(v2::Subscribe {
            id: "s-2".into(),
            channel: channel.into(),
            resume: Some(last),
        })),
    )
    .await?;
    for _ in 0..3 {
        bob.recv(&mut t).await?;
    }
    Ok(t)
}

/// Starts the closing transcript: a protocol violation closed with 4003,
/// then a session that the server's graceful shutdown ends with 1001.
async fn close_start(url: &str) -> Result<(Transcript, Conn), TranscriptError> {
    let mut t = transcript(
        "close",
        "Closing",
        "Every close a server initiates is announced by a `disconnect` with the same code and reason (CLOSE-DISCONNECT-NOTICE). A request before `hello` is a protocol violation, closed with 4003 (CLOSE-UNAUTHENTICATED). A graceful shutdown sends every session a `disconnect` with 1001 and closes with 1001 (CLOSE-SHUTDOWN); clients reconnect after a short jittered delay and resume.",
    );
    let (mut c, _) = Conn::open(url, &["courier.v2.json"], &mut t).await?;
    c.send(
        &mut t,
        env(Body::Subscribe(v2::Subscribe {
            id: "s-1".into(),
            channel: "chat.lobby".into(),
            resume: None,
        })),
    )
    .await?;
    c.read_until_close(&mut t).await?;
    let c = Conn::session(url, &["courier.v2.json"], "alice", &mut t).await?;
    note(&mut t, "The server is shut down gracefully.");
    Ok((t, c))
}
