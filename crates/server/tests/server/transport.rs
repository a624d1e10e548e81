//! SSE (SSE-*), wss:// with a generated certificate, graceful shutdown,
//! /healthz and /metrics.

use std::sync::Arc;
use std::time::Duration;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::*;

/// One parsed SSE event.
#[derive(Debug)]
struct Event {
    event: String,
    id: Option<String>,
    data: serde_json::Value,
}

struct Sse {
    lines: tokio::io::Lines<BufReader<TcpStream>>,
}

impl Sse {
    async fn open(
        s: &courier_server::RunningServer,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (String, Sse) {
        let mut tcp = TcpStream::connect(s.local_addr()).await.unwrap();
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut lines = BufReader::new(tcp).lines();
        let mut head = String::new();
        loop {
            let l = lines.next_line().await.unwrap().unwrap();
            if l.is_empty() {
                break;
            }
            head.push_str(&l);
            head.push('\n');
        }
        (head, Sse { lines })
    }

    /// The next event (chunked transfer framing lines are skipped: they
    /// never start with a field name).
    async fn next(&mut self) -> Event {
        let (mut event, mut id, mut data) = (String::new(), None, None);
        loop {
            let l = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .expect("event in time")
                .unwrap()
                .expect("stream open");
            if let Some(v) = l.strip_prefix("event: ") {
                event = v.to_string();
            } else if let Some(v) = l.strip_prefix("id: ") {
                id = Some(v.to_string());
            } else if let Some(v) = l.strip_prefix("data: ") {
                data = Some(serde_json::from_str(v).unwrap());
            } else if l.is_empty() {
                if let Some(data) = data.take() {
                    return Event { event, id, data };
                }
            }
        }
    }

    async fn next_not_ping(&mut self) -> Event {
        loop {
            let e = self.next().await;
            if e.event != "ping" {
                return e;
            }
        }
    }
}

async fn post(
    s: &courier_server::RunningServer,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, _, body) = http(s, "POST", path, &headers, body.to_string().as_bytes())
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn sse_stream_publish_and_last_event_id_resume() {
    let s = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let token = hs256(json!({"sub": "carol"}));
    let bearer = format!("Bearer {token}");
    let (head, mut sse) = Sse::open(
        &s,
        "/sse?v=2&channel=news&channel=ops",
        &[("Authorization", &bearer)],
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/event-stream"));
    let welcome = sse.next().await;
    assert_eq!(
        (welcome.event.as_str(), welcome.data["user"].as_str()),
        ("welcome", Some("carol"))
    );
    assert_eq!(
        welcome.id, None,
        "SSE-EVENT-ID: only message events carry an id"
    );
    for channel in ["news", "ops"] {
        let ack = sse.next().await;
        assert_eq!(
            (ack.event.as_str(), ack.data["channel"].as_str()),
            ("subscribe_ack", Some(channel))
        );
    }
    let mut epoch = String::new();
    for i in 1..=3 {
        let (status, ack) = post(&s, "/publish?v=2", Some(&token), json!({"type": "publish", "channel": "news", "id": format!("n{i}"), "payload": {"i": i}})).await;
        assert_eq!(status, 200, "{ack}");
        assert_eq!(
            (ack["type"].as_str(), ack["seq"].as_u64()),
            (Some("publish_ack"), Some(i))
        );
        epoch = ack["epoch"].as_str().unwrap().to_string();
    }
    for i in 1..=3u64 {
        let m = sse.next_not_ping().await;
        assert_eq!(m.event, "message");
        assert_eq!(m.id, Some(format!("news:{epoch}:{i}")));
        assert_eq!(m.data["payload"], json!({"i": i}));
    }
    // A duplicate POST is acknowledged, not redelivered.
    let (_, dup) = post(
        &s,
        "/publish",
        Some(&token),
        json!({"channel": "news", "id": "n2", "payload": 0}),
    )
    .await;
    assert_eq!(
        (dup["seq"].as_u64(), dup["duplicate"].as_bool()),
        (Some(2), Some(true))
    );
    drop(sse);

    // Reconnect with Last-Event-ID: exactly 2 and 3 are replayed.
    let last = format!("news:{epoch}:1");
    let (_, mut sse) = Sse::open(
        &s,
        "/sse?channel=news",
        &[("Authorization", &bearer), ("Last-Event-ID", &last)],
    )
    .await;
    assert_eq!(sse.next().await.event, "welcome");
    let ack = sse.next().await;
    assert_eq!(ack.data["recovery"]["status"], "RECOVERY_STATUS_RECOVERED");
    assert_eq!(ack.data["recovery"]["replayed"], 2);
    assert_eq!(sse.next_not_ping().await.data["seq"], 2);
    assert_eq!(sse.next_not_ping().await.data["seq"], 3);
    drop(sse);

    // `since` wins over Last-Event-ID for its channel.
    let since = format!("/sse?channel=news&since=news:{epoch}:2");
    let (_, mut sse) = Sse::open(
        &s,
        &since,
        &[("Authorization", &bearer), ("Last-Event-ID", &last)],
    )
    .await;
    sse.next().await;
    assert_eq!(sse.next().await.data["recovery"]["replayed"], 1);
}

#[tokio::test]
async fn sse_failures_are_disconnect_events_and_http_errors() {
    let s = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let (head, mut sse) = Sse::open(&s, "/sse?v=9&channel=a", &[]).await;
    assert!(head.starts_with("HTTP/1.1 200"));
    let d = sse.next().await;
    assert_eq!(
        (d.event.as_str(), d.data["code"].as_u64()),
        ("disconnect", Some(close::UNSUPPORTED_VERSION as u64))
    );
    assert!(d.data["reason"]
        .as_str()
        .unwrap()
        .starts_with("unsupported version; supported: courier.v2.json"));
    let (_, mut sse) = Sse::open(&s, "/sse?channel=a", &[("Authorization", "Bearer forged")]).await;
    assert_eq!(sse.next().await.data["code"], close::AUTH_FAILED);
    let expired = format!("Bearer {}", hs256(json!({"sub": "x", "exp": now_s() - 5})));
    let (_, mut sse) = Sse::open(&s, "/sse?channel=a", &[("Authorization", &expired)]).await;
    assert_eq!(sse.next().await.data["code"], close::TOKEN_EXPIRED);

    let token = hs256(json!({"sub": "dave"}));
    assert_eq!(
        post(
            &s,
            "/publish",
            None,
            json!({"channel": "a", "id": "1", "payload": 1})
        )
        .await
        .0,
        401
    );
    let (status, e) = post(
        &s,
        "/publish",
        Some(&token),
        json!({"channel": "a", "payload": 1}),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("ERROR_CODE_BAD_REQUEST"))
    );
    let (status, e) = post(
        &s,
        "/publish?v=7",
        Some(&token),
        json!({"channel": "a", "id": "1"}),
    )
    .await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("ERROR_CODE_UNSUPPORTED"))
    );
    let big = "z".repeat(70_000);
    let (status, _) = post(
        &s,
        "/publish",
        Some(&token),
        json!({"channel": "a", "id": "1", "payload": big}),
    )
    .await;
    assert_eq!(status, 413);
    let (status, _, _) = http(&s, "DELETE", "/publish", &[], b"").await.unwrap();
    assert_eq!(status, 405);
    let (status, _, _) = http(&s, "GET", "/nope", &[], b"").await.unwrap();
    assert_eq!(status, 404);
}

#[tokio::test]
async fn wss_with_a_generated_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("courier-tls-{}-{}", std::process::id(), now_s()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let s = server(|c| {
        c.tls = Some(courier_server::TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        })
    })
    .await;
    assert!(s.ws_url().starts_with("wss://"));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(s.local_addr()).await.unwrap();
    let tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    let up = upgrade_on(tls, "localhost", &["courier.v2.proto"], &[])
        .await
        .unwrap();
    let mut c = Client::hello(up.ws.unwrap(), sp("courier.v2.proto"), "", &[])
        .await
        .unwrap();
    assert_eq!(c.publish("p", "tls", json!("secure")).await.unwrap().seq, 1);
    // Plain TCP to a TLS port gets no WebSocket.
    assert!(upgrade(&s, &["courier.v2.json"], &[]).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn graceful_shutdown_sends_disconnect_and_1001() {
    let s = server(|_| {}).await;
    let mut clients = Vec::new();
    for name in ["courier.v2.json", "courier.v1.msgpack", "courier.v2.proto"] {
        clients.push(Client::open(&s, name, "", &[]).await.unwrap());
    }
    let (_, mut sse) = Sse::open(&s, "/sse?channel=x", &[]).await;
    assert_eq!(sse.next().await.event, "welcome");
    assert_eq!(sse.next().await.event, "subscribe_ack");
    let addr = s.local_addr();
    let stop = tokio::spawn(s.shutdown());
    for c in &mut clients {
        let closed = expect_close(c, close::GOING_AWAY).await;
        let d = closed.disconnect.unwrap();
        // v2 spreads reconnects with a retry hint; v1 has no such field.
        assert_eq!(d.retry_after_ms.is_some(), c.welcome.version == 2);
    }
    let e = sse.next_not_ping().await;
    assert_eq!(
        (e.event.as_str(), e.data["code"].as_u64()),
        ("disconnect", Some(1001))
    );
    tokio::time::timeout(Duration::from_secs(3), stop)
        .await
        .expect("shutdown drains")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn healthz_and_metrics() {
    let s = server(|_| {}).await;
    let (status, _, body) = http(&s, "GET", "/healthz", &[], b"").await.unwrap();
    assert_eq!((status, body.as_slice()), (200, &b"ok\n"[..]));
    let mut c = Client::json(&s).await.unwrap();
    c.subscribe("s", "m", None).await.unwrap();
    c.publish("1", "m", json!(1)).await.unwrap();
    c.message().await.unwrap();
    let mut bad = Client::json(&s).await.unwrap();
    bad.send(Body::Hello(v2::Hello::default())).await.unwrap();
    expect_close(&mut bad, close::PROTOCOL_VIOLATION).await;
    let (status, head, body) = http(&s, "GET", "/metrics", &[], b"").await.unwrap();
    assert_eq!(status, 200);
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/plain; version=0.0.4"));
    let text = String::from_utf8(body).unwrap();
    for line in [
        "courier_connections{transport=\"ws\"} 1",
        "courier_connections_total 2",
        "courier_publishes_total 1",
        "courier_disconnects_total{code=\"4003\"} 1",
        "courier_channels 1",
        "# TYPE courier_messages_out_total counter",
        "# TYPE courier_queue_depth gauge",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in\n{text}"
        );
    }
    let n = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap()
    };
    // hello, subscribe, publish; hello, hello.
    assert_eq!(n("courier_messages_in_total"), 5);
    // subscribe_ack, publish_ack, message (welcome and disconnect are not queued).
    assert!(n("courier_messages_out_total") >= 3);
    // Byte counters, the build, and the latency histograms (one delivery,
    // at least one write that waited in a queue).
    assert!(n("courier_received_bytes_total") > 50);
    assert!(n("courier_sent_bytes_total") > n("courier_received_bytes_total"));
    assert!(text
        .lines()
        .any(|l| l.starts_with("courier_build_info{version=\"") && l.ends_with("} 1")));
    assert!(text.contains("# TYPE courier_delivery_latency_seconds histogram"));
    assert_eq!(n("courier_delivery_latency_seconds_count"), 1);
    assert!(n("courier_delivery_latency_seconds_bucket{le=\"+Inf\"}") == 1);
    assert!(n("courier_send_queue_wait_seconds_count") >= 1);
}

#[tokio::test]
async fn healthz_answers_503_and_new_sessions_are_refused_while_draining() {
    let s = server(|c| c.shutdown_grace_ms = 1500).await;
    // A client that never answers the close keeps the drain going.
    let mut stuck = Client::json(&s).await.unwrap();
    let addr = s.local_addr();
    let probe = RunningProbe(addr);
    let stop = tokio::spawn(s.shutdown());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _, body) = probe.get("/healthz").await;
    assert_eq!((status, body.as_slice()), (503, &b"shutting down\n"[..]));
    let (status, _, _) = probe.get("/ws").await;
    assert_eq!(status, 503, "a new WebSocket session during the drain");
    let (status, _, _) = probe.get("/sse").await;
    assert_eq!(status, 503, "a new SSE session during the drain");
    assert!(matches!(
        stuck.recv_any().await.unwrap().body,
        Some(Body::Disconnect(_))
    ));
    tokio::time::timeout(Duration::from_secs(4), stop)
        .await
        .expect("the drain ends after shutdown_grace_ms")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener closes once drained"
    );
}

/// Plain HTTP/1.1 GETs to an address (the server handle is gone while it drains).
struct RunningProbe(std::net::SocketAddr);

impl RunningProbe {
    async fn get(&self, path: &str) -> (u16, String, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut tcp = TcpStream::connect(self.0).await.expect("still accepting");
        let req = format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await.unwrap();
        let text = String::from_utf8_lossy(&out).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_string(), body.as_bytes().to_vec())
    }
}

#[tokio::test]
async fn a_publish_body_that_never_arrives_gets_408() {
    use tokio::io::AsyncReadExt;
    let s = server(|c| c.http_body_timeout_ms = 300).await;
    let mut tcp = TcpStream::connect(s.local_addr()).await.unwrap();
    let head = "POST /publish HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\":";
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut out = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut out))
        .await
        .expect("answered before the client gave up")
        .unwrap();
    let text = String::from_utf8_lossy(&out[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.contains("request body not received within 300 ms"),
        "{text}"
    );
}
