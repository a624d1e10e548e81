//! Session transcripts recorded from a live run of the embedded reference
//! server: scripted sessions on 127.0.0.1 over the conformance suite's
//! connections (`courier_conformance::conn`), recorded in the suite's
//! transcript with every frame's bytes, and shown as steps: direction,
//! decoded JSON and, for binary encodings, bytes. Nothing is hand-written,
//! so the transcripts cannot drift from what the server does.

use std::sync::Arc;
use std::time::Duration;

use courier_conformance::conn::{self, Event};
use courier_conformance::embedded::Embedded;
use courier_conformance::tokens;
use courier_conformance::transcript::{Entry, Transcript};
use courier_conformance::CaseError;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::wire;
use serde::Serialize;

use crate::encodings::{hex_lines, indent_json};

/// One recorded session, as transcripts.html shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
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

    fn note(text: impl Into<String>) -> Step {
        Step {
            dir: "",
            arrow: "",
            type_name: None,
            text: String::new(),
            hex: None,
            note: Some(text.into()),
        }
    }

    /// The step of one entry of the suite's transcript: frames and the
    /// close as they are, the upgrade (`recv handshake`, after the `send`
    /// whose offer `offered` holds) and the case's own notes as notes.
    fn of(e: &Entry, offered: &str) -> Option<Step> {
        let (dir, arrow) = if e.dir == "send" {
            ("c2s", "→")
        } else {
            ("s2c", "←")
        };
        Some(match (e.dir, e.kind) {
            ("recv", "handshake") => {
                let (get, offers) = offered.split_once(" Sec-WebSocket-Protocol: ")?;
                let chosen = match e.text.rsplit_once("Sec-WebSocket-Protocol: ")?.1 {
                    "(none)" => "no subprotocol".to_string(),
                    c => format!("`{c}`"),
                };
                Step::note(format!("WebSocket `{get}` offering `Sec-WebSocket-Protocol: {offers}`; the server answers `101 Switching Protocols` with {chosen}."))
            }
            ("send" | "recv", "text" | "binary") => {
                let type_name = serde_json::from_str::<serde_json::Value>(&e.text)
                    .ok()
                    .and_then(|v| Some(v.get("type")?.as_str()?.to_string()));
                let binary = e.kind == "binary";
                Step {
                    dir,
                    arrow,
                    type_name,
                    text: if binary {
                        indent_json(&e.text)
                    } else {
                        e.text.clone()
                    },
                    hex: e.bytes.as_deref().filter(|_| binary).map(hex_lines),
                    note: None,
                }
            }
            ("recv", "close") if e.text.starts_with("connection ended") => {
                Step::note("The TCP connection ended without a close frame.")
            }
            // The suite records a close frame as `4002 "reason"`.
            ("recv", "close") => Step {
                dir,
                arrow,
                type_name: None,
                text: match e.text.split_once(' ') {
                    Some((code, reason)) if code != "(no" => {
                        format!("close frame: code {code}, reason {reason}")
                    }
                    _ => "close frame without a code".to_string(),
                },
                hex: None,
                note: None,
            },
            ("note", _) if e.conn == "*" => Step::note(&e.text),
            _ => return None,
        })
    }
}

/// Why recording failed. The server and the script run on loopback with
/// generous timeouts, so any of these is a bug in the server or the script.
#[derive(Debug, thiserror::Error)]
pub enum TranscriptError {
    /// The embedded server did not start.
    #[error("starting the reference server: {0}")]
    Server(String),
    /// No frame arrived in time.
    #[error("timed out waiting for {0}")]
    Timeout(String),
    /// The connection failed, or the server answered something other than
    /// what the script expects.
    #[error("unexpected: {0}")]
    Unexpected(String),
    /// The recording runtime could not be created.
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

impl From<CaseError> for TranscriptError {
    fn from(e: CaseError) -> Self {
        match e {
            CaseError::Fail(m) | CaseError::Unsupported(m) | CaseError::Skipped(m) => {
                TranscriptError::Unexpected(m)
            }
        }
    }
}

const SECRET: &str = "courier-docs-transcript-secret";
const WAIT: Duration = Duration::from_secs(3);

/// Records every scripted session against a fresh embedded server; returns
/// them with the server's name. Runs on its own thread and runtime, so it
/// works whether or not the caller is inside a tokio runtime.
pub fn record_all() -> Result<(Vec<Scenario>, String), TranscriptError> {
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

async fn record() -> Result<(Vec<Scenario>, String), TranscriptError> {
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
    let (closing, mut conn) = close_start(&url).await?;
    server.shutdown().await;
    conn.read_until_close().await?;
    out.push(closing.finish());
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

/// A scenario being recorded: its page and the suite's transcript its
/// connections record in.
struct Script {
    page: Scenario,
    record: Arc<Transcript>,
}

impl Script {
    fn new(id: &str, title: &str, description: &str) -> Script {
        Script {
            page: Scenario {
                id: id.into(),
                title: title.into(),
                description: description.into(),
                steps: Vec::new(),
            },
            record: Transcript::keeping_frames(),
        }
    }

    fn note(&self, text: impl Into<String>) {
        self.record.note(text);
    }

    /// The page, its steps made from what was recorded.
    fn finish(self) -> Scenario {
        let mut offered = String::new();
        let mut page = self.page;
        for e in self.record.entries() {
            if (e.dir, e.kind) == ("send", "handshake") {
                offered = e.text.clone();
            }
            page.steps.extend(Step::of(&e, &offered));
        }
        page
    }
}

/// One client connection: the suite's, recording in the script's transcript.
struct Conn(conn::Conn);

impl Conn {
    /// Opens a connection offering `offers`.
    async fn open(url: &str, offers: &[&str], t: &Script) -> Result<Conn, TranscriptError> {
        let c = conn::Conn::connect(url, offers, "c", t.record.clone(), WAIT).await?;
        Ok(Conn(c))
    }

    async fn send(&mut self, e: v2::Envelope) -> Result<(), TranscriptError> {
        Ok(self.0.send(&e).await?)
    }

    /// Receives the next envelope.
    async fn recv(&mut self) -> Result<v2::Envelope, TranscriptError> {
        match self.0.next_event(WAIT).await? {
            Some(Event::Env(e)) => Ok(e),
            Some(Event::Closed(c)) => Err(TranscriptError::Unexpected(format!(
                "closed: {} {:?}",
                c.code_text(),
                c.reason
            ))),
            None => Err(TranscriptError::Timeout("a frame".into())),
        }
    }

    /// Receives until the connection closes, recording envelopes and the close.
    async fn read_until_close(&mut self) -> Result<(), TranscriptError> {
        self.0.expect_close(WAIT).await?;
        Ok(())
    }

    /// Opens a session: connect, `hello` with a token for `user`, `welcome`.
    async fn session(
        url: &str,
        offers: &[&str],
        user: &str,
        t: &Script,
    ) -> Result<Conn, TranscriptError> {
        let mut c = Conn::open(url, offers, t).await?;
        c.send(hello(token(user, 3600)?)).await?;
        match c.recv().await?.body {
            Some(Body::Welcome(_)) => Ok(c),
            other => Err(TranscriptError::Unexpected(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }
}

async fn handshake(url: &str) -> Result<Scenario, TranscriptError> {
    let t = Script::new(
        "handshake",
        "Handshake and negotiation",
        "The client offers subprotocols in preference order; the server picks the highest version both support (VER-HIGHEST-COMMON). `hello` carries the credentials, `welcome` the session's parameters. A second connection speaks MessagePack (bytes shown in hex), and a third offers only a version the server does not know: it is accepted and closed with 4002 and a reason listing what the server supports (VER-ACCEPT-THEN-CLOSE).",
    );
    let c = Conn::session(url, &["courier.v2.json", "courier.v1.json"], "alice", &t).await?;
    drop(c);
    let mut c = Conn::session(url, &["courier.v2.msgpack"], "alice", &t).await?;
    c.send(env(Body::Ping(v2::Ping { ts: 1 }))).await?;
    c.recv().await?;
    drop(c);
    let mut c = Conn::open(url, &["courier.v9.json"], &t).await?;
    c.read_until_close().await?;
    Ok(t.finish())
}

async fn auth_and_refresh(url: &str) -> Result<Scenario, TranscriptError> {
    let t = Script::new(
        "auth-refresh",
        "Authentication and refresh",
        "The JWT in `hello` names the user (`sub`), which `welcome.user` echoes with the token's expiry. `refresh` replaces the credentials in band (AUTH-REFRESH); an invalid token gets `error` `ERROR_CODE_INVALID_TOKEN` and the session continues with the previous one. A second connection presents a token with a bad signature and is closed with 4004 (AUTH-FAILED).",
    );
    let mut c = Conn::session(url, &["courier.v2.json"], "alice", &t).await?;
    c.send(env(Body::Refresh(v2::Refresh {
        id: "r-1".into(),
        token: token("alice", 7200)?,
    })))
    .await?;
    c.recv().await?;
    c.send(env(Body::Refresh(v2::Refresh {
        id: "r-2".into(),
        token: "not-a-jwt".into(),
    })))
    .await?;
    c.recv().await?;
    drop(c);
    let mut c = Conn::open(url, &["courier.v2.json"], &t).await?;
    let mut forged = token("mallory", 3600)?;
    forged.push('x');
    c.send(hello(forged)).await?;
    c.read_until_close().await?;
    Ok(t.finish())
}

async fn publish_and_duplicate(url: &str) -> Result<Scenario, TranscriptError> {
    let t = Script::new(
        "publish-duplicate",
        "Subscribe, publish, and a duplicate publish",
        "`subscribe_ack` carries the channel's position before any `message` (ORDER-ACK-BEFORE-DATA). The publisher is subscribed, so it gets both its `publish_ack` and its own `message`, in either order (ORDER-PUBLISH-ACK). Resending the same `id` is answered with the original position and `duplicate: true`, and nothing is delivered again (DEDUP-ACK-ORIGINAL, DEDUP-DELIVER-ONCE).",
    );
    let mut c = Conn::session(url, &["courier.v2.json"], "alice", &t).await?;
    c.send(env(Body::Subscribe(v2::Subscribe {
        id: "s-1".into(),
        channel: "chat.lobby".into(),
        resume: None,
    })))
    .await?;
    c.recv().await?;
    let payload = wire::payload::from_json(&serde_json::json!({ "text": "hello, lobby" }))
        .map_err(|e| TranscriptError::Unexpected(e.to_string()))?;
    let publish = env(Body::Publish(v2::Publish {
        id: "p-1".into(),
        channel: "chat.lobby".into(),
        payload,
    }));
    c.send(publish.clone()).await?;
    c.recv().await?;
    c.recv().await?;
    t.note(
        "The client did not see the ack (say the link flickered) and sends the same publish again.",
    );
    c.send(publish).await?;
    c.recv().await?;
    // Show that no second copy is delivered: a ping round trip comes next.
    c.send(env(Body::Ping(v2::Ping { ts: 2 }))).await?;
    c.recv().await?;
    Ok(t.finish())
}

async fn drop_and_resume(url: &str) -> Result<Scenario, TranscriptError> {
    let t = Script::new(
        "drop-resume",
        "Drop and resume",
        "Bob is subscribed and has received message 1. His connection drops without a close frame; while he is away, Alice publishes two more. Bob reconnects and subscribes with `resume` set to the last position he saw: the ack reports `RECOVERY_STATUS_RECOVERED` with `replayed: 2`, and exactly the missed messages follow, in order, before any new one (RESUME-EXACT-RANGE, SEQ-GAPFREE).",
    );
    let channel = "chat.resume";
    let mut bob = Conn::session(url, &["courier.v2.json"], "bob", &t).await?;
    bob.send(env(Body::Subscribe(v2::Subscribe {
        id: "s-1".into(),
        channel: channel.into(),
        resume: None,
    })))
    .await?;
    bob.recv().await?;
    let alice_log = Script::new("", "", "");
    let mut alice = Conn::session(url, &["courier.v2.json"], "alice", &alice_log).await?;
    let publish = |id: &str, text: &str| -> Result<v2::Envelope, TranscriptError> {
        let payload = wire::payload::from_json(&serde_json::json!({ "text": text }))
            .map_err(|e| TranscriptError::Unexpected(e.to_string()))?;
        Ok(env(Body::Publish(v2::Publish {
            id: id.into(),
            channel: channel.into(),
            payload,
        })))
    };
    alice.send(publish("a-1", "one")?).await?;
    alice.recv().await?;
    t.note("Alice publishes message 1.");
    let last = match bob.recv().await?.body {
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
    bob.0.drop_link();
    t.note("Bob's connection drops (no close frame). Alice publishes messages 2 and 3.");
    for (id, text) in [("a-2", "two"), ("a-3", "three")] {
        alice.send(publish(id, text)?).await?;
        alice.recv().await?;
    }
    let mut bob = Conn::session(url, &["courier.v2.json"], "bob", &t).await?;
    bob.send(env(Body::Subscribe(v2::Subscribe {
        id: "s-2".into(),
        channel: channel.into(),
        resume: Some(last),
    })))
    .await?;
    for _ in 0..3 {
        bob.recv().await?;
    }
    Ok(t.finish())
}

/// Starts the closing transcript: a protocol violation closed with 4003,
/// then a session that the server's graceful shutdown ends with 1001.
async fn close_start(url: &str) -> Result<(Script, Conn), TranscriptError> {
    let t = Script::new(
        "close",
        "Closing",
        "Every close a server initiates is announced by a `disconnect` with the same code and reason (CLOSE-DISCONNECT-NOTICE). A request before `hello` is a protocol violation, closed with 4003 (CLOSE-UNAUTHENTICATED). A graceful shutdown sends every session a `disconnect` with 1001 and closes with 1001 (CLOSE-SHUTDOWN); clients reconnect after a short jittered delay and resume.",
    );
    let mut c = Conn::open(url, &["courier.v2.json"], &t).await?;
    c.send(env(Body::Subscribe(v2::Subscribe {
        id: "s-1".into(),
        channel: "chat.lobby".into(),
        resume: None,
    })))
    .await?;
    c.read_until_close().await?;
    let c = Conn::session(url, &["courier.v2.json"], "alice", &t).await?;
    t.note("The server is shut down gracefully.");
    Ok((t, c))
}
