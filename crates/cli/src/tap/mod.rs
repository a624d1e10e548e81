//! `courier tap`: a message tester speaking the protocol. Opens one session
//! with courier-client's wire pieces (`courier_client::raw`: the same
//! upgrade, negotiation and hello as the client), sends envelopes written
//! in the Courier JSON form (a file or typed lines) in the negotiated
//! encoding, prints every envelope received with a timestamp, answers
//! pings, tracks seq per channel (courier-client's tracker) to flag gaps
//! and duplicates, and checks `--expect` patterns for scripts and CI.
//! See docs/tap.md.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use clap::Args;
use courier_client::raw::{self, RawError};
use courier_client::tracker::{ChannelTracker, Verdict};
use courier_client::{ClientConfig, Position, Recovery};
use courier_protocol::subprotocol::{Encoding, Version};
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::decode::{clock, to_json};

mod sse;

#[derive(Args)]
pub struct TapArgs {
    /// The server's WebSocket URL (`ws://127.0.0.1:8080/ws`, `wss://…`), or
    /// its SSE URL (`http://127.0.0.1:8080/sse`, `https://…`).
    url: String,
    /// SSE: a channel to subscribe to (repeatable; `?channel=` of GET /sse).
    #[arg(long = "channel", short = 'c')]
    channels: Vec<String>,
    /// Subprotocol to offer (repeat for several, most preferred first);
    /// default: every one, newest version first.
    #[arg(long = "subprotocol", short = 's')]
    subprotocols: Vec<Subprotocol>,
    /// Credentials sent in `hello.token` (default: $COURIER_TOKEN, else none).
    #[arg(long)]
    token: Option<String>,
    /// PEM file of extra CA certificates to trust for `wss://`.
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Envelopes to send, one JSON object per line in the Courier JSON form
    /// (`#` comments, blank lines and `{"sleep_ms": N}` pauses allowed);
    /// `-` or no --send: lines typed on stdin.
    #[arg(long)]
    send: Option<PathBuf>,
    /// Patterns the received envelopes must match, in order, one JSON
    /// object per line; each member must be present with that value
    /// (objects compared member by member, the same way). Exit 0 once all
    /// matched, 1 when one is not matched within --timeout.
    #[arg(long)]
    expect: Option<PathBuf>,
    /// Seconds to wait for each --expect pattern; also how long the server
    /// must be quiet before tap leaves once typed input has ended.
    #[arg(long, default_value_t = 5.0)]
    timeout: f64,
    /// Stop after this many seconds (default: until the server closes,
    /// Ctrl-C, or every --expect pattern matched).
    #[arg(long)]
    duration: Option<f64>,
    /// Exit 1 if a gap or duplicate was seen.
    #[arg(long)]
    strict: bool,
    /// Do not answer the server's `ping` with `pong`.
    #[arg(long)]
    no_pong: bool,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

/// Exit codes (docs/tap.md).
pub(super) const EXIT_OK: i32 = 0;
pub(super) const EXIT_MISMATCH: i32 = 1;
pub(super) const EXIT_CONNECT: i32 = 2;

/// Runs the command; returns the exit code.
pub fn run(args: TapArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Unusable arguments (a missing --send file, a bad --ca) exit 2.
    Ok(rt.block_on(tap(args)).unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        EXIT_CONNECT
    }))
}

/// A line of input: an envelope to send, or a pause.
pub(super) enum Input {
    Line(usize, String),
    End,
}

fn spawn_input(path: Option<PathBuf>) -> anyhow::Result<mpsc::Receiver<Input>> {
    let reader: Box<dyn BufRead + Send> = match path {
        Some(p) if p.as_os_str() != "-" => Box::new(std::io::BufReader::new(
            std::fs::File::open(&p).with_context(|| format!("opening {}", p.display()))?,
        )),
        _ => Box::new(std::io::BufReader::new(std::io::stdin())),
    };
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for (i, line) in reader.lines().enumerate() {
            let Ok(line) = line else { break };
            let line = line.trim().to_string();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if tx.blocking_send(Input::Line(i + 1, line)).is_err() {
                return;
            }
        }
        let _ = tx.blocking_send(Input::End);
    });
    Ok(rx)
}

fn load_expectations(path: &PathBuf) -> anyhow::Result<Vec<Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| (i, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            serde_json::from_str(l)
                .with_context(|| format!("{}:{}: not a JSON value", path.display(), i + 1))
        })
        .collect()
}

/// Whether `actual` has everything `pattern` has.
pub(crate) fn matches(pattern: &Value, actual: &Value) -> bool {
    match (pattern, actual) {
        (Value::Object(p), Value::Object(a)) => p
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| matches(v, av))),
        (Value::Array(p), Value::Array(a)) => {
            p.len() == a.len() && p.iter().zip(a).all(|(p, a)| matches(p, a))
        }
        (Value::Number(p), Value::Number(a)) => p.as_f64() == a.as_f64(),
        _ => pattern == actual,
    }
}

pub(super) struct Tap {
    json: bool,
    pub(super) version: Version,
    trackers: HashMap<String, ChannelTracker>,
    pub(super) expectations: Vec<Value>,
    pub(super) next_expectation: usize,
    pub(super) flagged: usize,
}

impl Tap {
    pub(super) fn print(&self, dir: &str, envelope: &Value, text: &str, flags: &[String]) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        if self.json {
            println!(
                "{}",
                serde_json::json!({"ts": now / 1000, "dir": dir, "envelope": envelope, "flags": flags})
            );
        } else {
            let arrow = if dir == "send" { "->" } else { "<-" };
            let flags: String = flags.iter().map(|f| format!("  [{f}]")).collect();
            println!("{} {arrow} {text}{flags}", &clock(now)[..12]);
        }
    }

    pub(super) fn note(&self, what: &str) {
        if self.json {
            println!("{}", serde_json::json!({ "note": what }));
        } else {
            println!("# {what}");
        }
    }

    /// Gap and duplicate flags for a received envelope (JSON form).
    fn track(&mut self, env: &Value) -> Vec<String> {
        let channel = env["channel"].as_str().unwrap_or_default().to_string();
        let epoch = env
            .pointer("/position/epoch")
            .or_else(|| env.get("epoch"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let seq_of = |v: Option<&Value>| v.and_then(Value::as_u64).unwrap_or(0);
        let now = Instant::now();
        match env["type"].as_str() {
            Some("subscribe_ack") => {
                // After a recovered resume the replay starts `replayed`
                // messages before the ack's position.
                let seq = seq_of(env.pointer("/position/seq"))
                    .saturating_sub(seq_of(env.pointer("/recovery/replayed")));
                let tracker = self
                    .trackers
                    .entry(channel)
                    .or_insert_with(|| ChannelTracker::new(10_000, Duration::from_secs(120)));
                tracker.on_ack(Position { epoch, seq }, Recovery::NotRequested, None);
                Vec::new()
            }
            Some("message") => {
                let seq = seq_of(env.get("seq"));
                let id = env["id"].as_str().unwrap_or_default();
                let tracker = self.trackers.entry(channel.clone()).or_insert_with(|| {
                    let mut t = ChannelTracker::new(10_000, Duration::from_secs(120));
                    // No ack seen (a subscription made elsewhere): start here.
                    t.on_ack(
                        Position {
                            epoch: epoch.clone(),
                            seq: seq.saturating_sub(1),
                        },
                        Recovery::NotRequested,
                        None,
                    );
                    t
                });
                let flag = match tracker.on_message(&epoch, seq, id, now) {
                    Verdict::Deliver | Verdict::AwaitingAck => None,
                    Verdict::Old => Some(format!(
                        "DUPLICATE: seq {seq} already delivered on {channel}"
                    )),
                    Verdict::Duplicate => {
                        Some(format!("DUPLICATE: id {id} already delivered on {channel}"))
                    }
                    Verdict::Gap { tracked } => {
                        // A tap does not resubscribe: flag it and go on from here.
                        tracker.on_ack(
                            Position {
                                epoch: epoch.clone(),
                                seq,
                            },
                            Recovery::NotRequested,
                            None,
                        );
                        Some(if tracked.epoch != epoch {
                            format!(
                                "GAP: epoch changed on {channel} ({} -> {epoch})",
                                tracked.epoch
                            )
                        } else {
                            format!(
                                "GAP: expected seq {} on {channel}, got {seq}",
                                tracked.seq + 1
                            )
                        })
                    }
                };
                self.flagged += usize::from(flag.is_some());
                flag.into_iter().collect()
            }
            _ => Vec::new(),
        }
    }

    /// Records a received envelope against the pending expectation.
    fn expect(&mut self, env: &Value) -> bool {
        if let Some(p) = self.expectations.get(self.next_expectation) {
            if matches(p, env) {
                self.next_expectation += 1;
                return true;
            }
        }
        false
    }

    /// Prints a received envelope, tracking and matching each batch entry.
    pub(super) fn received(&mut self, env: &v2::Envelope) {
        let text = to_json(self.version, env);
        let value: Value = serde_json::from_str(&text).expect("JSON codec output");
        let entries = match &env.body {
            Some(Body::Batch(_)) => value["envelopes"].as_array().cloned().unwrap_or_default(),
            _ => vec![value.clone()],
        };
        let mut flags = Vec::new();
        for e in &entries {
            flags.extend(self.track(e));
            self.expect(e);
        }
        self.print("recv", &value, &text, &flags);
    }

    /// The exit code: `outcome`, or 1 under `--strict` after any flag.
    pub(super) fn exit_code(&self, outcome: i32, strict: bool) -> i32 {
        if strict && self.flagged > 0 && outcome == EXIT_OK {
            self.note(&format!(
                "{} gap/duplicate/undecodable flags (--strict)",
                self.flagged
            ));
            return EXIT_MISMATCH;
        }
        outcome
    }

    pub(super) fn expectations_done(&self) -> bool {
        self.next_expectation >= self.expectations.len()
    }
}

async fn tap(args: TapArgs) -> anyhow::Result<i32> {
    let mut config = ClientConfig::new(args.url.clone());
    if !args.subprotocols.is_empty() {
        config.subprotocols(args.subprotocols.iter().copied());
    }
    config.client_name = format!("courier-tap/{}", env!("CARGO_PKG_VERSION"));
    if let Some(ca) = &args.ca {
        let pem = std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
        config.add_root_certificates_pem(&pem)?;
    }
    let expectations = match &args.expect {
        Some(p) => load_expectations(p)?,
        None => Vec::new(),
    };
    let mut input = spawn_input(args.send.clone())?;
    let token = args
        .token
        .clone()
        .or_else(|| std::env::var("COURIER_TOKEN").ok());
    if args.url.starts_with("http://") || args.url.starts_with("https://") {
        let tap = Tap {
            json: args.json,
            version: Version::V2,
            trackers: HashMap::new(),
            expectations,
            next_expectation: 0,
            flagged: 0,
        };
        return sse::run(&args, tap, &config, token, input).await;
    }
    let session = match raw::open(&config, token).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(match e {
                RawError::Closed { .. } if !expectations.is_empty() => EXIT_MISMATCH,
                _ => EXIT_CONNECT,
            });
        }
    };
    let raw::RawSession {
        mut ws,
        codec,
        welcome,
    } = session;
    let sp = codec.subprotocol();
    let mut tap = Tap {
        json: args.json,
        version: sp.version,
        trackers: HashMap::new(),
        expectations,
        next_expectation: 0,
        flagged: 0,
    };
    tap.note(&format!("connected to {} as {}", args.url, sp.name()));
    let welcome_env = v2::Envelope {
        body: Some(Body::Welcome(welcome)),
    };
    tap.received(&welcome_env);

    let json_codec = Codec::new(Subprotocol::new(sp.version, Encoding::Json));
    let timeout = Duration::from_secs_f64(args.timeout.max(0.0));
    let mut deadline = tokio::time::Instant::now() + timeout;
    let end_at = args
        .duration
        .map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    let mut input_open = true;
    let mut paused_until: Option<tokio::time::Instant> = None;
    // Typed input ended (Ctrl-D, a pipe closed) with nothing else to wait
    // for: leave once the server has been quiet for --timeout (as wscat
    // leaves at the end of its input). A --send file is a script: stay.
    let typed = args.send.as_ref().is_none_or(|p| p.as_os_str() == "-");
    let linger_after_input = typed && args.expect.is_none() && args.duration.is_none();
    let mut linger: Option<tokio::time::Instant> = None;
    let outcome: i32 = loop {
        if !tap.expectations.is_empty() && tap.expectations_done() {
            tap.note("every expectation matched");
            break EXIT_OK;
        }
        let expecting = !tap.expectations_done();
        let pause = async {
            match paused_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = ws.next() => {
                let (bytes, text) = match frame {
                    Some(Ok(WsMessage::Text(t))) => (bytes::Bytes::from(t), true),
                    Some(Ok(WsMessage::Binary(b))) => (b, false),
                    Some(Ok(WsMessage::Close(f))) => {
                        let (code, reason) = f.map_or((1005, String::new()), |f| (ws.get_ref().close_code(u16::from(f.code)), f.reason.to_string()));
                        tap.note(&format!("server closed: {code} {reason}"));
                        break if expecting || !matches!(code, 1000 | 1001 | 1005) { EXIT_MISMATCH } else { EXIT_OK };
                    }
                    Some(Ok(_)) => continue, // WebSocket ping/pong: tungstenite answers
                    Some(Err(e)) => {
                        tap.note(&format!("connection lost: {e}"));
                        break EXIT_MISMATCH;
                    }
                    None => {
                        tap.note("connection closed");
                        break if expecting { EXIT_MISMATCH } else { EXIT_OK };
                    }
                };
                let before = tap.next_expectation;
                if linger.is_some() {
                    linger = Some(tokio::time::Instant::now() + timeout);
                }
                match codec.decode_frame::<v2::Envelope>(&bytes, Some(text)) {
                    Ok(env) => {
                        tap.received(&env);
                        // HB-CLIENT-PONG: answer every ping with its ts.
                        if let (Some(Body::Ping(ping)), false) = (&env.body, args.no_pong) {
                            let pong = v2::Envelope { body: Some(Body::Pong(v2::Pong { ts: ping.ts })) };
                            let frame = codec.encode(&pong)?;
                            if let Err(e) = ws.send(raw::to_message(frame, &codec)).await {
                                tap.note(&format!("connection lost: {e}"));
                                break EXIT_MISMATCH;
                            }
                            let text = to_json(tap.version, &pong);
                            tap.print("send", &serde_json::from_str(&text)?, &text, &["auto".into()]);
                        }
                    }
                    Err(e) => {
                        tap.flagged += 1;
                        tap.note(&format!("undecodable frame ({} bytes): {e}", bytes.len()));
                    }
                }
                if tap.next_expectation != before {
                    deadline = tokio::time::Instant::now() + timeout;
                }
            }
            line = input.recv(), if input_open && paused_until.is_none() => {
                match line {
                    Some(Input::Line(n, line)) => {
                        if let Some(ms) = serde_json::from_str::<Value>(&line).ok().and_then(|v| v.get("sleep_ms").and_then(Value::as_u64)) {
                            paused_until = Some(tokio::time::Instant::now() + Duration::from_millis(ms));
                            continue;
                        }
                        let env = match json_codec.decode_frame::<v2::Envelope>(line.as_bytes(), Some(true)) {
                            Ok(env) => env,
                            Err(e) => {
                                eprintln!("error: input line {n}: {e}");
                                break EXIT_CONNECT;
                            }
                        };
                        let frame = match codec.encode(&env) {
                            Ok(f) => f,
                            Err(e) => {
                                eprintln!("error: input line {n}: cannot send on {}: {e}", sp.name());
                                break EXIT_CONNECT;
                            }
                        };
                        if let Err(e) = ws.send(raw::to_message(frame, &codec)).await {
                            tap.note(&format!("connection lost: {e}"));
                            break EXIT_MISMATCH;
                        }
                        let text = to_json(tap.version, &env);
                        tap.print("send", &serde_json::from_str(&text)?, &text, &[]);
                    }
                    Some(Input::End) | None => {
                    input_open = false;
                    if linger_after_input {
                        linger = Some(tokio::time::Instant::now() + timeout);
                    }
                }
                }
            }
            () = pause => paused_until = None,
            () = async { match linger { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                tap.note(&format!("input ended and nothing arrived for {timeout:?}"));
                break EXIT_OK;
            }
            () = tokio::time::sleep_until(deadline), if expecting => {
                let p = &tap.expectations[tap.next_expectation];
                tap.note(&format!(
                    "expectation {} not met within {:?}: {p}",
                    tap.next_expectation + 1,
                    timeout
                ));
                break EXIT_MISMATCH;
            }
            () = async { match end_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                break if expecting { EXIT_MISMATCH } else { EXIT_OK };
            }
            _ = tokio::signal::ctrl_c() => {
                break if expecting { EXIT_MISMATCH } else { EXIT_OK };
            }
        }
    };
    // A normal close; wait briefly for the server's answer.
    let _ = ws
        .send(WsMessage::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "tap done".into(),
        })))
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Some(Ok(m)) = ws.next().await {
            if m.is_close() {
                break;
            }
        }
    })
    .await;
    Ok(tap.exit_code(outcome, args.strict))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn patterns_match_member_by_member() {
        let actual =
            json!({"type": "message", "seq": 3, "payload": {"text": "hi", "n": 1}, "tags": [1, 2]});
        assert!(matches(&json!({"type": "message"}), &actual));
        assert!(matches(&json!({"payload": {"text": "hi"}}), &actual));
        assert!(matches(&json!({"seq": 3.0}), &actual));
        assert!(!matches(&json!({"seq": 4}), &actual));
        assert!(!matches(&json!({"missing": null}), &actual));
        assert!(!matches(&json!({"tags": [1]}), &actual));
        assert!(matches(&json!({"tags": [1, 2]}), &actual));
    }
}
