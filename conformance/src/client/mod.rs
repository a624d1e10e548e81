//! The client mode of the suite (`courier conform client -- <driver>`): the
//! suite plays a scripted Courier server (`server`) and drives the client
//! under test through its driver process (`process`, the contract of
//! docs/conformance-client.md); the cases (`cases/`) check the spec's client
//! requirements on the wire and in the driver's events. Results go into the
//! same [`Report`](crate::Report) as a server run.

pub mod cases;
pub mod process;
pub mod runner;
pub mod server;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Encoding, Subprotocol};
use serde_json::{json, Value};

use crate::case::{fail, Axes, CaseError, CaseInfo};
use crate::spec::Level;
use crate::transcript::Transcript;
use process::DriverProc;
use server::{Peer, ScriptServer};

/// The client under test: how to start its driver.
#[derive(Debug, Clone)]
pub struct ClientTarget {
    /// The driver command and its arguments.
    pub command: Vec<String>,
    /// Extra environment for the driver (e.g. a fault switch in tests).
    pub env: Vec<(String, String)>,
    /// The subprotocols the cases run in (default: all six).
    pub subprotocols: Vec<Subprotocol>,
    /// Multiplies every wait, tolerance and client timer the suite sets.
    pub time_scale: f64,
}

impl ClientTarget {
    /// A target running `command`, in every subprotocol, time scale 1.
    pub fn new(command: Vec<String>) -> ClientTarget {
        ClientTarget {
            command,
            env: Vec::new(),
            subprotocols: Subprotocol::ALL.to_vec(),
            time_scale: 1.0,
        }
    }

    /// The command line, for reports.
    pub fn describe(&self) -> String {
        format!("client: {}", self.command.join(" "))
    }
}

/// A client case's body.
pub type ClientCaseFn =
    fn(ClientCtx) -> Pin<Box<dyn Future<Output = Result<(), CaseError>> + Send>>;

/// One client case definition.
#[derive(Clone, Copy)]
pub struct ClientCaseDef {
    /// Stable ID without axes (`client.seq.gap-detection`).
    pub id: &'static str,
    /// One-line title.
    pub title: &'static str,
    /// The spec requirement IDs it checks.
    pub requirements: &'static [&'static str],
    /// The level of what it checks.
    pub level: Level,
    /// Instantiation axes.
    pub axes: Axes,
    /// Versions the case applies to (empty: all).
    pub versions: &'static [u32],
    /// The body.
    pub run: ClientCaseFn,
}

impl ClientCaseDef {
    /// The public description.
    pub fn info(&self) -> CaseInfo {
        CaseInfo {
            id: self.id.to_string(),
            title: self.title.to_string(),
            requirements: self.requirements.iter().map(|s| s.to_string()).collect(),
            level: self.level,
            axes: match self.axes {
                Axes::Each => "each version and encoding",
                Axes::PerVersion => "each version",
                Axes::Once => "once",
            }
            .to_string(),
            needs: vec!["driver".to_string()],
        }
    }
}

/// Every client case (without axes), in a stable order.
pub fn cases() -> Vec<CaseInfo> {
    cases::registry().iter().map(|c| c.info()).collect()
}

/// What a running client case gets.
#[derive(Clone)]
pub struct ClientCtx {
    target: Arc<ClientTarget>,
    sp: Subprotocol,
    id: String,
    transcript: Arc<Transcript>,
    labels: Arc<AtomicUsize>,
}

/// The first token the application hands out, and the next.
pub const TOKENS: [&str; 2] = ["conformance-token-1", "conformance-token-2"];

impl ClientCtx {
    pub(crate) fn new(
        target: Arc<ClientTarget>,
        sp: Subprotocol,
        id: String,
        transcript: Arc<Transcript>,
    ) -> ClientCtx {
        ClientCtx {
            target,
            sp,
            id,
            transcript,
            labels: Arc::default(),
        }
    }

    /// The subprotocol of this instance.
    pub fn sp(&self) -> Subprotocol {
        self.sp
    }

    /// Whether this instance runs version 2.
    pub fn v2(&self) -> bool {
        self.sp.version.number() == 2
    }

    /// `ms` milliseconds, times the time scale.
    pub fn ms(&self, ms: u64) -> Duration {
        Duration::from_millis(ms).mul_f64(self.scale())
    }

    /// `ms` times the time scale, as milliseconds.
    pub fn scaled(&self, ms: u64) -> u64 {
        (ms as f64 * self.scale()).round() as u64
    }

    /// The time scale.
    pub fn scale(&self) -> f64 {
        self.target.time_scale.max(0.01)
    }

    /// How long one expected event may take (2 s, scaled).
    pub fn step(&self) -> Duration {
        self.ms(2000)
    }

    /// A note in the transcript.
    pub fn note(&self, text: impl Into<String>) {
        self.transcript.note(text);
    }

    /// A scripted server on a free port, negotiating this instance's subprotocol.
    pub async fn server(&self) -> Result<ScriptServer, CaseError> {
        ScriptServer::start(
            self.transcript.clone(),
            self.labels.clone(),
            self.sp,
            self.step(),
        )
        .await
    }

    /// A fresh driver process.
    pub async fn driver(&self) -> Result<DriverProc, CaseError> {
        DriverProc::spawn(
            &self.target.command,
            &self.target.env,
            &self.id,
            self.transcript.clone(),
            self.step(),
            self.ms(10_000),
        )
        .await
    }

    /// The `connect` command for `server`: this instance's subprotocol,
    /// [`TOKENS`], no optional features, short timers.
    pub fn connect_cmd(&self, server: &ScriptServer) -> Value {
        json!({
            "cmd": "connect",
            "url": server.url(),
            "subprotocols": [self.sp.name()],
            "tokens": TOKENS,
            "features": [],
            "options": {
                "backoff_base_ms": self.scaled(100),
                "backoff_cap_ms": self.scaled(800),
                "reconnect_now_max_ms": self.scaled(100),
                "request_timeout_ms": self.scaled(3000),
            },
        })
    }

    /// A server, a driver told to connect, and the opened first session.
    pub async fn session(&self) -> Result<Session, CaseError> {
        let mut server = self.server().await?;
        let mut driver = self.driver().await?;
        let cmd = self.connect_cmd(&server);
        self.open(&mut server, &mut driver, cmd, Welcome::default())
            .await
            .map(|(peer, hello)| Session {
                server,
                driver,
                peer,
                hello,
            })
    }

    /// Sends `connect`, accepts the connection, answers its `hello` with a
    /// `welcome` and waits for the driver's result.
    pub async fn open(
        &self,
        server: &mut ScriptServer,
        driver: &mut DriverProc,
        cmd: Value,
        welcome: Welcome,
    ) -> Result<(Peer, v2::Hello), CaseError> {
        let r = driver.send(cmd).await?;
        let mut peer = server.accept().await?;
        let hello = handshake(&mut peer, &welcome).await?;
        let result = driver.result(r, self.step()).await?;
        if result["ok"] != json!(true) {
            return Err(fail(format!(
                "the client did not report its session open: {}",
                result["error"]
            )));
        }
        Ok((peer, hello))
    }
}

/// A case's server, driver and open session.
pub struct Session {
    /// The listener (for the reconnects).
    pub server: ScriptServer,
    /// The client's driver.
    pub driver: DriverProc,
    /// The open connection.
    pub peer: Peer,
    /// The client's `hello`.
    pub hello: v2::Hello,
}

/// What the server's `welcome` says.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// `heartbeat_interval_ms` (default 60 s: no case waits on it unless it sets it).
    pub heartbeat_interval_ms: u64,
    /// `heartbeat_grace_ms`.
    pub heartbeat_grace_ms: u64,
    /// `limits.max_message_bytes`.
    pub max_message_bytes: u32,
    /// `token_expires_at_ms`.
    pub token_expires_at_ms: Option<u64>,
    /// Features granted (intersected with those asked for).
    pub features: Vec<String>,
    /// `dedupe_window_ms`.
    pub dedupe_window_ms: u64,
}

impl Default for Welcome {
    fn default() -> Self {
        Welcome {
            heartbeat_interval_ms: 60_000,
            heartbeat_grace_ms: 10_000,
            max_message_bytes: 65_536,
            token_expires_at_ms: None,
            features: vec![
                "presence".into(),
                "ephemeral".into(),
                "rpc".into(),
                "batch".into(),
                "reauth".into(),
            ],
            dedupe_window_ms: 120_000,
        }
    }
}

/// Waits for `hello` and answers with `welcome`.
pub async fn handshake(peer: &mut Peer, w: &Welcome) -> Result<v2::Hello, CaseError> {
    let hello = peer
        .expect("hello", |b| match b {
            Body::Hello(h) => Some(h.clone()),
            _ => None,
        })
        .await?;
    let sp = peer.subprotocol();
    let encoding = match sp.encoding {
        Encoding::Json => v2::Encoding::Json,
        Encoding::MsgPack => v2::Encoding::Msgpack,
        Encoding::Protobuf => v2::Encoding::Protobuf,
    };
    let features: Vec<String> = hello
        .features
        .iter()
        .filter(|f| w.features.contains(f))
        .filter(|f| sp.version.number() == 2 || !matches!(f.as_str(), "batch" | "reauth"))
        .cloned()
        .collect();
    peer.send(Body::Welcome(v2::Welcome {
        version: sp.version.number(),
        encoding: encoding as i32,
        session_id: format!("conform-{}", peer.label),
        features,
        heartbeat_interval_ms: w.heartbeat_interval_ms,
        heartbeat_grace_ms: w.heartbeat_grace_ms,
        dedupe_window_ms: w.dedupe_window_ms,
        limits: Some(v2::Limits {
            max_message_bytes: w.max_message_bytes,
            max_messages_per_second: 1000,
            max_burst: 1000,
            send_queue_frames: 1024,
            max_subscriptions: 100,
            history_size: 100,
            history_ttl_ms: 300_000,
            max_batch: 64,
        }),
        token_expires_at_ms: w.token_expires_at_ms,
        server: "courier-conform".into(),
        user: "conformance".into(),
        // The scripted server keeps no dedupe record of its own.
        dedupe_max_per_channel: 0,
    }))
    .await?;
    Ok(hello)
}

/// A `message` envelope with a JSON payload.
pub fn message(channel: &str, epoch: &str, seq: u64, id: &str, payload: Value) -> Body {
    Body::Message(v2::Message {
        channel: channel.into(),
        epoch: epoch.into(),
        seq,
        id: id.into(),
        ts: 1_700_000_000_000 + seq,
        payload: courier_protocol::wire::payload::from_json(&payload).unwrap_or_default(),
        publisher: "conform-publisher".into(),
    })
}

/// A `subscribe_ack` for `sub` at `(epoch, seq)` with an optional recovery.
pub fn subscribe_ack(
    sub: &v2::Subscribe,
    epoch: &str,
    seq: u64,
    recovery: Option<v2::Recovery>,
) -> Body {
    Body::SubscribeAck(v2::SubscribeAck {
        id: sub.id.clone(),
        channel: sub.channel.clone(),
        position: Some(v2::StreamPosition {
            epoch: epoch.into(),
            seq,
        }),
        recovery,
    })
}

/// A recovery outcome.
pub fn recovery(
    status: v2::RecoveryStatus,
    reason: v2::RecoveryReason,
    replayed: u64,
) -> Option<v2::Recovery> {
    Some(v2::Recovery {
        status: status as i32,
        reason: reason as i32,
        replayed,
    })
}

/// Waits for a `subscribe` (of `channel`) from the client.
pub async fn expect_subscribe(peer: &mut Peer, channel: &str) -> Result<v2::Subscribe, CaseError> {
    peer.expect(&format!("subscribe to `{channel}`"), |b| match b {
        Body::Subscribe(s) if s.channel == channel => Some(s.clone()),
        _ => None,
    })
    .await
}

/// Fails with the rules the client's frames broke on `peer`, if any.
pub fn check_frames(peer: &Peer) -> Result<(), CaseError> {
    let v = peer.violations();
    if v.is_empty() {
        Ok(())
    } else {
        Err(fail(format!("{}: {}", peer.label, v.join("; "))))
    }
}
