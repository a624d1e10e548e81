//! Presence and ephemerals across servers; a dead node's members expire.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::PresenceAction;
use courier_server::ServerConfig;
use courier_testkit::RedisProcess;
use serde_json::json;

use super::*;

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
    let dead = RedisEngine::new(
        &config.engine,
        HistoryPolicy {
            history_size: 10,
            history_ttl: Duration::from_secs(10),
            dedupe_window: Duration::from_secs(10),
            dedupe_max_per_channel: 100_000,
            overrides: Vec::new(),
        },
    )
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
