//! The Redis engine against a real `redis-server` (courier-testkit starts
//! one per test on a free loopback port): numbering, dedupe, resume and
//! presence across two servers sharing it, its failure model (Redis down
//! for a few seconds, frozen, restarted empty) and TLS. docs/deploy.md.

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use courier_server::{EngineKind, RunningServer, ServerConfig};
use courier_testkit::RedisProcess;

use crate::common::*;

mod failures;
mod listener;
mod numbering;
mod presence;

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

/// Sends a `publish` of an empty object.
async fn send_publish(c: &mut Client, id: &str, channel: &str) {
    c.send(Body::Publish(v2::Publish {
        id: id.into(),
        channel: channel.into(),
        payload: payload(serde_json::json!({})),
    }))
    .await
    .unwrap();
}

/// Publishes until acknowledged, waiting out retryable errors as a client
/// does (ERR-RETRY-AFTER, same id), for at most 10 s. Returns the ack and
/// the seqs of the messages that arrived meanwhile.
async fn publish_until_acked(
    c: &mut Client,
    id: &str,
    channel: &str,
) -> (v2::PublishAck, Vec<u64>) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        send_publish(c, id, channel).await;
        loop {
            match next_data(c).await {
                Body::PublishAck(ack) => return (ack, seen),
                Body::Message(m) => seen.push(m.seq),
                Body::Error(e) if e.retry_after_ms.is_some() => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "never acknowledged: {e:?}"
                    );
                    let wait = e.retry_after_ms.unwrap().min(200);
                    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
