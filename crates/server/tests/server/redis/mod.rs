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
