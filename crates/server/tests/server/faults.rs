//! Every `Fault` is reachable and breaks the behaviour it names (the
//! conformance suite relies on each one to prove it notices).

use std::time::Duration;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2};
use courier_server::Fault;
use serde_json::json;

use crate::common::*;

async fn faulty(
    fault: Fault,
    f: impl FnOnce(&mut courier_server::ServerConfig),
) -> courier_server::RunningServer {
    server(|c| {
        c.fault = Some(fault);
        f(c)
    })
    .await
}

#[test]
fn names_round_trip_and_parse_from_config() {
    for f in Fault::ALL {
        assert_eq!(f.to_string().parse::<Fault>().unwrap(), f);
        let c = courier_server::ServerConfig::from_toml_str(&format!("fault = \"{f}\"")).unwrap();
        assert_eq!(c.fault, Some(f));
    }
    assert!("skip_seq".parse::<Fault>().is_err());
    let c = courier_server::ServerConfig::load(
        None,
        [("COURIER_FAULT".to_string(), "never-ping".to_string())],
    )
    .unwrap();
    assert_eq!(c.fault, Some(Fault::NeverPing));
}

#[tokio::test]
async fn seq_faults() {
    let s = faulty(Fault::SkipSeq, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let seqs: Vec<u64> = [
        c.publish("1", "a", json!(1)).await.unwrap().seq,
        c.publish("2", "a", json!(1)).await.unwrap().seq,
        c.publish("3", "a", json!(1)).await.unwrap().seq,
    ]
    .into();
    assert_eq!(seqs, vec![1, 2, 4]);
    let s = faulty(Fault::SeqFromZero, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    assert_eq!(c.publish("1", "a", json!(1)).await.unwrap().seq, 0);
}

#[tokio::test]
async fn redeliver_duplicate() {
    let s = faulty(Fault::RedeliverDuplicate, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    c.subscribe("s", "d", None).await.unwrap();
    c.publish("same", "d", json!(1)).await.unwrap();
    let again = c.publish("same", "d", json!(1)).await.unwrap();
    assert!(!again.duplicate);
    assert_eq!(c.message().await.unwrap().seq, 1);
    assert_eq!(c.message().await.unwrap().seq, 2);
}

#[tokio::test]
async fn ignore_version_offer() {
    let s = faulty(Fault::IgnoreVersionOffer, |_| {}).await;
    let up = upgrade(&s, &["courier.v1.json", "courier.v2.json"], &[])
        .await
        .unwrap();
    assert_eq!(
        up.header("sec-websocket-protocol").as_deref(),
        Some("courier.v1.json")
    );
}

#[tokio::test]
async fn close_faults() {
    let s = faulty(Fault::WrongOversizeCode, |c| c.max_message_bytes = 512).await;
    let mut c = Client::json(&s).await.unwrap();
    c.publish("big", "c", json!("x".repeat(1000))).await.err();
    assert_eq!(c.closed().await.unwrap().code, Some(close::BAD_FRAME));
    let s = faulty(Fault::NoCloseReason, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    c.send(Body::Hello(v2::Hello::default())).await.unwrap();
    let closed = c.closed().await.unwrap();
    assert_eq!(
        (closed.code, closed.reason.as_str()),
        (Some(close::PROTOCOL_VIOLATION), "")
    );
}

#[tokio::test]
async fn never_ping() {
    let s = faulty(Fault::NeverPing, |c| {
        c.heartbeat_interval_ms = 50;
        c.heartbeat_grace_ms = 1000;
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    let got = tokio::time::timeout(Duration::from_millis(300), c.recv_any()).await;
    assert!(got.is_err(), "no ping expected, got {got:?}");
}

#[tokio::test]
async fn resume_faults() {
    for (fault, check) in [
        (Fault::ResumeOutOfOrder, "reversed"),
        (Fault::DataBeforeSubscribeAck, "message first"),
    ] {
        let s = faulty(fault, |_| {}).await;
        let mut c = Client::json(&s).await.unwrap();
        let epoch = c.publish("1", "r", json!(1)).await.unwrap().epoch;
        c.publish("2", "r", json!(2)).await.unwrap();
        c.publish("3", "r", json!(3)).await.unwrap();
        c.send(Body::Subscribe(v2::Subscribe {
            id: "s".into(),
            channel: "r".into(),
            resume: Some(v2::StreamPosition { epoch, seq: 1 }),
        }))
        .await
        .unwrap();
        let first = c.recv_body().await.unwrap();
        match fault {
            Fault::ResumeOutOfOrder => {
                assert!(matches!(first, Body::SubscribeAck(_)));
                assert_eq!(c.message().await.unwrap().seq, 3, "{check}");
            }
            _ => assert!(matches!(first, Body::Message(_)), "{check}"),
        }
    }
}

#[tokio::test]
async fn accept_expired_tokens() {
    let s = faulty(Fault::AcceptExpiredTokens, |c| {
        c.auth.hs256_secret = Some(SECRET.into())
    })
    .await;
    let token = hs256(json!({"sub": "old", "exp": now_s() - 100}));
    let c = Client::open(&s, "courier.v2.json", &token, &[])
        .await
        .unwrap();
    assert_eq!(c.welcome.user, "old");
}

#[tokio::test]
async fn unbounded_queue() {
    let s = faulty(Fault::UnboundedQueue, |c| {
        c.send_queue_frames = 4;
        c.max_messages_per_second = 100_000;
        c.max_burst = 100_000;
    })
    .await;
    let mut slow = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    slow.subscribe("s", "f", None).await.unwrap();
    let mut p = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    crate::limits::flood(&mut p, "f", 300, 60_000).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        crate::limits::metric(&s, "courier_queue_depth").await > 4,
        "the queue grew past send_queue_frames"
    );
    assert_eq!(
        crate::limits::metric(&s, "courier_disconnects_total{code=\"4100\"}").await,
        0
    );
}

#[tokio::test]
async fn short_dedupe_record() {
    let s = faulty(Fault::ShortDedupeRecord, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    assert_eq!(
        c.welcome.dedupe_max_per_channel, 100_000,
        "the maximum advertised stays"
    );
    c.publish("first", "rec", json!(0)).await.unwrap();
    for i in 0..8 {
        c.publish(&format!("n{i}"), "rec", json!(i)).await.unwrap();
    }
    let again = c.publish("first", "rec", json!(0)).await.unwrap();
    assert!(!again.duplicate, "the id was remembered: {again:?}");
}

#[tokio::test]
async fn short_dedupe_window() {
    let s = faulty(Fault::ShortDedupeWindow, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    assert_eq!(
        c.welcome.dedupe_window_ms, 120_000,
        "the window advertised stays"
    );
    c.publish("same", "d", json!(1)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = c.publish("same", "d", json!(1)).await.unwrap();
    assert!(!again.duplicate, "the id was remembered: {again:?}");
}
