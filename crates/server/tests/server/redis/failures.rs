//! The failure model on Redis (docs/deploy.md §4): down for seconds, frozen,
//! restarted empty; and TLS.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::{ErrorCode, RecoveryReason, RecoveryStatus};
use courier_server::EngineKind;
use courier_testkit::RedisProcess;
use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_seconds_fails_publishes_with_a_retry_hint_and_loses_nothing() {
    let mut redis = RedisProcess::start_persistent().unwrap();
    let a = redis_server(&redis, |_| {}).await;
    let b = redis_server(&redis, |_| {}).await;
    let mut sub = Client::json(&b).await.unwrap();
    let epoch = position(&sub.subscribe("s", "feed", None).await.unwrap()).epoch;
    let mut publisher = Client::json(&a).await.unwrap();
    for i in 1..=3 {
        publisher
            .publish(&format!("f{i}"), "feed", json!({"i": i}))
            .await
            .unwrap();
    }

    redis.kill().unwrap();
    // ERR-ENGINE-UNAVAILABLE: INTERNAL with retry_after_ms; the session stays.
    send_publish(&mut publisher, "f4", "feed").await;
    let e = publisher.error().await.unwrap();
    assert_eq!((e.id.as_str(), e.code), ("f4", ErrorCode::Internal as i32));
    assert!(e.retry_after_ms.is_some_and(|ms| ms > 0), "{e:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    redis.restart().unwrap();

    // The publisher retries as a client does (same ids, after the hint);
    // a few more follow. Nothing is lost or doubled for the subscriber on
    // the other node, whose pub/sub connection had to come back too.
    let mut ids = vec!["f4".to_string()];
    ids.extend((5..=8).map(|i| format!("f{i}")));
    for id in &ids {
        let (ack, _) = publish_until_acked(&mut publisher, id, "feed").await;
        assert_eq!(ack.epoch, epoch, "persistent Redis: same epoch");
    }
    for seq in 1..=8 {
        let m = expect_message(&mut sub, &epoch, seq).await;
        assert_eq!(m.id, format!("f{seq}"));
    }
    // Still the same sessions.
    sub.send(Body::Ping(v2::Ping::default())).await.unwrap();
    assert!(matches!(next_data(&mut sub).await, Body::Pong(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_starts_new_epochs_and_resumes_say_so() {
    let mut redis = RedisProcess::start().unwrap();
    let a = redis_server(&redis, |_| {}).await;
    let b = redis_server(&redis, |_| {}).await;
    let mut sub = Client::json(&b).await.unwrap();
    let old = position(&sub.subscribe("s", "room", None).await.unwrap()).epoch;
    let mut publisher = Client::json(&a).await.unwrap();
    publisher.publish("x1", "room", json!({})).await.unwrap();
    expect_message(&mut sub, &old, 1).await;

    redis.kill().unwrap();
    redis.restart().unwrap();

    // SEQ-EPOCH-STABLE: the state is gone, so the next message starts a
    // new epoch at 1 (once the engine reconnected).
    let (ack, _) = publish_until_acked(&mut publisher, "x2", "room").await;
    assert_ne!(ack.epoch, old);
    assert_eq!(ack.seq, 1);
    // The live subscriber sees the new epoch (its client then resumes and
    // learns of the loss, SEQ-CLIENT-GAP-DETECTION).
    expect_message(&mut sub, &ack.epoch, 1).await;
    // A resume from the old position fails with the right reason.
    let mut late = Client::json(&a).await.unwrap();
    let r = late
        .subscribe(
            "s",
            "room",
            Some(v2::StreamPosition {
                epoch: old.clone(),
                seq: 1,
            }),
        )
        .await
        .unwrap();
    let recovery = r.recovery.unwrap();
    assert_eq!(
        (recovery.status, recovery.reason),
        (
            RecoveryStatus::Failed as i32,
            RecoveryReason::EpochChanged as i32
        )
    );
    assert_eq!(
        position(&r),
        v2::StreamPosition {
            epoch: ack.epoch,
            seq: 1
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unresponsive_redis_times_out_into_the_retryable_error() {
    let redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |c| c.engine.command_timeout_ms = 500).await;
    let mut c = Client::json(&s).await.unwrap();
    let epoch = position(&c.subscribe("s", "t", None).await.unwrap()).epoch;
    c.publish("t1", "t", json!({})).await.unwrap();
    expect_message(&mut c, &epoch, 1).await;

    // Frozen, not gone: connections stay open but nothing answers.
    let pid = redis.pid().unwrap();
    courier_testkit::signal(pid, "STOP").unwrap();
    let started = std::time::Instant::now();
    send_publish(&mut c, "t2", "t").await;
    let e = c.error().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(
        (e.code, e.retry_after_ms),
        (ErrorCode::Internal as i32, Some(1000))
    );
    assert!(
        waited < Duration::from_secs(2),
        "bounded by command_timeout_ms: {waited:?}"
    );
    // POST /publish: 503 with Retry-After.
    let body = json!({"channel": "t", "id": "h1", "payload": {}}).to_string();
    let (status, head, _) = http(
        &s,
        "POST",
        "/publish",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
    .unwrap();
    assert_eq!(status, 503, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    courier_testkit::signal(pid, "CONT").unwrap();

    // Whether or not the frozen Redis ran t2 before answering, the retry
    // with the same id is numbered once, and the subscriber sees 2 (and
    // h1 if it was numbered) in order, no gap. Its own messages may come
    // before or after their acks (ORDER-PUBLISH-ACK): h1, numbered after
    // t2, can arrive before t2's ack.
    let (ack, mut seen) = publish_until_acked(&mut c, "t2", "t").await;
    assert_eq!(ack.epoch, epoch);
    while seen.last().is_none_or(|last| *last < ack.seq) {
        seen.push(expect_any_message(&mut c, &epoch).await);
    }
    let last = *seen.last().unwrap();
    assert!(last <= 3, "t2 and at most h1: {seen:?}");
    assert_eq!(seen, (2..=last).collect::<Vec<_>>());
}

async fn expect_any_message(c: &mut Client, epoch: &str) -> u64 {
    match next_data(c).await {
        Body::Message(m) => {
            assert_eq!(m.epoch, epoch);
            m.seq
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribes_to_different_channels_do_not_wait_for_each_other() {
    let redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |c| c.engine.command_timeout_ms = 600).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(Client::json(&s).await.unwrap());
    }
    let pid = redis.pid().unwrap();
    courier_testkit::signal(pid, "STOP").unwrap();
    let started = std::time::Instant::now();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(Body::Subscribe(v2::Subscribe {
            id: "s".into(),
            channel: format!("parallel-{i}"),
            resume: None,
        }))
        .await
        .unwrap();
    }
    for c in &mut clients {
        let e = c.error().await.unwrap();
        assert_eq!(e.retry_after_ms, Some(1000), "{e:?}");
    }
    let waited = started.elapsed();
    courier_testkit::signal(pid, "CONT").unwrap();
    // One timeout each, side by side: serialized they would take 3 x 600 ms.
    assert!(waited < Duration::from_millis(1500), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca() {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let dir = courier_testkit::ScratchDir::new("redis-tls").unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let redis = RedisProcess::start_tls(&cert_file, &key_file).unwrap();
    let url = format!("rediss://127.0.0.1:{}/0", redis.tls_port().unwrap());

    let s = server(|c| {
        c.engine.kind = EngineKind::Redis;
        c.engine.url = url.clone();
        c.engine.tls_ca_file = Some(cert_file.clone());
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    let epoch = position(&c.subscribe("s", "secure", None).await.unwrap()).epoch;
    c.publish("s1", "secure", json!({})).await.unwrap();
    expect_message(&mut c, &epoch, 1).await;
    assert_eq!(
        redis.command("EXISTS {courier:secure}:meta").unwrap(),
        ":1\r\n"
    );

    // Without the CA the public roots do not trust it: requests fail with
    // the retryable error, the session stays.
    let untrusting = server(|c| {
        c.engine.kind = EngineKind::Redis;
        c.engine.url = url.clone();
    })
    .await;
    let mut d = Client::json(&untrusting).await.unwrap();
    d.send(Body::Publish(v2::Publish {
        id: "x".into(),
        channel: "secure".into(),
        payload: payload(json!({})),
    }))
    .await
    .unwrap();
    assert_eq!(d.error().await.unwrap().code, ErrorCode::Internal as i32);
}
