//! Each node listens only to the channels it has local subscribers on.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_testkit::RedisProcess;
use serde_json::json;

use super::*;

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
