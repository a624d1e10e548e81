//! The Redis engine against a real `redis-server` (courier-testkit starts
//! one per test on a free loopback port): numbering, dedupe, resume and
//! presence across two servers sharing it, and its failure model (Redis
//! down for a few seconds, Redis restarted empty). docs/deploy.md.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::{ErrorCode, PresenceAction, RecoveryReason, RecoveryStatus};
use courier_server::{EngineKind, RunningServer, ServerConfig};
use courier_testkit::RedisProcess;
use serde_json::json;

use crate::common::*;

/// `c` on the Redis engine at `redis` (default timeouts: a loaded CI
/// machine must not turn a slow answer into a failure).
fn on_redis(c: &mut ServerConfig, redis: &RedisProcess) {
    c.engine.kind = EngineKind::Redis;
    c.engine.url = redis.url();
}

async fn redis_server(redis: &RedisProcess, f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    server(|c| {
        on_redis(c, redis);
        f(c)
    })
    .await
}

fn position(ack: &v2::SubscribeAck) -> v2::StreamPosition {
    ack.position.clone().expect("ack has a position")
}

/// The next envelope that is not a presence event.
async fn next_data(c: &mut Client) -> Body {
    loop {
        match c.recv_body().await.unwrap() {
            Body::PresenceEvent(_) => continue,
            other => return other,
        }
    }
}

async fn expect_message(c: &mut Client, epoch: &str, seq: u64) -> v2::Message {
    match next_data(c).await {
        Body::Message(m) => {
            assert_eq!((m.epoch.as_str(), m.seq), (epoch, seq), "{m:?}");
            m
        }
        other => panic!("expected message {seq}, got {other:?}"),
    }
}

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
    publisher
        .send(Body::Publish(v2::Publish {
            id: "f4".into(),
            channel: "feed".into(),
            payload: payload(json!({"i": 4})),
        }))
        .await
        .unwrap();
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
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            publisher
                .send(Body::Publish(v2::Publish {
                    id: id.clone(),
                    channel: "feed".into(),
                    payload: payload(json!({"id": id})),
                }))
                .await
                .unwrap();
            match publisher.recv_body().await.unwrap() {
                Body::PublishAck(ack) => {
                    assert_eq!(ack.epoch, epoch, "persistent Redis: same epoch");
                    break;
                }
                Body::Error(e) if e.retry_after_ms.is_some() => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "Redis never came back"
                    );
                    tokio::time::sleep(Duration::from_millis(e.retry_after_ms.unwrap())).await;
                }
                other => panic!("{other:?}"),
            }
        }
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
    let ack = loop {
        publisher
            .send(Body::Publish(v2::Publish {
                id: "x2".into(),
                channel: "room".into(),
                payload: payload(json!({})),
            }))
            .await
            .unwrap();
        match publisher.recv_body().await.unwrap() {
            Body::PublishAck(ack) => break ack,
            Body::Error(e) if e.retry_after_ms.is_some() => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            other => panic!("{other:?}"),
        }
    };
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
async fn presence_and_ephemerals_cross_servers() {
    let redis = RedisProcess::start().unwrap();
    let a = redis_server(&redis, |c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let b = redis_server(&redis, |c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let alice = hs256(json!({"sub": "alice", "info": {"name": "Alice"}}));
    let bob = hs256(json!({"sub": "bob"}));
    let features = ["presence", "ephemeral"];
    let mut ca = Client::open(&a, "courier.v2.json", &alice, &features)
        .await
        .unwrap();
    ca.subscribe("s", "room", None).await.unwrap();
    let mut cb = Client::open(&b, "courier.v2.msgpack", &bob, &features)
        .await
        .unwrap();
    cb.subscribe("s", "room", None).await.unwrap();
    // PRESENCE-JOIN-LEAVE: alice (on A) sees bob (on B) join.
    match ca.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => {
            assert_eq!(e.action, PresenceAction::Join as i32);
            assert_eq!(e.member.unwrap().user, "bob");
        }
        other => panic!("{other:?}"),
    }
    // PRESENCE-QUERY on B lists both nodes' members in join order.
    cb.send(Body::PresenceQuery(v2::PresenceQuery {
        id: "q".into(),
        channel: "room".into(),
    }))
    .await
    .unwrap();
    match cb.recv_body().await.unwrap() {
        Body::Presence(p) => {
            let users: Vec<_> = p.members.iter().map(|m| m.user.as_str()).collect();
            assert_eq!(users, ["alice", "bob"]);
            assert_eq!(
                courier_protocol::wire::payload::to_json(&p.members[0].info).unwrap(),
                json!({"name": "Alice"})
            );
        }
        other => panic!("{other:?}"),
    }
    // EPHEMERAL-NO-SEQ across nodes.
    cb.send(Body::Ephemeral(v2::Ephemeral {
        channel: "room".into(),
        payload: payload(json!({"typing": true})),
        publisher: String::new(),
    }))
    .await
    .unwrap();
    match ca.recv_body().await.unwrap() {
        Body::Ephemeral(e) => assert_eq!(e.publisher, cb.welcome.session_id),
        other => panic!("{other:?}"),
    }
    // A leave on B reaches A.
    drop(cb);
    match ca.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => {
            assert_eq!(e.action, PresenceAction::Leave as i32);
            assert_eq!(e.member.unwrap().user, "bob");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_members_expire() {
    use courier_server::engine::{Engine, HistoryPolicy, Member, RedisEngine};
    let redis = RedisProcess::start().unwrap();
    let ttl = 900;
    let a = redis_server(&redis, |c| c.engine.presence_ttl_ms = ttl).await;
    let mut ca = Client::open(&a, "courier.v2.json", "", &["presence"])
        .await
        .unwrap();
    ca.subscribe("s", "room", None).await.unwrap();

    // Another node joins a member, then dies without leaving: its engine
    // (and with it its heartbeat) is gone, the entry stays in Redis.
    let mut config = ServerConfig::default();
    on_redis(&mut config, &redis);
    config.engine.presence_ttl_ms = ttl;
    let dead = RedisEngine::connect(
        &config.engine,
        HistoryPolicy {
            history_size: 10,
            history_ttl: Duration::from_secs(10),
            dedupe_window: Duration::from_secs(10),
            overrides: Vec::new(),
        },
    )
    .await
    .unwrap();
    let ghost = Member {
        session_id: "ghost-session".into(),
        user: "ghost".into(),
        info: bytes::Bytes::new(),
    };
    dead.join("room", ghost).await.unwrap();
    match ca.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => {
            assert_eq!(e.action, PresenceAction::Join as i32);
            assert_eq!(e.member.unwrap().session_id, "ghost-session");
        }
        other => panic!("{other:?}"),
    }
    drop(dead);

    // Node A's heartbeat drops the expired entry and streams the leave;
    // its own member, refreshed, stays.
    let started = std::time::Instant::now();
    match ca.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => {
            assert_eq!(e.action, PresenceAction::Leave as i32);
            assert_eq!(e.member.unwrap().session_id, "ghost-session");
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < Duration::from_millis(3 * ttl));
    tokio::time::sleep(Duration::from_millis(2 * ttl)).await;
    ca.send(Body::PresenceQuery(v2::PresenceQuery {
        id: "q".into(),
        channel: "room".into(),
    }))
    .await
    .unwrap();
    match ca.recv_body().await.unwrap() {
        Body::Presence(p) => {
            let sessions: Vec<_> = p.members.iter().map(|m| m.session_id.clone()).collect();
            assert_eq!(sessions, [ca.welcome.session_id.clone()]);
        }
        other => panic!("{other:?}"),
    }
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
    c.send(Body::Publish(v2::Publish {
        id: "t2".into(),
        channel: "t".into(),
        payload: payload(json!({})),
    }))
    .await
    .unwrap();
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
    // h1 if it was numbered) in order, no gap.
    let mut seen = Vec::new();
    let ack = 'retry: loop {
        c.send(Body::Publish(v2::Publish {
            id: "t2".into(),
            channel: "t".into(),
            payload: payload(json!({})),
        }))
        .await
        .unwrap();
        loop {
            match next_data(&mut c).await {
                Body::PublishAck(ack) => break 'retry ack,
                Body::Message(m) => {
                    assert_eq!(m.epoch, epoch);
                    seen.push(m.seq);
                }
                Body::Error(e) if e.retry_after_ms.is_some() => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue 'retry;
                }
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(ack.epoch, epoch);
    while seen.last().is_none_or(|last| *last < ack.seq) {
        seen.push(expect_any_message(&mut c, &epoch).await);
    }
    assert_eq!(seen, (2..=ack.seq).collect::<Vec<_>>());
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

/// Subscribers of the channel's pub/sub topic in Redis (one per node that
/// streams it).
fn topic_subscribers(redis: &RedisProcess, channel: &str) -> u64 {
    let reply = redis
        .command(&format!("PUBSUB NUMSUB {{courier:{channel}}}"))
        .unwrap();
    // *2 $len topic :count
    let count = reply.rsplit(':').next().unwrap_or_default();
    count.trim().parse().unwrap_or_else(|_| panic!("{reply:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_listens_only_to_channels_with_local_subscribers() {
    let mut redis = RedisProcess::start_persistent().unwrap();
    let s = redis_server(&redis, |_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    c.subscribe("s", "x", None).await.unwrap();
    assert_eq!(topic_subscribers(&redis, "x"), 1);
    c.send(Body::Unsubscribe(v2::Unsubscribe {
        id: "u".into(),
        channel: "x".into(),
    }))
    .await
    .unwrap();
    assert!(matches!(next_data(&mut c).await, Body::UnsubscribeAck(_)));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while topic_subscribers(&redis, "x") != 0 {
        assert!(std::time::Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // An unsubscribe that fails while Redis is away is undone by the
    // reconnect's resubscription; the first message on the stray topic
    // makes the node drop it.
    c.subscribe("s2", "y", None).await.unwrap();
    redis.kill().unwrap();
    c.send(Body::Unsubscribe(v2::Unsubscribe {
        id: "u2".into(),
        channel: "y".into(),
    }))
    .await
    .unwrap();
    assert!(matches!(next_data(&mut c).await, Body::UnsubscribeAck(_)));
    tokio::time::sleep(Duration::from_millis(600)).await;
    redis.restart().unwrap();
    // The pub/sub connection comes back (keepalive within a second) and
    // resubscribes what it still counts as subscribed: `y` too.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while topic_subscribers(&redis, "y") == 0 {
        assert!(std::time::Instant::now() < deadline, "never resubscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut p = Client::json(&s).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut i = 0;
    loop {
        i += 1;
        let _ = p.publish(&format!("y{i}"), "y", json!({})).await;
        if topic_subscribers(&redis, "y") == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the stray topic stays subscribed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_come_back_after_redis_restarted_empty() {
    let mut redis = RedisProcess::start().unwrap();
    let s = redis_server(&redis, |c| c.engine.presence_ttl_ms = 900).await;
    let mut c = Client::open(&s, "courier.v2.json", "", &["presence"])
        .await
        .unwrap();
    c.subscribe("s", "lobby", None).await.unwrap();
    redis.kill().unwrap();
    redis.restart().unwrap();
    // The node's heartbeat (every third of presence_ttl_ms) adds its
    // members back; a query then lists them again.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let mut n = 0;
    loop {
        n += 1;
        c.send(Body::PresenceQuery(v2::PresenceQuery {
            id: format!("q{n}"),
            channel: "lobby".into(),
        }))
        .await
        .unwrap();
        match next_data(&mut c).await {
            Body::Presence(p) if p.members.len() == 1 => {
                assert_eq!(p.members[0].session_id, c.welcome.session_id);
                break;
            }
            Body::Presence(_) | Body::Error(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the member never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
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
