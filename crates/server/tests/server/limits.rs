//! HB-*, LIMIT-*, CLOSE-OVERSIZE, per-IP capacity and the Origin allowlist.

use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn server_pings_on_interval_and_answers_client_pings() {
    let s = server(|c| {
        c.heartbeat_interval_ms = 100;
        c.heartbeat_grace_ms = 100;
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    assert_eq!(c.welcome.heartbeat_interval_ms, 100);
    // HB-CLIENT-PING-ANSWERED.
    c.send(Body::Ping(v2::Ping { ts: 42 })).await.unwrap();
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::Pong(v2::Pong { ts: 42 })
    ));
    // Answering every ping keeps the session open well past the deadline.
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(700) {
        if let Some(Body::Ping(p)) = c.recv_any().await.unwrap().body {
            pings += 1;
            c.send(Body::Pong(v2::Pong { ts: p.ts })).await.unwrap();
        }
    }
    assert!(
        (4..=10).contains(&pings),
        "HB-SERVER-PING: {pings} pings in 700 ms at 100 ms"
    );
}

#[tokio::test]
async fn silent_client_is_closed_4200() {
    let s = server(|c| {
        c.heartbeat_interval_ms = 100;
        c.heartbeat_grace_ms = 100;
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    let start = Instant::now();
    expect_close(&mut c, close::HEARTBEAT_TIMEOUT).await;
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn rate_limit_closes_4101() {
    let s = server(|c| {
        c.max_messages_per_second = 5;
        c.max_burst = 5;
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    for ts in 0..5 {
        c.send(Body::Ping(v2::Ping { ts })).await.unwrap();
    }
    for _ in 0..5 {
        assert!(matches!(c.recv_body().await.unwrap(), Body::Pong(_)));
    }
    c.send(Body::Ping(v2::Ping { ts: 99 })).await.unwrap();
    let closed = expect_close(&mut c, close::RATE_LIMITED).await;
    // CLOSE-RETRY-AFTER: the bucket's refill time (5 tokens at 5/s: ~1 s).
    let retry = closed.disconnect.unwrap().retry_after_ms.unwrap();
    assert!((500..=1000).contains(&retry), "retry_after_ms {retry}");
}

#[tokio::test]
async fn oversized_frames_close_1009_in_every_encoding() {
    let s = server(|c| c.max_message_bytes = 1024).await;
    for name in all_subprotocols() {
        let mut c = Client::open(&s, name, "", &[]).await.unwrap();
        let big = "x".repeat(2000);
        c.send(Body::Publish(v2::Publish {
            id: "big".into(),
            channel: "c".into(),
            payload: payload(json!(big)),
        }))
        .await
        .unwrap();
        expect_close(&mut c, close::MESSAGE_TOO_BIG).await;
    }
}

/// Publishes `n` messages of `size` bytes to `channel` as fast as allowed.
pub async fn flood(p: &mut Client, channel: &str, n: usize, size: usize) {
    let text = "y".repeat(size);
    // At most 8 publishes in flight, so the publisher's own acks never
    // overflow its (small) queue.
    for chunk in (0..n).collect::<Vec<_>>().chunks(8) {
        for i in chunk {
            let publish = v2::Publish {
                id: format!("f{i}"),
                channel: channel.into(),
                payload: payload(json!(text)),
            };
            p.send(Body::Publish(publish)).await.unwrap();
        }
        for _ in chunk {
            assert!(matches!(p.recv_body().await.unwrap(), Body::PublishAck(_)));
        }
    }
}

pub async fn metric(s: &courier_server::RunningServer, name: &str) -> u64 {
    let (_, _, body) = http(s, "GET", "/metrics", &[], b"").await.unwrap();
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("metric {name} missing in\n{text}"))
}

#[tokio::test]
async fn a_client_that_never_reads_is_closed_4100_with_bounded_memory() {
    let s = server(|c| {
        c.send_queue_frames = 16;
        c.max_messages_per_second = 100_000;
        c.max_burst = 100_000;
    })
    .await;
    let mut slow = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    slow.subscribe("s", "firehose", None).await.unwrap();
    let mut p = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    // ~24 MB: far more than loopback socket buffers hold, so the server's
    // writes block and the queue overflows.
    flood(&mut p, "firehose", 400, 60_000).await;
    let deadline = Instant::now() + WAIT;
    while metric(&s, "courier_disconnects_total{code=\"4100\"}").await == 0 {
        assert!(Instant::now() < deadline, "slow consumer was never closed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(metric(&s, "courier_queue_depth").await <= 16);
    // The publisher's session is unaffected.
    p.send(Body::Ping(v2::Ping { ts: 1 })).await.unwrap();
    assert!(matches!(p.recv_body().await.unwrap(), Body::Pong(_)));
    // CLOSE-DISCONNECT-NOTICE: resuming to read within the grace period,
    // the slow client gets what was in transit, then the 4100 notice and close.
    let closed = slow.closed().await.unwrap();
    let notice = closed.disconnect.expect("the 4100 disconnect notice");
    assert_eq!(notice.code, close::SLOW_CONSUMER as u32);
    assert_eq!(closed.code, Some(close::SLOW_CONSUMER));
}

#[tokio::test]
async fn connections_per_ip_are_limited_with_4102() {
    let s = server(|c| c.max_connections_per_ip = 2).await;
    let _a = Client::json(&s).await.unwrap();
    let _b = Client::json(&s).await.unwrap();
    let up = upgrade(&s, &["courier.v2.json"], &[]).await.unwrap();
    assert_eq!(up.status, 101, "VER-REFUSE-AFTER-ACCEPT");
    let mut c = Client::raw(up.ws.unwrap(), v2_json());
    expect_close(&mut c, close::OVERLOADED).await;
    drop((c, _a));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = Client::json(&s).await;
    assert!(r.is_ok(), "a freed slot is usable again: {:?}", r.err());
}

#[tokio::test]
async fn origin_allowlist_refuses_with_403() {
    let s = server(|c| c.allowed_origins = vec!["https://good.example".into()]).await;
    let bad = upgrade(
        &s,
        &["courier.v2.json"],
        &[("Origin", "https://evil.example")],
    )
    .await
    .unwrap();
    assert_eq!(bad.status, 403);
    let good = upgrade(
        &s,
        &["courier.v2.json"],
        &[("Origin", "https://good.example")],
    )
    .await
    .unwrap();
    assert_eq!(good.status, 101);
    let none = upgrade(&s, &["courier.v2.json"], &[]).await.unwrap();
    assert_eq!(none.status, 101, "non-browser clients send no Origin");
    let (status, _, _) = http(
        &s,
        "GET",
        "/sse",
        &[("Origin", "https://evil.example")],
        b"",
    )
    .await
    .unwrap();
    assert_eq!(status, 403);
    let _ = Bytes::new();
}
