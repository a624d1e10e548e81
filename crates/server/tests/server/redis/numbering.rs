//! Numbering, dedupe and resume on Redis, across two servers and a restart.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::{RecoveryReason, RecoveryStatus};
use courier_testkit::RedisProcess;
use serde_json::json;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbering_and_dedupe_span_two_servers() {
    let redis = RedisProcess::start().unwrap();
    let a = redis_server(&redis, |_| {}).await;
    let b = redis_server(&redis, |_| {}).await;
    let mut sub_a = Client::json(&a).await.unwrap();
    let mut sub_b = Client::json(&b).await.unwrap();
    let ack_a = sub_a.subscribe("s", "chat", None).await.unwrap();
    let ack_b = sub_b.subscribe("s", "chat", None).await.unwrap();
    // SEQ-ACK-POSITION: one channel state, whichever node answers.
    assert_eq!(position(&ack_a), position(&ack_b));
    let epoch = position(&ack_a).epoch;
    assert_eq!(position(&ack_a).seq, 0);

    let mut pub_a = Client::json(&a).await.unwrap();
    let mut pub_b = Client::json(&b).await.unwrap();
    // SEQ-GAPFREE across nodes: publishers on both get consecutive numbers.
    let mut seqs = Vec::new();
    for i in 0..10 {
        let p = if i % 2 == 0 { &mut pub_a } else { &mut pub_b };
        let ack = p
            .publish(&format!("p{i}"), "chat", json!({"i": i}))
            .await
            .unwrap();
        assert_eq!(ack.epoch, epoch);
        assert!(!ack.duplicate);
        seqs.push(ack.seq);
    }
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());

    // DEDUP-ACROSS-RECONNECT spans nodes: p0 was numbered through A; the
    // same publisher identity (anonymous) retries it through B.
    let dup = pub_b.publish("p0", "chat", json!({"i": 0})).await.unwrap();
    assert!(dup.duplicate);
    assert_eq!((dup.epoch.as_str(), dup.seq), (epoch.as_str(), 1));

    // Every subscriber, on either node, gets 1..=10 once and in order,
    // then the next new message (the duplicate was not streamed).
    pub_a.publish("last", "chat", json!({})).await.unwrap();
    for sub in [&mut sub_a, &mut sub_b] {
        for seq in 1..=11 {
            let m = expect_message(sub, &epoch, seq).await;
            if seq <= 10 {
                assert_eq!(m.id, format!("p{}", seq - 1));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_survives_a_server_restart() {
    let redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let ack = c.subscribe("s", "news", None).await.unwrap();
    let epoch = position(&ack).epoch;
    for i in 1..=3 {
        c.publish(&format!("n{i}"), "news", json!({"i": i}))
            .await
            .unwrap();
    }
    drop(c);
    s.shutdown().await;

    // The new user's complaint: a restart no longer changes the epoch.
    let s = redis_server(&redis, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    let ack = c
        .subscribe(
            "s",
            "news",
            Some(v2::StreamPosition {
                epoch: epoch.clone(),
                seq: 1,
            }),
        )
        .await
        .unwrap();
    let recovery = ack.recovery.unwrap();
    assert_eq!(recovery.status, RecoveryStatus::Recovered as i32, "{ack:?}");
    assert_eq!(recovery.replayed, 2);
    assert_eq!(
        position(&ack),
        v2::StreamPosition {
            epoch: epoch.clone(),
            seq: 3
        }
    );
    expect_message(&mut c, &epoch, 2).await;
    expect_message(&mut c, &epoch, 3).await;
    let next = c.publish("n4", "news", json!({})).await.unwrap();
    assert_eq!((next.epoch.as_str(), next.seq), (epoch.as_str(), 4));
    expect_message(&mut c, &epoch, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_reasons_match_the_memory_engine() {
    let redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |c| {
        c.history_size = 3;
        c.history_ttl_ms = 1500;
        c.channels.push(courier_server::ChannelRule {
            pattern: "bare.*".into(),
            history_size: Some(0),
            ..Default::default()
        });
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    let epoch = position(&c.subscribe("s", "r", None).await.unwrap()).epoch;
    for i in 1..=5 {
        c.publish(&format!("r{i}"), "r", json!({})).await.unwrap();
    }
    let mut d = Client::json(&s).await.unwrap();
    let resume = |epoch: &str, seq| {
        Some(v2::StreamPosition {
            epoch: epoch.into(),
            seq,
        })
    };
    let reason = |ack: v2::SubscribeAck| {
        let r = ack.recovery.unwrap();
        (r.status, r.reason)
    };
    let failed = |r: RecoveryReason| (RecoveryStatus::Failed as i32, r as i32);
    // RESUME-REASON, in the spec's order.
    let ack = d.subscribe("1", "r", resume("other", 9)).await.unwrap();
    assert_eq!(reason(ack), failed(RecoveryReason::EpochChanged));
    let ack = d.subscribe("2", "r", resume(&epoch, 6)).await.unwrap();
    assert_eq!(reason(ack), failed(RecoveryReason::PositionAhead));
    // Size: 3 kept (3, 4, 5); a resume from 1 misses 2.
    let ack = d.subscribe("3", "r", resume(&epoch, 1)).await.unwrap();
    assert_eq!(reason(ack), failed(RecoveryReason::HistoryExpired));
    let ack = d.subscribe("4", "r", resume(&epoch, 2)).await.unwrap();
    assert_eq!(ack.recovery.unwrap().replayed, 3);
    for seq in 3..=5 {
        expect_message(&mut d, &epoch, seq).await;
    }
    // TTL: the entries are still in the stream but too old.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let ack = d.subscribe("5", "r", resume(&epoch, 4)).await.unwrap();
    assert_eq!(reason(ack), failed(RecoveryReason::HistoryExpired));
    // From the current position: recovered, nothing to replay.
    let ack = d.subscribe("6", "r", resume(&epoch, 5)).await.unwrap();
    assert_eq!(reason(ack), (RecoveryStatus::Recovered as i32, 0));
    // A channel without history.
    let mut e = Client::json(&s).await.unwrap();
    let bare = position(&e.subscribe("b", "bare.x", None).await.unwrap()).epoch;
    e.publish("b1", "bare.x", json!({})).await.unwrap();
    e.publish("b2", "bare.x", json!({})).await.unwrap();
    let ack = d.subscribe("7", "bare.x", resume(&bare, 1)).await.unwrap();
    assert_eq!(reason(ack), failed(RecoveryReason::NoHistory));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dedupe_lasts_the_window_and_is_per_user() {
    let redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |c| {
        c.dedupe_window_ms = 700;
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.allow_anonymous = Some(true);
    })
    .await;
    let mut anon = Client::json(&s).await.unwrap();
    let first = anon.publish("same", "d", json!({})).await.unwrap();
    assert!(!first.duplicate);
    let again = anon.publish("same", "d", json!({})).await.unwrap();
    assert!(again.duplicate && again.seq == first.seq);
    // DEDUP: keyed by (channel, user, id): another user's id is its own.
    let token = hs256(json!({"sub": "bob", "exp": now_s() + 60}));
    let mut bob = Client::open(&s, "courier.v2.json", &token, &[])
        .await
        .unwrap();
    let other = bob.publish("same", "d", json!({})).await.unwrap();
    assert_eq!((other.duplicate, other.seq), (false, first.seq + 1));
    let elsewhere = anon.publish("same", "d2", json!({})).await.unwrap();
    assert_eq!((elsewhere.duplicate, elsewhere.seq), (false, 1));
    // DEDUP-WINDOW: after the window the id is new again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let later = anon.publish("same", "d", json!({})).await.unwrap();
    assert_eq!((later.duplicate, later.seq), (false, first.seq + 2));
}
