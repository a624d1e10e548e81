//! The client against the reference server on loopback: every encoding,
//! black-holed links detected by the heartbeat deadline and resumed with
//! nothing lost or duplicated, server restarts (new epoch), concurrent
//! publishers, gap detection and duplicate dropping under injected faults.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use courier_client::{
    Client, ConnectionEvent, Recovery, RecoveryReason, Subprotocol, Subscription, SubscriptionEvent,
};
use courier_server::Fault;
use serde::{Deserialize, Serialize};
use support::proxy::Proxy;
use support::{config, server, wait_event};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Note {
    n: u64,
    text: String,
}

const LIMIT: Duration = Duration::from_secs(10);

/// Reads events until `count` messages arrived; returns (messages, other events).
async fn collect(
    sub: &mut Subscription,
    count: usize,
) -> (Vec<courier_client::Message>, Vec<SubscriptionEvent>) {
    let mut messages = Vec::new();
    let mut others = Vec::new();
    let r = tokio::time::timeout(LIMIT, async {
        while messages.len() < count {
            match sub.recv().await {
                Some(SubscriptionEvent::Message(m)) => messages.push(m),
                Some(other) => others.push(other),
                None => return,
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "timed out with {} of {count} messages; other events {others:?}",
        messages.len()
    );
    (messages, others)
}

#[tokio::test]
async fn subscribe_publish_presence_rpc_in_every_encoding() {
    let srv = server(|_| {}).await;
    for sp in Subprotocol::ALL {
        let client = Client::connect(config(&srv.ws_url()).subprotocols([sp]).clone())
            .await
            .unwrap();
        let channel = format!("room-{sp}");
        let mut typed = client.subscribe(&channel).await.unwrap();
        let first = typed.recv().await.unwrap();
        assert!(
            matches!(first, SubscriptionEvent::Subscribed { recovery: Recovery::NotRequested, ref position } if position.seq == 0),
            "{sp}: {first:?}"
        );
        let mut typed = typed.typed::<Note>();
        for n in 1..=3 {
            let ack = client
                .publish(
                    &channel,
                    &Note {
                        n,
                        text: format!("hi {sp}"),
                    },
                )
                .await
                .unwrap();
            assert_eq!((ack.seq, ack.duplicate), (n, false), "{sp}");
        }
        for n in 1..=3 {
            let (m, note) = tokio::time::timeout(LIMIT, futures_util::StreamExt::next(&mut typed))
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!((m.seq, note.n), (n, n), "{sp}");
            assert_eq!(note.text, format!("hi {sp}"));
        }
        let members = client.presence(&channel).await.unwrap();
        assert_eq!(members.len(), 1, "{sp}");
        let echoed: serde_json::Value = client
            .rpc("echo", &serde_json::json!({"x": [1, 2]}))
            .await
            .unwrap();
        assert_eq!(echoed, serde_json::json!({"x": [1, 2]}), "{sp}");
        client.close().await;
    }
}

#[tokio::test]
async fn blackholed_links_are_detected_by_heartbeat_and_resumed_without_loss_or_duplicates() {
    let srv = server(|_| {}).await;
    let proxy = Proxy::start(srv.local_addr().to_string()).await;
    for sp in [
        Subprotocol::ALL[0],
        Subprotocol::ALL[1],
        Subprotocol::ALL[2],
    ] {
        let channel = format!("hole-{sp}");
        // Subscriber and publisher both go through the proxy.
        let sub_client = Client::connect(config(&proxy.url).subprotocols([sp]).clone())
            .await
            .unwrap();
        let pub_client = Client::connect(config(&proxy.url).subprotocols([sp]).clone())
            .await
            .unwrap();
        let mut sub_events = sub_client.events();
        let mut pub_events = pub_client.events();
        let mut sub = sub_client.subscribe(&channel).await.unwrap();
        const N: u64 = 40;
        let publisher = {
            let (client, channel) = (pub_client.clone(), channel.clone());
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for n in 1..=N {
                    acks.push(
                        client
                            .publish(
                                &channel,
                                &Note {
                                    n,
                                    text: String::new(),
                                },
                            )
                            .await
                            .unwrap(),
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                acks
            })
        };
        tokio::time::sleep(Duration::from_millis(120)).await;
        proxy.blackhole();
        // HB-CLIENT-DEADLINE: both notice within interval + grace (400 ms), not via TCP.
        let seen = wait_event(&mut sub_events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        assert!(
            seen.iter()
                .any(|e| matches!(e, ConnectionEvent::Disconnected { code: 4200, .. })),
            "{sp}: {seen:?}"
        );
        let seen = wait_event(&mut pub_events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        assert!(
            seen.iter()
                .any(|e| matches!(e, ConnectionEvent::Disconnected { code: 4200, .. })),
            "{sp}: {seen:?}"
        );

        let acks = tokio::time::timeout(LIMIT, publisher)
            .await
            .unwrap()
            .unwrap();
        let seqs: HashSet<u64> = acks.iter().map(|a| a.seq).collect();
        assert_eq!(
            seqs.len() as u64,
            N,
            "{sp}: every publish numbered once: {acks:?}"
        );
        let (messages, others) = collect(&mut sub, N as usize).await;
        let got: Vec<u64> = messages
            .iter()
            .map(|m| m.decode::<Note>().unwrap().n)
            .collect();
        assert_eq!(
            got,
            (1..=N).collect::<Vec<_>>(),
            "{sp}: nothing lost, nothing duplicated, in order"
        );
        let seq: Vec<u64> = messages.iter().map(|m| m.seq).collect();
        assert_eq!(seq, (1..=N).collect::<Vec<_>>(), "{sp}");
        assert!(
            others.iter().any(|e| matches!(
                e,
                SubscriptionEvent::Subscribed {
                    recovery: Recovery::Recovered { .. },
                    ..
                }
            )),
            "{sp}: the subscription resumed: {others:?}"
        );
        // Nothing more arrives (no duplicates after the fact).
        let extra = tokio::time::timeout(Duration::from_millis(200), sub.next_message()).await;
        assert!(extra.is_err(), "{sp}: unexpected extra message {extra:?}");
        sub_client.close().await;
        pub_client.close().await;
    }
}

#[tokio::test]
async fn server_restart_reports_failed_recovery_and_resends_the_offline_queue() {
    let srv = server(|_| {}).await;
    let addr = srv.local_addr();
    let client = Client::connect(config(&srv.ws_url())).await.unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("restart").await.unwrap();
    for n in 1..=3 {
        client
            .publish(
                "restart",
                &Note {
                    n,
                    text: String::new(),
                },
            )
            .await
            .unwrap();
    }
    let (before, _) = collect(&mut sub, 3).await;
    let old_epoch = before[0].epoch.clone();

    // CLOSE-SHUTDOWN: 1001, the client reconnects and retries until the
    // new server is up; publishes made meanwhile wait in the queue.
    srv.shutdown().await;
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Disconnected { code: 1001, .. })
    })
    .await;
    let queued = {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .publish(
                    "restart",
                    &Note {
                        n: 4,
                        text: "queued".into(),
                    },
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let srv2 = server(|c| c.listen = addr).await;
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Connected { .. })
    })
    .await;
    let ack = tokio::time::timeout(LIMIT, queued)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_ne!(
        ack.epoch, old_epoch,
        "a restarted in-memory server has a new epoch"
    );
    assert_eq!(ack.seq, 1);

    let (after, others) = collect(&mut sub, 1).await;
    // RESUME-CLIENT-REPORT: the resume from the old epoch failed, reported as possible loss.
    assert!(
        others.iter().any(|e| matches!(
            e,
            SubscriptionEvent::Subscribed {
                recovery: Recovery::Failed {
                    reason: RecoveryReason::EpochChanged
                },
                ..
            }
        )),
        "{others:?}"
    );
    assert_eq!(after[0].decode::<Note>().unwrap().n, 4);
    assert_eq!(after[0].epoch, ack.epoch);
    client.close().await;
    srv2.shutdown().await;
}

#[tokio::test]
async fn concurrent_publishers_produce_a_gap_free_stream() {
    let srv = server(|_| {}).await;
    let sub_client = Client::connect(config(&srv.ws_url())).await.unwrap();
    let mut sub = sub_client.subscribe("busy").await.unwrap();
    const PUBLISHERS: u64 = 4;
    const EACH: u64 = 40;
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let sp = Subprotocol::ALL[p as usize % 6];
        let client = Client::connect(config(&srv.ws_url()).subprotocols([sp]).clone())
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..EACH {
                seqs.push(
                    client
                        .publish(
                            "busy",
                            &Note {
                                n: p * 1000 + i,
                                text: String::new(),
                            },
                        )
                        .await
                        .unwrap()
                        .seq,
                );
            }
            client.close().await;
            seqs
        }));
    }
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    acked.sort();
    assert_eq!(acked, (1..=PUBLISHERS * EACH).collect::<Vec<_>>());
    let (messages, others) = collect(&mut sub, (PUBLISHERS * EACH) as usize).await;
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=PUBLISHERS * EACH).collect::<Vec<_>>());
    assert!(
        !others
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Gap { .. })),
        "{others:?}"
    );
    sub_client.close().await;
}

#[tokio::test]
async fn a_server_that_skips_numbers_is_caught_as_a_gap() {
    let srv = server(|c| c.fault = Some(Fault::SkipSeq)).await;
    let client = Client::connect(config(&srv.ws_url())).await.unwrap();
    let mut sub = client.subscribe("skips").await.unwrap();
    for n in 1..=6 {
        client
            .publish(
                "skips",
                &Note {
                    n,
                    text: String::new(),
                },
            )
            .await
            .unwrap();
    }
    let mut gaps = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(e) = sub.recv().await {
            if let SubscriptionEvent::Gap { last, received } = e {
                gaps.push((last.seq, received.seq));
            }
        }
    })
    .await;
    assert!(
        !gaps.is_empty(),
        "SEQ-CLIENT-GAP-DETECTION must report the skipped number"
    );
    for (last, received) in gaps {
        assert!(received > last + 1);
    }
    client.close().await;
}

#[tokio::test]
async fn duplicates_delivered_by_a_faulty_server_are_dropped_by_id() {
    let srv = server(|c| c.fault = Some(Fault::RedeliverDuplicate)).await;
    let client = Client::connect(config(&srv.ws_url())).await.unwrap();
    let mut sub = client.subscribe("dups").await.unwrap();
    let payload = courier_protocol::wire::to_payload(&Note {
        n: 1,
        text: String::new(),
    })
    .unwrap();
    client
        .publish_with_id("dups", "same-id".into(), payload.clone())
        .await
        .unwrap();
    client
        .publish_with_id("dups", "same-id".into(), payload)
        .await
        .unwrap();
    client
        .publish(
            "dups",
            &Note {
                n: 2,
                text: String::new(),
            },
        )
        .await
        .unwrap();
    let (messages, others) = collect(&mut sub, 2).await;
    let ids: Vec<&str> = messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids[0], "same-id");
    assert_ne!(
        ids[1], "same-id",
        "DEDUP-CLIENT-DROP: the redelivered id is not delivered twice"
    );
    // The faulty server numbered the duplicate (seq 2); the client skipped it
    // without taking it for a gap.
    assert_eq!((messages[0].seq, messages[1].seq), (1, 3));
    assert!(
        !others
            .iter()
            .any(|e| matches!(e, SubscriptionEvent::Gap { .. })),
        "{others:?}"
    );
    client.close().await;
}
