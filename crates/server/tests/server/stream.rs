//! The hub's tolerance of a distributed engine's stream, over real
//! sockets: an engine whose stream loses and reorders messages (as Redis
//! pub/sub does around reconnects) still gives subscribers every message
//! once, in order, filled from the engine's history; a hole the engine
//! cannot fill closes the channel's sessions with 4201 instead of passing
//! the gap on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use courier_protocol::close;
use courier_server::engine::{
    Engine, EngineFuture, EngineSink, HistoryPolicy, Member, Members, MemoryEngine, Numbered,
    Position, PresenceChange, PublishRequest, Published, Recovered,
};
use courier_server::ServerBuilder;
use serde_json::json;

use crate::common::*;

/// A [`MemoryEngine`] whose stream to the hub drops every `drop_every`th
/// message and swaps the others pairwise: what a lossy, reordering
/// transport between nodes would deliver. History and numbering are the
/// memory engine's own.
struct Unreliable {
    inner: MemoryEngine,
    relay: Arc<Relay>,
    /// How long a `recover` answer takes to come back after the position
    /// was read (a network round trip): the subscribe race's window.
    recover_delay: Duration,
}

struct Relay {
    hub: OnceLock<Weak<dyn EngineSink>>,
    drop_every: u64,
    count: AtomicU64,
    held: Mutex<Option<Arc<Numbered>>>,
}

impl Relay {
    fn hub(&self) -> Option<Arc<dyn EngineSink>> {
        self.hub.get().and_then(Weak::upgrade)
    }
}

impl EngineSink for Relay {
    fn numbered(&self, message: Arc<Numbered>) {
        let Some(hub) = self.hub() else { return };
        let n = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_multiple_of(self.drop_every) {
            return;
        }
        // Every other message waits and goes out after its successor.
        let mut held = self.held.lock().unwrap();
        match held.take() {
            Some(earlier) => {
                hub.numbered(message);
                hub.numbered(earlier);
            }
            None => *held = Some(message),
        }
    }
    fn presence(&self, change: PresenceChange) {
        if let Some(hub) = self.hub() {
            hub.presence(change)
        }
    }
    fn ephemeral(&self, channel: &str, publisher: &str, payload: Bytes) {
        if let Some(hub) = self.hub() {
            hub.ephemeral(channel, publisher, payload)
        }
    }
}

impl Unreliable {
    fn new(history_size: u32, drop_every: u64) -> Arc<Self> {
        Self::with_delay(history_size, drop_every, Duration::ZERO)
    }

    fn with_delay(history_size: u32, drop_every: u64, recover_delay: Duration) -> Arc<Self> {
        let relay = Arc::new(Relay {
            hub: OnceLock::new(),
            drop_every,
            count: AtomicU64::new(0),
            held: Mutex::new(None),
        });
        let inner = MemoryEngine::new(HistoryPolicy {
            history_size,
            history_ttl: Duration::from_secs(60),
            dedupe_window: Duration::from_secs(60),
            dedupe_max_per_channel: 100_000,
            overrides: Vec::new(),
        });
        inner.attach(Arc::downgrade(&relay) as Weak<dyn EngineSink>);
        Arc::new(Unreliable {
            inner,
            relay,
            recover_delay,
        })
    }
}

impl Engine for Unreliable {
    fn attach(&self, sink: Weak<dyn EngineSink>) {
        let _ = self.relay.hub.set(sink);
    }
    fn publish(&self, request: PublishRequest) -> EngineFuture<'_, Published> {
        self.inner.publish(request)
    }
    fn recover<'a>(
        &'a self,
        channel: &'a str,
        resume: Option<&'a Position>,
    ) -> EngineFuture<'a, Recovered> {
        Box::pin(async move {
            let recovered = self.inner.recover(channel, resume).await;
            tokio::time::sleep(self.recover_delay).await;
            recovered
        })
    }
    fn range<'a>(
        &'a self,
        channel: &'a str,
        epoch: &'a str,
        from: u64,
        to: u64,
    ) -> EngineFuture<'a, Vec<Arc<Numbered>>> {
        self.inner.range(channel, epoch, from, to)
    }
    fn watch<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, ()> {
        self.inner.watch(channel)
    }
    fn unwatch(&self, channel: &str) {
        self.inner.unwatch(channel)
    }
    fn join<'a>(&'a self, channel: &'a str, member: Member) -> EngineFuture<'a, ()> {
        self.inner.join(channel, member)
    }
    fn leave<'a>(&'a self, channel: &'a str, session_id: &'a str) -> EngineFuture<'a, ()> {
        self.inner.leave(channel, session_id)
    }
    fn members<'a>(&'a self, channel: &'a str) -> EngineFuture<'a, Members> {
        self.inner.members(channel)
    }
    fn ephemeral<'a>(
        &'a self,
        channel: &'a str,
        publisher: &'a str,
        payload: Bytes,
    ) -> EngineFuture<'a, ()> {
        self.inner.ephemeral(channel, publisher, payload)
    }
    fn channel_count(&self) -> usize {
        self.inner.channel_count()
    }
}

async fn server_with(engine: Arc<Unreliable>) -> courier_server::RunningServer {
    let mut builder = ServerBuilder::new(config());
    builder.engine(engine);
    builder.start().await.expect("server starts")
}

#[tokio::test]
async fn lost_and_reordered_stream_messages_reach_subscribers_in_order_once() {
    let s = server_with(Unreliable::new(300, 3)).await;
    let mut sub = Client::json(&s).await.unwrap();
    let mut publisher = Client::json(&s).await.unwrap();
    let ack = sub.subscribe("s", "lossy", None).await.unwrap();
    assert_eq!(ack.position.unwrap().seq, 0);
    for i in 1..=30 {
        let a = publisher
            .publish(&format!("p{i}"), "lossy", json!(i))
            .await
            .unwrap();
        assert_eq!(a.seq, i);
    }
    // SEQ-ACK-CONTIGUOUS: 1..=30, although the stream dropped ten of them
    // and swapped the rest pairwise.
    for i in 1..=30 {
        let m = sub.message().await.unwrap();
        assert_eq!(m.seq, i, "message {i} out of order or missing");
    }
    let extra = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await;
    assert!(extra.is_err(), "a message was delivered twice: {extra:?}");
}

#[tokio::test]
async fn a_hole_the_engine_cannot_fill_closes_subscribers_with_4201() {
    // No history: a message the stream lost cannot be read back.
    let s = server_with(Unreliable::new(0, 2)).await;
    let mut sub = Client::json(&s).await.unwrap();
    let mut publisher = Client::json(&s).await.unwrap();
    sub.subscribe("s", "gone", None).await.unwrap();
    for i in 1..=4 {
        publisher
            .publish(&format!("p{i}"), "gone", json!(i))
            .await
            .unwrap();
    }
    // Message 1 was held for reordering and 2 dropped: the subscriber gets
    // nothing out of order, then the reconnect-and-resume close.
    let mut seqs = Vec::new();
    loop {
        match sub.recv().await {
            Ok(e) => match e.body {
                Some(courier_protocol::v2::envelope::Body::Message(m)) => seqs.push(m.seq),
                Some(courier_protocol::v2::envelope::Body::Disconnect(d)) => {
                    assert_eq!(d.code, u32::from(close::RECONNECT), "{d:?}");
                    break;
                }
                other => panic!("unexpected {other:?}"),
            },
            Err(e) => panic!("no 4201 disconnect: {e}; got {seqs:?}"),
        }
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1) && seqs.first().is_none_or(|s| *s == 1),
        "a gap was passed on: {seqs:?}"
    );
}

#[tokio::test]
async fn messages_numbered_while_a_subscriber_attaches_follow_its_ack_once() {
    // Every message reaches the hub (drop_every beyond the count), but the
    // engine answers `recover` 300 ms after reading the position.
    let engine = Unreliable::with_delay(300, u64::MAX, Duration::from_millis(300));
    let s = server_with(engine).await;
    let mut sub = Client::json(&s).await.unwrap();
    let mut publisher = Client::json(&s).await.unwrap();
    // An earlier subscriber keeps the channel live, so frames for the new
    // one are held per subscriber while it attaches.
    let mut early = Client::json(&s).await.unwrap();
    early.subscribe("e", "race", None).await.unwrap();
    // Message 1 exists before the subscribe: not delivered to `sub`, and
    // the relay holds it until message 2 arrives (pairwise swap).
    publisher.publish("p1", "race", json!(1)).await.unwrap();
    let (ack, ()) = tokio::join!(sub.subscribe("s", "race", None), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for i in 2..=6 {
            publisher
                .publish(&format!("p{i}"), "race", json!(i))
                .await
                .unwrap();
        }
    });
    // SEQ-ACK-POSITION, ORDER-ACK-BEFORE-DATA, SEQ-ACK-CONTIGUOUS.
    let position = ack.unwrap().position.unwrap().seq;
    assert_eq!(position, 1);
    for i in 2..=6 {
        assert_eq!(sub.message().await.unwrap().seq, i);
    }
    let mut seqs = Vec::new();
    while seqs.len() < 6 {
        // `early` also sees `sub` join (PRESENCE-JOIN-LEAVE).
        match early.recv_body().await.unwrap() {
            courier_protocol::v2::envelope::Body::Message(m) => seqs.push(m.seq),
            courier_protocol::v2::envelope::Body::PresenceEvent(_) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    for c in [&mut sub, &mut early] {
        loop {
            match tokio::time::timeout(Duration::from_millis(300), c.recv_body()).await {
                Err(_) => break,
                Ok(Ok(courier_protocol::v2::envelope::Body::PresenceEvent(_))) => {}
                Ok(other) => panic!("delivered twice: {other:?}"),
            }
        }
    }
}
