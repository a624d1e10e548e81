//! The bounded dedupe record over real sockets (DEDUP-WINDOW, DEDUP-MAX):
//! the maximum is advertised to v2 sessions only, the last
//! `dedupe_max_per_channel` publishes of a channel are always recognised,
//! older ones are forgotten early and counted, publishing never fails
//! because of the bound, and the window still expires records.

use std::time::Duration;

use serde_json::json;

use crate::common::{server, Client};
use crate::limits::metric;

#[tokio::test]
async fn the_maximum_is_advertised_in_v2_welcomes_only() {
    let s = server(|c| c.dedupe_max_per_channel = 5).await;
    let v2 = Client::open(&s, "courier.v2.msgpack", "", &[])
        .await
        .unwrap();
    assert_eq!(v2.welcome.dedupe_max_per_channel, 5);
    // ENC-V1-ISOLATION: a v1 welcome has no such field (it decodes as 0).
    let v1 = Client::open(&s, "courier.v1.json", "", &[]).await.unwrap();
    assert_eq!(v1.welcome.dedupe_max_per_channel, 0);
    assert_eq!(v1.welcome.dedupe_window_ms, 120_000);
    let v1 = Client::open(&s, "courier.v1.proto", "", &[]).await.unwrap();
    assert_eq!(v1.welcome.dedupe_max_per_channel, 0);
}

#[tokio::test]
async fn the_last_maximum_publishes_are_remembered_and_older_ones_evicted_early() {
    let s = server(|c| c.dedupe_max_per_channel = 5).await;
    let mut c = Client::json(&s).await.unwrap();
    let first = c.publish("p0", "room", json!(0)).await.unwrap();
    for i in 1..5 {
        c.publish(&format!("p{i}"), "room", json!(i)).await.unwrap();
    }
    // Four later publishes: p0 is among the last five.
    let again = c.publish("p0", "room", json!(0)).await.unwrap();
    assert!(again.duplicate && again.seq == first.seq, "{again:?}");
    assert_eq!(metric(&s, "courier_dedupe_evicted_early_total").await, 0);
    // p5 and p6 push p0 and p1 out, before their 120 s window.
    c.publish("p5", "room", json!(5)).await.unwrap();
    let p1 = c.publish("p1", "room", json!(1)).await.unwrap();
    assert!(
        p1.duplicate && p1.seq == 2,
        "p1 is still among the last five: {p1:?}"
    );
    c.publish("p6", "room", json!(6)).await.unwrap();
    assert_eq!(metric(&s, "courier_dedupe_evicted_early_total").await, 2);
    // DEDUP-MAX: a forgotten id is numbered again, never refused.
    let renumbered = c.publish("p0", "room", json!(0)).await.unwrap();
    assert!(!renumbered.duplicate, "{renumbered:?}");
    assert_eq!(renumbered.seq, 8, "numbered after p6 (seq 7)");
    assert_eq!(metric(&s, "courier_dedupe_evicted_early_total").await, 3);
    assert_eq!(metric(&s, "courier_dedupe_records").await, 5);
    assert!(metric(&s, "courier_dedupe_bytes").await > 0);
    // The bound is per channel: another channel keeps its own five.
    c.publish("p0", "other", json!(0)).await.unwrap();
    assert_eq!(metric(&s, "courier_dedupe_records").await, 6);
    // Every numbered publish was delivered once, to a subscriber too.
    let mut sub = Client::json(&s).await.unwrap();
    sub.subscribe("s1", "room", Some(v2_position(&first.epoch, 0)))
        .await
        .unwrap();
    let seqs: Vec<u64> = futures_seq(&mut sub, 8).await;
    assert_eq!(seqs, (1..=8).collect::<Vec<_>>());
}

#[tokio::test]
async fn the_window_still_expires_records_and_that_is_not_counted_as_early() {
    let s = server(|c| {
        c.dedupe_max_per_channel = 100;
        c.dedupe_window_ms = 300;
    })
    .await;
    let mut c = Client::json(&s).await.unwrap();
    for i in 0..10 {
        c.publish(&format!("w{i}"), "win", json!(i)).await.unwrap();
    }
    assert_eq!(metric(&s, "courier_dedupe_records").await, 10);
    // The sweep runs about once a second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while metric(&s, "courier_dedupe_records").await != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "records never expired"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&s, "courier_dedupe_bytes").await,
        0,
        "memory given back"
    );
    assert_eq!(metric(&s, "courier_dedupe_evicted_early_total").await, 0);
    let again = c.publish("w0", "win", json!(0)).await.unwrap();
    assert!(!again.duplicate, "remembered past its window: {again:?}");
}

fn v2_position(epoch: &str, seq: u64) -> courier_protocol::v2::StreamPosition {
    courier_protocol::v2::StreamPosition {
        epoch: epoch.into(),
        seq,
    }
}

async fn futures_seq(c: &mut Client, n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(c.message().await.unwrap().seq);
    }
    out
}
