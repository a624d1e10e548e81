//! The conformance driver of the Rust client: `courier conform client --
//! target/debug/examples/conform_driver` checks `courier-client` against the
//! spec's client requirements. It speaks the driver contract of
//! `docs/conformance-client.md`: commands as JSON lines on stdin, events as
//! JSON lines on stdout.
//!
//! Built with the `faults` feature, `COURIER_CLIENT_FAULT=<name>` breaks one
//! client requirement on purpose (the suite's proof that it notices).

use std::collections::HashMap;
use std::future::Future;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use courier_client::{
    Client, ClientConfig, ClientError, ConnectionEvent, Position, PublishError, Recovery,
    RecoveryReason, RequestError, SubscribeError, SubscriptionEvent, TokenReason,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

/// Writes one event line; stdout carries nothing else.
#[derive(Clone)]
struct Out(Arc<Mutex<std::io::Stdout>>);

impl Out {
    fn emit(&self, event: Value) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{event}");
        let _ = out.flush();
    }

    fn result(&self, r: u64, outcome: Result<Value, (&str, String)>) {
        match outcome {
            Ok(mut fields) => {
                fields["event"] = json!("result");
                fields["ref"] = json!(r);
                fields["ok"] = json!(true);
                self.emit(fields)
            }
            Err((kind, message)) => self.emit(json!({
                "event": "result", "ref": r, "ok": false,
                "error": {"kind": kind, "message": message},
            })),
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}

async fn run() {
    let out = Out(Arc::new(Mutex::new(std::io::stdout())));
    // stdin is read on a thread: the loop must go on while commands run.
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    out.emit(
        json!({"event": "ready", "client": format!("courier-rust/{}", env!("CARGO_PKG_VERSION"))}),
    );
    let mut client: Option<Client> = None;
    let mut subs: HashMap<String, oneshot::Sender<u64>> = HashMap::new();
    while let Some(line) = lines.recv().await {
        let Ok(cmd) = serde_json::from_str::<Value>(&line) else {
            eprintln!("conform_driver: not JSON: {line}");
            continue;
        };
        let r = cmd["ref"].as_u64().unwrap_or(0);
        let name = cmd["cmd"].as_str().unwrap_or("");
        let str_of = |k: &str| cmd[k].as_str().unwrap_or("").to_string();
        match (name, &client) {
            ("exit", _) => break,
            ("connect", None) => match start(&cmd, &out) {
                Ok((c, mut events)) => {
                    let out = out.clone();
                    tokio::spawn(async move {
                        let mut pending = Some(r);
                        while let Some(e) = events.recv().await {
                            report_connection(&out, e, &mut pending);
                        }
                    });
                    client = Some(c);
                }
                Err(e) => out.result(r, Err(("other", e.to_string()))),
            },
            ("connect", Some(_)) => out.result(r, Err(("other", "already connected".into()))),
            (_, None) => out.result(r, Err(("stopped", "no client: connect first".into()))),
            ("subscribe", Some(c)) => {
                let channel = str_of("channel");
                // The application's kept position, when it has one.
                let from = cmd["resume"]["epoch"].as_str().map(|epoch| Position {
                    epoch: epoch.to_string(),
                    seq: cmd["resume"]["seq"].as_u64().unwrap_or(0),
                });
                let (stop_tx, stop) = oneshot::channel();
                subs.insert(channel.clone(), stop_tx);
                in_order(subscription(c.clone(), channel, from, r, stop, out.clone())).await;
            }
            ("unsubscribe", Some(_)) => match subs.remove(&str_of("channel")) {
                Some(stop) => {
                    if let Err(r) = stop.send(r) {
                        out.result(r, Ok(json!({})));
                    }
                }
                None => out.result(r, Ok(json!({}))),
            },
            ("publish", Some(c)) => {
                let (c, out) = (c.clone(), out.clone());
                let (channel, id, payload) =
                    (str_of("channel"), cmd["id"].clone(), cmd["payload"].clone());
                in_order(async move {
                    let result = match id.as_str() {
                        Some(id) => match courier_protocol_payload(&payload) {
                            Ok(bytes) => c.publish_with_id(&channel, id.to_string(), bytes).await,
                            Err(e) => Err(PublishError::Encode(e)),
                        },
                        None => c.publish(&channel, &payload).await,
                    };
                    out.result(
                        r,
                        result
                            .map(|a| json!({"epoch": a.epoch, "seq": a.seq, "duplicate": a.duplicate}))
                            .map_err(publish_error),
                    );
                })
                .await;
            }
            ("rpc", Some(c)) => {
                let (c, out) = (c.clone(), out.clone());
                let (method, payload) = (str_of("method"), cmd["payload"].clone());
                tokio::spawn(async move {
                    let result = c.rpc::<Value, Value>(&method, &payload).await;
                    out.result(
                        r,
                        result.map(|p| json!({"payload": p})).map_err(request_error),
                    );
                });
            }
            ("close", Some(c)) => {
                c.close().await;
                out.result(r, Ok(json!({})));
            }
            (other, Some(_)) => out.result(
                r,
                Err(("unsupported", format!("unknown command `{other}`"))),
            ),
        }
    }
}

/// Polls `fut` here up to its first wait, so that commands reach the client
/// in the order they arrived, then lets it finish on its own task.
async fn in_order(fut: impl Future<Output = ()> + Send + 'static) {
    let mut fut = Box::pin(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    if first.is_pending() {
        tokio::spawn(fut);
    }
}

/// Builds and starts the client from a `connect` command.
fn start(cmd: &Value, out: &Out) -> Result<(Client, courier_client::Events), ClientError> {
    let mut config = ClientConfig::new(cmd["url"].as_str().unwrap_or(""));
    let names: Vec<&str> = cmd["subprotocols"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    config.offers(names);
    let features: Vec<&str> = cmd["features"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    config.features(features);
    let tokens: Vec<Option<String>> = cmd["tokens"]
        .as_array()
        .map(|a| a.iter().map(|t| t.as_str().map(String::from)).collect())
        .unwrap_or_default();
    let calls = Arc::new(Mutex::new(0usize));
    let token_out = out.clone();
    config.token_provider(move |reason: TokenReason| {
        let mut n = calls.lock().unwrap_or_else(|p| p.into_inner());
        let token = tokens
            .get((*n).min(tokens.len().saturating_sub(1)))
            .cloned()
            .flatten();
        *n += 1;
        let reason = match reason {
            TokenReason::Connect => "connect",
            TokenReason::Expired => "expired",
            TokenReason::ExpiringSoon => "expiring",
            TokenReason::ReauthRequested { .. } => "reauth",
        };
        token_out.emit(json!({"event": "token", "reason": reason}));
        async move { Ok(token) }
    });
    let o = &cmd["options"];
    let ms = |k: &str| o[k].as_u64().map(Duration::from_millis);
    if let (Some(base), Some(cap)) = (ms("backoff_base_ms"), ms("backoff_cap_ms")) {
        config.backoff(base, cap);
    }
    if let Some(d) = ms("reconnect_now_max_ms") {
        config.reconnect_now_max(d);
    }
    if let Some(n) = o["max_attempts"].as_u64() {
        config.max_attempts(n as u32);
    }
    if let Some(n) = o["offline_queue"].as_u64() {
        config.offline_queue_capacity(n as usize);
    }
    if let Some(d) = ms("request_timeout_ms") {
        config.request_timeout(d);
    }
    Client::start_with_events(config)
}

fn report_connection(out: &Out, e: ConnectionEvent, pending: &mut Option<u64>) {
    match e {
        ConnectionEvent::Connected {
            subprotocol,
            session_id,
            ..
        } => {
            out.emit(json!({"event": "connected", "subprotocol": subprotocol.to_string(), "session_id": session_id}));
            if let Some(r) = pending.take() {
                out.result(r, Ok(json!({})));
            }
        }
        ConnectionEvent::Disconnected { code, reason } => {
            out.emit(json!({"event": "disconnected", "code": code, "reason": reason}))
        }
        ConnectionEvent::Reconnecting { attempt, delay } => out.emit(
            json!({"event": "reconnecting", "attempt": attempt, "delay_ms": delay.as_millis() as u64}),
        ),
        ConnectionEvent::Terminal(err) => {
            let (code, reason) = match &*err {
                ClientError::TerminalClose { code, reason } => (json!(code), reason.clone()),
                ClientError::UnsupportedVersion { reason, .. } => (json!(4002), reason.clone()),
                _ => (Value::Null, String::new()),
            };
            out.emit(json!({"event": "terminal", "code": code, "reason": reason, "message": err.to_string()}));
            if let Some(r) = pending.take() {
                out.result(r, Err(("stopped", err.to_string())));
            }
        }
        ConnectionEvent::Closed => {}
    }
}

/// Runs one subscription: reports its events until it ends or the suite
/// unsubscribes (the `oneshot` carries the `unsubscribe` command's ref).
async fn subscription(
    client: Client,
    channel: String,
    from: Option<Position>,
    r: u64,
    mut stop: oneshot::Receiver<u64>,
    out: Out,
) {
    let subscribed = match from {
        Some(from) => client.subscribe_from(channel.clone(), from).await,
        None => client.subscribe(channel.clone()).await,
    };
    let mut sub = match subscribed {
        Ok(s) => s,
        Err(e) => return out.result(r, Err(subscribe_error(e))),
    };
    let mut first = Some(r);
    loop {
        tokio::select! {
            unsub = &mut stop => {
                sub.unsubscribe().await;
                if let Ok(u) = unsub {
                    out.result(u, Ok(json!({})));
                }
                return;
            }
            event = sub.recv() => {
                let Some(event) = event else { return };
                match event {
                    SubscriptionEvent::Subscribed { position, recovery } => {
                        let (status, reason, replayed) = match recovery {
                            Recovery::NotRequested => ("not_requested", Value::Null, 0),
                            Recovery::Recovered { replayed } => ("recovered", Value::Null, replayed),
                            Recovery::Failed { reason } => ("failed", json!(reason_name(reason)), 0),
                        };
                        let pos = json!({"epoch": position.epoch, "seq": position.seq});
                        out.emit(json!({"event": "subscribed", "channel": channel, "position": pos,
                            "recovery": status, "reason": reason, "replayed": replayed}));
                        if let Some(r) = first.take() {
                            out.result(r, Ok(json!({"position": pos})));
                        }
                    }
                    SubscriptionEvent::Message(m) => {
                        let payload = m.json().unwrap_or(Value::Null);
                        out.emit(json!({"event": "message", "channel": m.channel, "epoch": m.epoch,
                            "seq": m.seq, "id": m.id, "payload": payload}));
                    }
                    SubscriptionEvent::Gap { last, received } => out.emit(json!({"event": "gap", "channel": channel,
                        "last": {"epoch": last.epoch, "seq": last.seq},
                        "received": {"epoch": received.epoch, "seq": received.seq}})),
                    SubscriptionEvent::Ended(e) => {
                        out.emit(json!({"event": "error", "channel": channel, "message": e.to_string()}));
                        return;
                    }
                    _ => {}
                }
            }
        }
    }
}

fn courier_protocol_payload(v: &Value) -> Result<bytes::Bytes, String> {
    courier_protocol::wire::to_payload(v).map_err(|e| e.to_string())
}

fn reason_name(r: RecoveryReason) -> &'static str {
    match r {
        RecoveryReason::HistoryExpired => "history_expired",
        RecoveryReason::EpochChanged => "epoch_changed",
        RecoveryReason::PositionAhead => "position_ahead",
        RecoveryReason::NoHistory => "no_history",
        RecoveryReason::Unspecified => "unspecified",
    }
}

fn publish_error(e: PublishError) -> (&'static str, String) {
    let kind = match &e {
        PublishError::QueueFull(_) => "queue_full",
        PublishError::TooLarge { .. } => "too_large",
        PublishError::Rejected { code, .. } if *code == courier_client::ErrorCode::Forbidden => {
            "forbidden"
        }
        PublishError::Rejected { .. } => "server",
        PublishError::Stopped(_) => "stopped",
        PublishError::Encode(_) | PublishError::Expired => "other",
    };
    (kind, e.to_string())
}

fn subscribe_error(e: SubscribeError) -> (&'static str, String) {
    let kind = match &e {
        SubscribeError::Rejected { code, .. } if *code == courier_client::ErrorCode::Forbidden => {
            "forbidden"
        }
        SubscribeError::Rejected { .. } => "server",
        SubscribeError::Stopped(_) => "stopped",
        SubscribeError::AlreadySubscribed(_) => "other",
    };
    (kind, e.to_string())
}

fn request_error(e: RequestError) -> (&'static str, String) {
    let kind = match &e {
        RequestError::Server { code, .. } if *code == courier_client::ErrorCode::Forbidden => {
            "forbidden"
        }
        RequestError::Server { .. } => "server",
        RequestError::Timeout(_) => "timeout",
        RequestError::NotConnected => "stopped",
        RequestError::Stopped(_) => "stopped",
        RequestError::Payload(_) => "other",
    };
    (kind, e.to_string())
}
