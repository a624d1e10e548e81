//! `courier serve` and `courier load` as a user runs them: the real binary
//! as a child process on a free loopback port, its stdout line, HTTP
//! probes, a WebSocket session, configuration files (good and bad), SIGTERM
//! with the shutdown notice, TLS from the configuration file with the Rust
//! client over `wss://`, and a small fan-out run of `courier load`.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{close, wire, Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdout, Command};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Bound on every wait: a hung step fails the test instead of the CI job.
const LIMIT: Duration = Duration::from_secs(15);

fn courier() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_courier"));
    cmd.kill_on_drop(true)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "courier-cli-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Collects a child's stderr (bounded) so a failure can show the logs, and
/// so the pipe never fills and blocks the server.
fn drain_stderr(child: &mut Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut log = sink.lock().unwrap();
            if log.len() < 64 * 1024 {
                log.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    log
}

/// A running `courier serve`.
struct Served {
    child: Child,
    /// Kept open: the server's stdout stays a live pipe.
    _stdout: BufReader<ChildStdout>,
    log: Arc<Mutex<String>>,
    ws_url: String,
    /// `127.0.0.1:PORT`.
    addr: String,
}

impl Served {
    /// Starts `courier serve ARGS` and waits for its listening line.
    async fn start(args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut cmd = courier();
        cmd.arg("serve").args(args).arg("--log").arg("info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("courier starts");
        let log = drain_stderr(&mut child);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = tokio::time::timeout(LIMIT, stdout.read_line(&mut line)).await;
        let logs = log.lock().unwrap().clone();
        assert!(
            matches!(read, Ok(Ok(n)) if n > 0),
            "no listening line; stderr:\n{logs}"
        );
        let ws_url = line
            .trim_end()
            .strip_prefix("courier: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}; stderr:\n{logs}"))
            .to_string();
        let addr = ws_url
            .strip_prefix("ws://")
            .or_else(|| ws_url.strip_prefix("wss://"))
            .and_then(|r| r.strip_suffix("/ws"))
            .unwrap_or_else(|| panic!("not ws[s]://ADDR/ws: {ws_url}"))
            .to_string();
        Served {
            child,
            _stdout: stdout,
            log,
            ws_url,
            addr,
        }
    }

    /// Sends `signal` (`TERM`, `INT`) with the `kill` command (no signal
    /// crate needed) and waits for the exit.
    async fn stop(&mut self, signal: &str) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
        match tokio::time::timeout(LIMIT, self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("no exit after SIG{signal}; stderr:\n{}", self.logs()),
        }
    }

    fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

/// `GET path` over a fresh connection: (status, body).
async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let exchange = async {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        tcp.read_to_end(&mut raw).await.unwrap();
        String::from_utf8(raw).unwrap()
    };
    let response = tokio::time::timeout(LIMIT, exchange)
        .await
        .expect("HTTP answer");
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("status line in {head:?}"));
    (status, body.to_string())
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A raw v2 JSON session: upgrade, `hello`, `welcome`.
async fn session(url: &str) -> (Ws, Codec, v2::Welcome) {
    let sp = Subprotocol::ALL[0];
    assert_eq!(sp.name(), "courier.v2.json");
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(sp.name()),
    );
    let (mut ws, response) = tokio::time::timeout(LIMIT, tokio_tungstenite::connect_async(request))
        .await
        .expect("upgrade in time")
        .expect("upgrade");
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        sp.name()
    );
    let codec = Codec::new(sp);
    send(
        &mut ws,
        &codec,
        Body::Hello(v2::Hello {
            client: "cli-e2e".into(),
            features: vec![],
            ..Default::default()
        }),
    )
    .await;
    match next(&mut ws, &codec).await {
        Some(Body::Welcome(w)) => (ws, codec, w),
        other => panic!("expected welcome, got {other:?}"),
    }
}

async fn send(ws: &mut Ws, codec: &Codec, body: Body) {
    let frame = codec.encode(&v2::Envelope { body: Some(body) }).unwrap();
    ws.send(WsMessage::Text(
        String::from_utf8(frame.to_vec()).unwrap().into(),
    ))
    .await
    .unwrap();
}

/// The next envelope body, skipping pings; None once a close frame came.
async fn next(ws: &mut Ws, codec: &Codec) -> Option<Body> {
    loop {
        let msg = tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("a frame in time")?
            .ok()?;
        let bytes = match msg {
            WsMessage::Text(t) => Bytes::from(t),
            WsMessage::Close(_) => return None,
            _ => continue,
        };
        match codec
            .decode_frame::<v2::Envelope>(&bytes, Some(true))
            .unwrap()
            .body
        {
            Some(Body::Ping(_)) => continue,
            body => return body,
        }
    }
}

#[tokio::test]
async fn serve_without_config_answers_http_and_websocket_and_drains_on_sigterm() {
    let mut served = Served::start(&["--listen", "127.0.0.1:0"], &[]).await;
    assert!(
        served.ws_url.starts_with("ws://127.0.0.1:"),
        "{}",
        served.ws_url
    );
    let port: u16 = served.addr.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0, "the printed address is the bound one");

    let (status, body) = http_get(&served.addr, "/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));

    // One session: subscribe, publish, receive our own message.
    let (mut ws, codec, welcome) = session(&served.ws_url).await;
    assert!(welcome.server.starts_with("courier/"), "{}", welcome.server);
    send(
        &mut ws,
        &codec,
        Body::Subscribe(v2::Subscribe {
            id: "s1".into(),
            channel: "e2e".into(),
            ..Default::default()
        }),
    )
    .await;
    assert!(
        matches!(next(&mut ws, &codec).await, Some(Body::SubscribeAck(a)) if a.channel == "e2e")
    );
    let value = serde_json::json!({"text": "from the CLI test"});
    send(
        &mut ws,
        &codec,
        Body::Publish(v2::Publish {
            id: "p1".into(),
            channel: "e2e".into(),
            payload: wire::payload::from_json(&value).unwrap(),
        }),
    )
    .await;
    let (mut acked, mut delivered) = (None, None);
    while acked.is_none() || delivered.is_none() {
        match next(&mut ws, &codec).await {
            Some(Body::PublishAck(a)) => acked = Some(a),
            Some(Body::Message(m)) => delivered = Some(m),
            other => panic!("unexpected {other:?}"),
        }
    }
    let (acked, delivered) = (acked.unwrap(), delivered.unwrap());
    assert_eq!((acked.seq, delivered.seq), (1, 1));
    assert_eq!(wire::payload::to_json(&delivered.payload).unwrap(), value);

    let (status, metrics) = http_get(&served.addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("# TYPE courier_connections gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("courier_connections{transport=\"ws\"} 1"),
        "{metrics}"
    );

    // CLOSE-SHUTDOWN: SIGTERM sends the notice, then close 1001, then exits 0.
    let pid = served.child.id().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let notice = loop {
        match next(&mut ws, &codec).await {
            Some(Body::Disconnect(d)) => break d,
            Some(_) => continue,
            None => panic!("closed without a disconnect notice"),
        }
    };
    assert_eq!(notice.code, u32::from(close::GOING_AWAY));
    let close_frame = loop {
        match tokio::time::timeout(LIMIT, ws.next())
            .await
            .expect("close in time")
        {
            Some(Ok(WsMessage::Close(frame))) => break frame,
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(
        close_frame.map(|f| u16::from(f.code)),
        Some(close::GOING_AWAY)
    );
    drop(ws);
    let status = tokio::time::timeout(LIMIT, served.child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", served.logs());
    assert!(served.logs().contains("shutting down"), "{}", served.logs());
}

#[tokio::test]
async fn serve_reads_a_config_file_and_the_environment_overrides_it() {
    let dir = scratch("config");
    let file = dir.join("courier.toml");
    std::fs::write(
        &file,
        r#"
listen = "127.0.0.1:0"
server_name = "e2e-from-file"
heartbeat_interval_ms = 7000
max_message_bytes = 4096

[[channels]]
pattern = "closed.*"
subscribe = "admin"
"#,
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let mut served = Served::start(
        &["--config", file_arg],
        &[("COURIER_HEARTBEAT_INTERVAL_MS", "9000")],
    )
    .await;
    let (mut ws, codec, welcome) = session(&served.ws_url).await;
    assert_eq!(welcome.server, "e2e-from-file");
    assert_eq!(
        welcome.heartbeat_interval_ms, 9000,
        "environment wins over the file"
    );
    assert_eq!(welcome.limits.unwrap().max_message_bytes, 4096);
    // The file's channel rule applies: an anonymous session may not subscribe.
    send(
        &mut ws,
        &codec,
        Body::Subscribe(v2::Subscribe {
            id: "s1".into(),
            channel: "closed.room".into(),
            ..Default::default()
        }),
    )
    .await;
    match next(&mut ws, &codec).await {
        Some(Body::Error(e)) => assert_eq!(e.code, v2::ErrorCode::Forbidden as i32),
        other => panic!("expected FORBIDDEN, got {other:?}"),
    }
    drop(ws);
    // SIGINT (Ctrl-C) stops it as cleanly as SIGTERM.
    let status = served.stop("INT").await;
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?} stderr:\n{}",
        served.logs()
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_config_files_fail_with_a_clear_error_and_no_listening_line() {
    let dir = scratch("bad-config");
    let unknown_key = dir.join("typo.toml");
    std::fs::write(&unknown_key, "lisen = \"127.0.0.1:0\"\n").unwrap();
    let bad_value = dir.join("zero.toml");
    std::fs::write(
        &bad_value,
        "listen = \"127.0.0.1:0\"\nheartbeat_interval_ms = 0\n",
    )
    .unwrap();
    let not_toml = dir.join("broken.toml");
    std::fs::write(&not_toml, "listen = [\n").unwrap();
    let missing = dir.join("missing.toml");

    for (file, expected) in [
        (&unknown_key, "lisen"),
        (&bad_value, "heartbeat_interval_ms"),
        (&not_toml, "invalid configuration"),
        (&missing, "cannot read"),
    ] {
        let out = tokio::time::timeout(
            LIMIT,
            courier().arg("serve").arg("--config").arg(file).output(),
        )
        .await
        .expect("exits promptly")
        .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(!out.status.success(), "{}: {stdout}", file.display());
        assert!(stdout.is_empty(), "nothing on stdout: {stdout}");
        assert!(
            stderr.contains(expected),
            "{} should explain `{expected}`:\n{stderr}",
            file.display()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn serve_with_tls_talks_to_the_rust_client_over_wss() {
    use courier_client::{ClientConfig, ConnectionEvent, SubscriptionEvent};

    let dir = scratch("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let file = dir.join("courier.toml");
    std::fs::write(
        &file,
        format!(
            "listen = \"127.0.0.1:0\"\nshutdown_grace_ms = 2000\n\n[tls]\ncert_file = {:?}\nkey_file = {:?}\n",
            cert_file.to_str().unwrap(),
            key_file.to_str().unwrap()
        ),
    )
    .unwrap();
    let mut served = Served::start(&["--config", file.to_str().unwrap()], &[]).await;
    assert!(
        served.ws_url.starts_with("wss://127.0.0.1:"),
        "{}",
        served.ws_url
    );

    // The certificate names `localhost`; the client trusts only it.
    let url = served.ws_url.replace("127.0.0.1", "localhost");
    let mut config = ClientConfig::new(url);
    config
        .web_roots(false)
        .add_root_certificates_pem(cert.cert.pem().as_bytes())
        .unwrap()
        .connect_timeout(LIMIT);
    let client = tokio::time::timeout(LIMIT, config.connect())
        .await
        .expect("connects in time")
        .expect("connects over wss://");
    let mut events = client.events();
    let mut sub = client.subscribe("secure").await.unwrap();
    let ack = client
        .publish("secure", &serde_json::json!({"text": "tls"}))
        .await
        .unwrap();
    let message = loop {
        match tokio::time::timeout(LIMIT, sub.recv())
            .await
            .expect("delivery")
        {
            Some(SubscriptionEvent::Message(m)) => break m,
            Some(_) => continue,
            None => panic!("subscription ended"),
        }
    };
    assert_eq!(message.seq, ack.seq);
    assert_eq!(
        message.decode::<serde_json::Value>().unwrap(),
        serde_json::json!({"text": "tls"})
    );

    // SIGTERM: the client is told 1001 (and would reconnect elsewhere).
    let status = served.stop("TERM").await;
    assert_eq!(status.code(), Some(0), "stderr:\n{}", served.logs());
    let disconnect = tokio::time::timeout(LIMIT, async {
        while let Some(event) = events.recv().await {
            if let ConnectionEvent::Disconnected { code, .. } = event {
                return Some(code);
            }
        }
        None
    })
    .await
    .expect("a disconnect event");
    assert_eq!(disconnect, Some(close::GOING_AWAY));
    client.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Runs `courier load --json` against `url` with `args` (bounded: 30 s
/// inside, 60 s outside), expects success and returns its JSON report.
async fn load_report(url: &str, args: &[&str]) -> serde_json::Value {
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        courier()
            .args(["load", "--url", url])
            .args(args)
            .args(["--timeout", "30", "--json"])
            .output(),
    )
    .await
    .expect("load finishes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).expect("JSON report")
}

#[tokio::test]
async fn load_against_a_served_server_reports_nothing_missing() {
    let mut served = Served::start(&["--listen", "127.0.0.1:0"], &[]).await;
    let report = load_report(&served.ws_url, &["-n", "20", "-m", "50"]).await;
    assert_eq!(report["subscribers"], 20, "{report}");
    assert_eq!(report["publishes"], 50, "{report}");
    assert_eq!(report["delivered"], 20 * 50, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["gaps"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(report["latency_p50_ms"].as_f64().unwrap() > 0.0, "{report}");

    // The server saw every load connection; then it stops cleanly.
    let (_, metrics) = http_get(&served.addr, "/metrics").await;
    let total: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("courier_connections_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(total >= 21, "20 subscribers + 1 publisher, saw {total}");
    assert_eq!(served.stop("TERM").await.code(), Some(0));
}

/// `courier load --idle` (the soak of crates/server/benches/endurance.sh)
/// keeps its subscribers alive: each answers the server's `ping` at once.
/// Its reader once held the `pong` until the next frame arrived, one
/// heartbeat interval late, and the server closed every idle subscriber
/// with 4200 (HB-DEADLINE) after interval + grace.
#[tokio::test]
async fn idle_load_subscribers_answer_every_heartbeat() {
    let mut served = Served::start(
        &["--listen", "127.0.0.1:0"],
        &[
            // Longer than the 1 s the generator waits (to read the server's
            // RSS) before its idle subscribers start reading.
            ("COURIER_HEARTBEAT_INTERVAL_MS", "1500"),
            ("COURIER_HEARTBEAT_GRACE_MS", "1000"),
        ],
    )
    .await;
    let report = load_report(&served.ws_url, &["-n", "5", "--idle", "6"]).await;
    // Four heartbeat intervals idle, each ping answered in time (with the
    // pong held until the next ping, all five were closed after 2.5 s).
    assert_eq!(report["errors"], 0, "{report}");
    let (_, metrics) = http_get(&served.addr, "/metrics").await;
    let silent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("courier_disconnects_total{code=\"4200\"} "))
        .map_or(0, |v| v.trim().parse().unwrap_or(u64::MAX));
    assert_eq!(silent, 0, "no session closed for silence: {metrics}");
    assert_eq!(served.stop("TERM").await.code(), Some(0));
}

/// A user's first `courier load` against a default `courier serve`: the
/// closed loop outruns the default 100 msg/s limit and the server closes
/// the publisher with 4101. The run ends at once (not after the timeout),
/// prints the report of what it measured and names the code, what it means
/// and the setting to change.
#[tokio::test]
async fn load_past_the_rate_limit_reports_the_close_code_and_what_to_change() {
    let mut served = Served::start(&["--listen", "127.0.0.1:0"], &[]).await;
    let started = std::time::Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        courier()
            .args(["load", "--url", &served.ws_url])
            .args(["-n", "2", "-m", "1000", "--json"])
            .output(),
    )
    .await
    .expect("load finishes")
    .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    let closed = report["publisher_closed"].as_str().unwrap_or_default();
    assert!(
        closed.starts_with("4101 CLOSE_CODE_RATE_LIMITED"),
        "{report}"
    );
    let published = report["published"].as_u64().unwrap();
    assert!((100..1000).contains(&published), "{report}");
    // What was published before the close was delivered and measured.
    assert!(report["delivered"].as_u64().unwrap() >= 2 * 100, "{report}");
    assert_eq!(
        report["missing"], 0,
        "every acknowledged publish arrived: {report}"
    );
    assert!(report["latency_p50_ms"].as_f64().unwrap() > 0.0, "{report}");
    for needle in ["4101", "max_messages_per_second", "--rate"] {
        assert!(stderr.contains(needle), "{needle} not in {stderr}");
    }
    assert!(!stderr.contains("Sending after closing"), "{stderr}");
    assert_eq!(served.stop("TERM").await.code(), Some(0));
}

/// Issue 14: a publisher must never hold an ack for a message that a
/// subscriber misses because of a graceful shutdown. Three SIGTERMs, each
/// under a pipelined publish load from four publishers with 200
/// subscribers (without the two-phase shutdown, round 0 already lost one); every acked seq must have reached every subscriber before
/// its `disconnect`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_publish_load_loses_no_acknowledged_message() {
    for round in 0..3 {
        let mut served = Served::start(
            &["--listen", "127.0.0.1:0"],
            &[
                ("COURIER_MAX_MESSAGES_PER_SECOND", "1000000"),
                ("COURIER_MAX_BURST", "1000000"),
                ("COURIER_SEND_QUEUE_FRAMES", "100000"),
            ],
        )
        .await;
        let mut subscribers = Vec::new();
        for i in 0..200 {
            let (mut ws, codec, _) = session(&served.ws_url).await;
            send(
                &mut ws,
                &codec,
                Body::Subscribe(v2::Subscribe {
                    id: format!("s{i}"),
                    channel: "load".into(),
                    resume: None,
                }),
            )
            .await;
            assert!(matches!(
                next(&mut ws, &codec).await,
                Some(Body::SubscribeAck(_))
            ));
            subscribers.push(tokio::spawn(async move {
                let mut seqs = Vec::new();
                let mut notice = None;
                while let Some(body) = next(&mut ws, &codec).await {
                    match body {
                        Body::Message(m) => seqs.push(m.seq),
                        Body::Disconnect(d) => notice = Some(d.code),
                        _ => {}
                    }
                }
                (seqs, notice)
            }));
        }
        // Four publishers, pipelining as fast as they can.
        let mut publishers = Vec::new();
        let mut ack_readers = Vec::new();
        for p in 0..4 {
            let (ws, codec, _) = session(&served.ws_url).await;
            let (mut tx, mut rx) = ws.split();
            publishers.push(tokio::spawn(async move {
                for i in 0..100_000u32 {
                    let frame = codec
                        .encode(&v2::Envelope {
                            body: Some(Body::Publish(v2::Publish {
                                id: format!("p{p}-{i}"),
                                channel: "load".into(),
                                payload: wire::to_payload(&i).unwrap(),
                            })),
                        })
                        .unwrap();
                    let text = String::from_utf8(frame.to_vec()).unwrap();
                    if tx.send(WsMessage::Text(text.into())).await.is_err() {
                        break;
                    }
                }
            }));
            ack_readers.push(tokio::spawn(async move {
                let codec = Codec::new(Subprotocol::ALL[0]);
                let mut acked = Vec::new();
                while let Ok(Some(Ok(msg))) = tokio::time::timeout(LIMIT, rx.next()).await {
                    let WsMessage::Text(t) = msg else { continue };
                    let env: v2::Envelope =
                        codec.decode_frame(&Bytes::from(t), Some(true)).unwrap();
                    if let Some(Body::PublishAck(a)) = env.body {
                        acked.push(a.seq);
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let status = served.stop("TERM").await;
        assert!(status.success(), "round {round}: exit {status}");
        publishers.iter().for_each(|p| p.abort());
        let mut acked = Vec::new();
        for a in ack_readers {
            acked.extend(tokio::time::timeout(LIMIT, a).await.unwrap().unwrap());
        }
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        let last = acked.len();
        for (i, s) in subscribers.into_iter().enumerate() {
            let (seqs, notice) = tokio::time::timeout(LIMIT, s).await.unwrap().unwrap();
            assert_eq!(
                notice,
                Some(u32::from(close::GOING_AWAY)),
                "round {round} subscriber {i}"
            );
            let got: std::collections::HashSet<u64> = seqs.into_iter().collect();
            let missing: Vec<u64> = acked.iter().copied().filter(|s| !got.contains(s)).collect();
            assert!(
                missing.is_empty(),
                "round {round}: subscriber {i} misses {} of the {last} acknowledged messages (first {:?})",
                missing.len(),
                missing.first()
            );
        }
    }
}
