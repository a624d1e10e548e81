//! SEQ-*, RESUME-*, DEDUP-*, ORDER-* and LIMIT-SUBSCRIPTIONS.

use std::collections::BTreeSet;
use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::{ErrorCode, RecoveryReason, RecoveryStatus};
use courier_server::ChannelRule;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn seq_is_gap_free_under_concurrent_publishers() {
    let s = server(|_| {}).await;
    let mut sub = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    sub.subscribe("s", "race", None).await.unwrap();
    const PUBLISHERS: usize = 4;
    const EACH: usize = 40;
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let name = [
            "courier.v2.json",
            "courier.v1.msgpack",
            "courier.v2.proto",
            "courier.v1.json",
        ][p];
        let mut c = Client::open(&s, name, "", &[]).await.unwrap();
        tasks.push(tokio::spawn(async move {
            // Pipeline every publish, then collect the acks.
            for i in 0..EACH {
                c.send(Body::Publish(v2::Publish {
                    id: format!("{p}-{i}"),
                    channel: "race".into(),
                    payload: payload(json!(i)),
                }))
                .await
                .unwrap();
            }
            let mut seqs = Vec::new();
            while seqs.len() < EACH {
                if let Body::PublishAck(a) = c.recv_body().await.unwrap() {
                    seqs.push(a.seq);
                }
            }
            // ORDER-PUBLISH-FIFO: one session's publishes are numbered in order.
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
            seqs
        }));
    }
    let mut acked = BTreeSet::new();
    for t in tasks {
        for seq in t.await.unwrap() {
            assert!(acked.insert(seq), "seq {seq} assigned twice");
        }
    }
    let total = (PUBLISHERS * EACH) as u64;
    assert_eq!(acked, (1..=total).collect());
    for want in 1..=total {
        assert_eq!(sub.message().await.unwrap().seq, want, "SEQ-MONOTONIC");
    }
}

#[tokio::test]
async fn channels_are_numbered_independently() {
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    assert_eq!(c.publish("a1", "a", json!(1)).await.unwrap().seq, 1);
    assert_eq!(c.publish("a2", "a", json!(1)).await.unwrap().seq, 2);
    let b = c.publish("b1", "b", json!(1)).await.unwrap();
    assert_eq!(b.seq, 1);
    let a = c.publish("a3", "a", json!(1)).await.unwrap();
    assert!(
        a.epoch
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-'),
        "SEQ-EPOCH-FORMAT"
    );
    assert!(!a.epoch.is_empty() && a.epoch.len() <= 64);
}

#[tokio::test]
async fn resume_replays_exactly_the_missing_range_in_every_encoding() {
    let s = server(|_| {}).await;
    let mut p = Client::json(&s).await.unwrap();
    let mut epoch = String::new();
    for i in 1..=5 {
        epoch = p
            .publish(&format!("m{i}"), "hist", json!({"i": i}))
            .await
            .unwrap()
            .epoch;
    }
    for name in all_subprotocols() {
        let mut c = Client::open(&s, name, "", &[]).await.unwrap();
        let ack = c
            .subscribe(
                "s",
                "hist",
                Some(v2::StreamPosition {
                    epoch: epoch.clone(),
                    seq: 2,
                }),
            )
            .await
            .unwrap();
        assert_eq!(ack.position.unwrap().seq, 5);
        let r = ack.recovery.unwrap();
        assert_eq!(
            (r.status, r.replayed),
            (RecoveryStatus::Recovered as i32, 3),
            "{name}"
        );
        for seq in 3..=5 {
            let m = c.message().await.unwrap();
            assert_eq!((m.seq, m.id.clone()), (seq, format!("m{seq}")));
        }
        // Resuming from the current position recovers nothing, successfully.
        let ack = c
            .subscribe(
                "s2",
                "hist",
                Some(v2::StreamPosition {
                    epoch: epoch.clone(),
                    seq: 5,
                }),
            )
            .await
            .unwrap();
        let r = ack.recovery.unwrap();
        assert_eq!(
            (r.status, r.replayed),
            (RecoveryStatus::Recovered as i32, 0)
        );
    }
    // After the replay, new messages continue the sequence.
    let mut c = Client::json(&s).await.unwrap();
    c.subscribe(
        "s",
        "hist",
        Some(v2::StreamPosition {
            epoch: epoch.clone(),
            seq: 4,
        }),
    )
    .await
    .unwrap();
    p.publish("m6", "hist", json!(6)).await.unwrap();
    assert_eq!(c.message().await.unwrap().seq, 5);
    assert_eq!(c.message().await.unwrap().seq, 6);
}

async fn failed(c: &mut Client, channel: &str, epoch: &str, seq: u64) -> (i32, i32) {
    let ack = c
        .subscribe(
            "f",
            channel,
            Some(v2::StreamPosition {
                epoch: epoch.into(),
                seq,
            }),
        )
        .await
        .unwrap();
    let r = ack.recovery.unwrap();
    assert_eq!(r.replayed, 0);
    (r.status, r.reason)
}

#[tokio::test]
async fn failed_recovery_reasons() {
    let failed_with = |r: RecoveryReason| (RecoveryStatus::Failed as i32, r as i32);
    let s = server(|c| {
        c.history_size = 2;
        c.channels = vec![
            ChannelRule {
                pattern: "short.*".into(),
                history_ttl_ms: Some(100),
                ..Default::default()
            },
            ChannelRule {
                pattern: "none.*".into(),
                history_size: Some(0),
                ..Default::default()
            },
        ];
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    let mut epoch = String::new();
    for i in 1..=5 {
        epoch = c
            .publish(&format!("x{i}"), "sized", json!(i))
            .await
            .unwrap()
            .epoch;
    }
    // History keeps 2 messages (4 and 5): resuming from 3 works, from 2 does not.
    let ack = c
        .subscribe(
            "ok",
            "sized",
            Some(v2::StreamPosition {
                epoch: epoch.clone(),
                seq: 3,
            }),
        )
        .await
        .unwrap();
    assert_eq!(ack.recovery.unwrap().replayed, 2);
    c.message().await.unwrap();
    c.message().await.unwrap();
    assert_eq!(
        failed(&mut c, "sized", &epoch, 2).await,
        failed_with(RecoveryReason::HistoryExpired)
    );
    assert_eq!(
        failed(&mut c, "sized", &epoch, 9).await,
        failed_with(RecoveryReason::PositionAhead)
    );
    assert_eq!(
        failed(&mut c, "sized", "other-epoch", 1).await,
        failed_with(RecoveryReason::EpochChanged)
    );
    assert_eq!(
        failed(&mut c, "sized", "", 0).await,
        failed_with(RecoveryReason::EpochChanged)
    );

    let e = c.publish("t1", "short.a", json!(1)).await.unwrap().epoch;
    c.publish("t2", "short.a", json!(2)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        failed(&mut c, "short.a", &e, 1).await,
        failed_with(RecoveryReason::HistoryExpired)
    );

    let e = c.publish("n1", "none.a", json!(1)).await.unwrap().epoch;
    c.publish("n2", "none.a", json!(2)).await.unwrap();
    assert_eq!(
        failed(&mut c, "none.a", &e, 1).await,
        failed_with(RecoveryReason::NoHistory)
    );
}

#[tokio::test]
async fn a_restarted_server_reports_epoch_changed() {
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let ack = c.publish("p", "restart", json!(1)).await.unwrap();
    drop(c);
    s.shutdown().await;
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let sub = c
        .subscribe(
            "s",
            "restart",
            Some(v2::StreamPosition {
                epoch: ack.epoch.clone(),
                seq: 1,
            }),
        )
        .await
        .unwrap();
    let r = sub.recovery.unwrap();
    assert_eq!(
        (r.status, r.reason),
        (
            RecoveryStatus::Failed as i32,
            RecoveryReason::EpochChanged as i32
        )
    );
    assert_ne!(sub.position.unwrap().epoch, ack.epoch);
}

#[tokio::test]
async fn duplicates_are_acked_with_the_original_seq_and_not_redelivered() {
    let s = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let alice = hs256(json!({"sub": "alice"}));
    let bob = hs256(json!({"sub": "bob"}));
    let mut sub = Client::open(&s, "courier.v2.json", &alice, &[])
        .await
        .unwrap();
    sub.subscribe("s", "dd", None).await.unwrap();
    let mut a = Client::open(&s, "courier.v2.msgpack", &alice, &[])
        .await
        .unwrap();
    let first = a.publish("same-id", "dd", json!("one")).await.unwrap();
    let again = a
        .publish("same-id", "dd", json!("different payload"))
        .await
        .unwrap();
    assert_eq!(
        (again.seq, again.epoch.clone(), again.duplicate),
        (first.seq, first.epoch.clone(), true)
    );
    // DEDUP-ACROSS-RECONNECT: a new connection of the same user.
    drop(a);
    let mut a2 = Client::open(&s, "courier.v1.proto", &alice, &[])
        .await
        .unwrap();
    let retried = a2.publish("same-id", "dd", json!("one")).await.unwrap();
    assert_eq!((retried.seq, retried.duplicate), (first.seq, true));
    // Another user's id does not collide.
    let mut b = Client::open(&s, "courier.v2.json", &bob, &[])
        .await
        .unwrap();
    let other = b.publish("same-id", "dd", json!("bob")).await.unwrap();
    assert_eq!((other.seq, other.duplicate), (2, false));
    assert_eq!(sub.message().await.unwrap().seq, 1);
    let m = sub.message().await.unwrap();
    assert_eq!(
        (
            m.seq,
            courier_protocol::wire::payload::to_json(&m.payload).unwrap()
        ),
        (2, json!("bob"))
    );
    // An empty id is refused and numbers nothing.
    b.send(Body::Publish(v2::Publish {
        id: String::new(),
        channel: "dd".into(),
        payload: payload(json!(0)),
    }))
    .await
    .unwrap();
    assert_eq!(b.error().await.unwrap().code, ErrorCode::BadRequest as i32);
    assert_eq!(b.publish("next", "dd", json!(3)).await.unwrap().seq, 3);
}

#[tokio::test]
async fn subscribe_is_idempotent_and_unsubscribe_is_final() {
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let mut p = Client::json(&s).await.unwrap();
    c.subscribe("s1", "u", None).await.unwrap();
    c.subscribe("s2", "u", None).await.unwrap();
    p.publish("1", "u", json!(1)).await.unwrap();
    assert_eq!(c.message().await.unwrap().seq, 1);
    c.send(Body::Unsubscribe(v2::Unsubscribe {
        id: "u1".into(),
        channel: "u".into(),
    }))
    .await
    .unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::UnsubscribeAck(a) if a.id == "u1"));
    p.publish("2", "u", json!(2)).await.unwrap();
    // Not subscribed: an unsubscribe is still acked, and no message arrives.
    c.send(Body::Unsubscribe(v2::Unsubscribe {
        id: "u2".into(),
        channel: "never".into(),
    }))
    .await
    .unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::UnsubscribeAck(a) if a.id == "u2"));
    c.send(Body::Ping(v2::Ping { ts: 3 })).await.unwrap();
    assert!(
        matches!(c.recv_body().await.unwrap(), Body::Pong(_)),
        "no message after unsubscribe_ack"
    );
}

#[tokio::test]
async fn subscription_limit_and_channel_names() {
    let s = server(|c| c.max_subscriptions = 2).await;
    let mut c = Client::json(&s).await.unwrap();
    c.subscribe("1", "a", None).await.unwrap();
    c.subscribe("2", "b", None).await.unwrap();
    c.subscribe("3", "a", None).await.unwrap();
    c.send(Body::Subscribe(v2::Subscribe {
        id: "4".into(),
        channel: "c".into(),
        resume: None,
    }))
    .await
    .unwrap();
    let e = c.error().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.code),
        ("4", ErrorCode::TooManySubscriptions as i32)
    );
    for bad in ["", "bad\u{1}name", &"x".repeat(256)] {
        c.send(Body::Subscribe(v2::Subscribe {
            id: "n".into(),
            channel: bad.into(),
            resume: None,
        }))
        .await
        .unwrap();
        assert_eq!(c.error().await.unwrap().code, ErrorCode::BadRequest as i32);
    }
}
