//! Unit tests of the sans-I/O session: what it sends and delivers for each
//! envelope and command, across simulated reconnects.

use super::*;
use crate::event::Recovery;
use courier_protocol::v2::RecoveryReason;

fn welcome() -> v2::Welcome {
    v2::Welcome {
        version: 2,
        session_id: "s1".into(),
        heartbeat_interval_ms: 1000,
        dedupe_window_ms: 120_000,
        ..Default::default()
    }
}

fn session() -> Session {
    Session::new(3, 100, Duration::from_secs(10))
}

fn bodies(s: &mut Session) -> Vec<Body> {
    s.take_outgoing()
        .into_iter()
        .filter_map(|e| e.body)
        .collect()
}

fn ack(
    id: &str,
    channel: &str,
    epoch: &str,
    seq: u64,
    recovery: Option<v2::Recovery>,
) -> v2::Envelope {
    env(Body::SubscribeAck(v2::SubscribeAck {
        id: id.into(),
        channel: channel.into(),
        position: Some(v2::StreamPosition {
            epoch: epoch.into(),
            seq,
        }),
        recovery,
    }))
}

fn msg(channel: &str, epoch: &str, seq: u64, id: &str) -> v2::Envelope {
    env(Body::Message(v2::Message {
        channel: channel.into(),
        epoch: epoch.into(),
        seq,
        id: id.into(),
        ..Default::default()
    }))
}

fn events(s: &mut Session) -> Vec<SubscriptionEvent> {
    s.take_deliveries().into_iter().map(|(_, e)| e).collect()
}

fn subscribed(
    s: &mut Session,
    channel: &str,
) -> (String, oneshot::Receiver<Result<(), SubscribeError>>) {
    let (tx, _rx) = mpsc::channel(16);
    let (first, wait) = oneshot::channel();
    s.subscribe(channel.into(), None, tx, first);
    let Some(Body::Subscribe(sub)) = bodies(s).pop() else {
        panic!("no subscribe sent")
    };
    (sub.id, wait)
}

#[test]
fn subscribes_then_resumes_from_the_last_delivered_position_after_reconnect() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (id, mut first) = subscribed(&mut s, "chat");
    s.on_envelope(ack(&id, "chat", "e1", 4, None), now);
    assert_eq!(first.try_recv().unwrap(), Ok(()));
    s.on_envelope(msg("chat", "e1", 5, "a"), now);
    s.on_envelope(msg("chat", "e1", 6, "b"), now);
    let got = events(&mut s);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(matches!(&got[2], SubscriptionEvent::Message(m) if m.seq == 6));

    s.on_close();
    s.on_open(welcome(), now);
    let Some(Body::Subscribe(resub)) = bodies(&mut s).pop() else {
        panic!()
    };
    assert_eq!(
        resub.resume,
        Some(v2::StreamPosition {
            epoch: "e1".into(),
            seq: 6
        })
    );
    // Messages before the new ack are discarded; the replay follows it.
    s.on_envelope(msg("chat", "e1", 9, "x"), now);
    let recovered = v2::Recovery {
        status: v2::RecoveryStatus::Recovered as i32,
        reason: 0,
        replayed: 2,
    };
    s.on_envelope(ack(&resub.id, "chat", "e1", 8, Some(recovered)), now);
    s.on_envelope(msg("chat", "e1", 7, "c"), now);
    s.on_envelope(msg("chat", "e1", 8, "d"), now);
    let got = events(&mut s);
    assert_eq!(
        got[0],
        SubscriptionEvent::Subscribed {
            position: Position {
                epoch: "e1".into(),
                seq: 8
            },
            recovery: Recovery::Recovered { replayed: 2 }
        }
    );
    let seqs: Vec<u64> = got[1..]
        .iter()
        .map(|e| match e {
            SubscriptionEvent::Message(m) => m.seq,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(seqs, [7, 8]);
}

#[test]
fn failed_recovery_is_reported() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (id, _) = subscribed(&mut s, "chat");
    s.on_envelope(ack(&id, "chat", "e1", 0, None), now);
    s.on_close();
    s.on_open(welcome(), now);
    let Some(Body::Subscribe(resub)) = bodies(&mut s).pop() else {
        panic!()
    };
    let failed = v2::Recovery {
        status: v2::RecoveryStatus::Failed as i32,
        reason: RecoveryReason::EpochChanged as i32,
        replayed: 0,
    };
    events(&mut s);
    s.on_envelope(ack(&resub.id, "chat", "e2", 0, Some(failed)), now);
    s.on_envelope(msg("chat", "e2", 1, "n"), now);
    let got = events(&mut s);
    assert_eq!(
        got[0],
        SubscriptionEvent::Subscribed {
            position: Position {
                epoch: "e2".into(),
                seq: 0
            },
            recovery: Recovery::Failed {
                reason: RecoveryReason::EpochChanged
            }
        }
    );
    assert!(matches!(&got[1], SubscriptionEvent::Message(m) if m.epoch == "e2" && m.seq == 1));
}

#[test]
fn a_gap_reports_and_resubscribes_from_the_tracked_position() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (id, _) = subscribed(&mut s, "chat");
    s.on_envelope(ack(&id, "chat", "e1", 1, None), now);
    s.on_envelope(msg("chat", "e1", 3, "skip"), now);
    let got = events(&mut s);
    assert_eq!(
        got[1],
        SubscriptionEvent::Gap {
            last: Position {
                epoch: "e1".into(),
                seq: 1
            },
            received: Position {
                epoch: "e1".into(),
                seq: 3
            }
        }
    );
    let Some(Body::Subscribe(resub)) = bodies(&mut s).pop() else {
        panic!("no resubscribe")
    };
    assert_eq!(
        resub.resume,
        Some(v2::StreamPosition {
            epoch: "e1".into(),
            seq: 1
        })
    );
    // The ack of the superseded subscribe is ignored (ORDER-UNKNOWN-IDS-IGNORED).
    s.on_envelope(ack(&id, "chat", "e1", 3, None), now);
    assert!(events(&mut s).is_empty());
}

#[test]
fn publishes_queue_offline_and_resend_in_order_with_their_ids() {
    let now = Instant::now();
    let mut s = session();
    let mut waits = Vec::new();
    for i in 0..3 {
        let (tx, rx) = oneshot::channel();
        s.publish("chat".into(), format!("p{i}"), Bytes::new(), tx, now);
        waits.push(rx);
    }
    assert!(bodies(&mut s).is_empty(), "nothing is sent while offline");
    let (tx, mut full) = oneshot::channel();
    s.publish("chat".into(), "p3".into(), Bytes::new(), tx, now);
    assert_eq!(full.try_recv().unwrap(), Err(PublishError::QueueFull(3)));

    s.on_open(welcome(), now);
    let ids: Vec<String> = bodies(&mut s)
        .into_iter()
        .map(|b| match b {
            Body::Publish(p) => p.id,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids, ["p0", "p1", "p2"]);
    // p0 is acknowledged; p1 and p2 are in flight when the link drops.
    s.on_envelope(
        env(Body::PublishAck(v2::PublishAck {
            id: "p0".into(),
            channel: "chat".into(),
            epoch: "e".into(),
            seq: 1,
            duplicate: false,
        })),
        now,
    );
    assert_eq!(waits[0].try_recv().unwrap().unwrap().seq, 1);
    s.on_close();
    assert_eq!(s.queued(), 2);
    s.on_open(welcome(), now);
    let ids: Vec<String> = bodies(&mut s)
        .into_iter()
        .filter_map(|b| match b {
            Body::Publish(p) => Some(p.id),
            _ => None,
        })
        .collect();
    assert_eq!(
        ids,
        ["p1", "p2"],
        "unacknowledged publishes are resent with their ids"
    );
}

#[test]
fn queued_publishes_older_than_the_dedupe_window_expire() {
    let t0 = Instant::now();
    let mut s = session();
    s.on_open(welcome(), t0);
    let (tx, mut rx) = oneshot::channel();
    s.publish("chat".into(), "old".into(), Bytes::new(), tx, t0);
    s.on_close();
    s.on_open(welcome(), t0 + Duration::from_secs(121));
    assert!(bodies(&mut s).is_empty());
    assert_eq!(rx.try_recv().unwrap(), Err(PublishError::Expired));
}

#[test]
fn errors_fail_only_their_request() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (sub_id, mut first) = subscribed(&mut s, "private");
    let (tx, mut publish) = oneshot::channel();
    s.publish("chat".into(), "p1".into(), Bytes::new(), tx, now);
    let (tx, mut call) = oneshot::channel();
    s.call(
        CallKind::Rpc {
            method: "nope".into(),
            payload: Bytes::new(),
        },
        Some(tx),
        now,
    );
    let Some(Body::RpcRequest(req)) = bodies(&mut s).pop() else {
        panic!()
    };
    let error = |id: &str, code: ErrorCode| {
        env(Body::Error(v2::Error {
            id: id.into(),
            code: code as i32,
            message: "no".into(),
            channel: String::new(),
            retry_after_ms: Some(5),
        }))
    };
    s.on_envelope(error(&sub_id, ErrorCode::Forbidden), now);
    s.on_envelope(error("p1", ErrorCode::Internal), now);
    s.on_envelope(error(&req.id, ErrorCode::UnknownMethod), now);
    assert!(matches!(
        first.try_recv().unwrap(),
        Err(SubscribeError::Rejected {
            code: ErrorCode::Forbidden,
            ..
        })
    ));
    assert!(matches!(
        publish.try_recv().unwrap(),
        Err(PublishError::Rejected { code: ErrorCode::Internal, retry_after: Some(d), .. }) if d == Duration::from_millis(5)
    ));
    assert!(matches!(
        call.try_recv().unwrap(),
        Err(RequestError::Server {
            code: ErrorCode::UnknownMethod,
            ..
        })
    ));
    assert!(s.is_open());
}

#[test]
fn calls_fail_on_close_and_time_out() {
    let now = Instant::now();
    let mut s = session();
    let (tx, mut offline) = oneshot::channel();
    s.call(
        CallKind::Presence {
            channel: "c".into(),
        },
        Some(tx),
        now,
    );
    assert!(matches!(
        offline.try_recv().unwrap(),
        Err(RequestError::NotConnected)
    ));
    s.on_open(welcome(), now);
    let (tx, mut a) = oneshot::channel();
    s.call(
        CallKind::Presence {
            channel: "c".into(),
        },
        Some(tx),
        now,
    );
    let (tx, mut b) = oneshot::channel();
    s.call(
        CallKind::Presence {
            channel: "c".into(),
        },
        Some(tx),
        now + Duration::from_secs(5),
    );
    s.expire_calls(now + Duration::from_secs(11));
    assert!(matches!(
        a.try_recv().unwrap(),
        Err(RequestError::Timeout(_))
    ));
    assert!(b.try_recv().is_err(), "b has not timed out yet");
    s.on_close();
    assert!(matches!(
        b.try_recv().unwrap(),
        Err(RequestError::NotConnected)
    ));
}

#[test]
fn pings_are_answered_and_batches_unpacked_in_order() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (id, _) = subscribed(&mut s, "chat");
    s.on_envelope(
        env(Body::Batch(v2::Batch {
            envelopes: vec![
                ack(&id, "chat", "e", 0, None),
                msg("chat", "e", 1, "a"),
                msg("chat", "e", 2, "b"),
            ],
        })),
        now,
    );
    assert_eq!(events(&mut s).len(), 3);
    s.on_envelope(env(Body::Ping(v2::Ping { ts: 42 })), now);
    assert_eq!(bodies(&mut s), [Body::Pong(v2::Pong { ts: 42 })]);
}

#[test]
fn refreshed_token_and_disconnect_become_notices() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    s.call(CallKind::Refresh { token: "t2".into() }, None, now);
    let Some(Body::Refresh(r)) = bodies(&mut s).pop() else {
        panic!()
    };
    s.on_envelope(
        env(Body::Refreshed(v2::Refreshed {
            id: r.id,
            token_expires_at_ms: Some(9),
        })),
        now,
    );
    s.on_envelope(
        env(Body::Disconnect(v2::Disconnect {
            code: 4101,
            reason: "slow down".into(),
            retry_after_ms: Some(250),
        })),
        now,
    );
    assert_eq!(
        s.take_notices(),
        [
            Notice::TokenAccepted {
                token: "t2".into(),
                expires_at_ms: Some(9)
            },
            Notice::Disconnect {
                code: 4101,
                reason: "slow down".into(),
                retry_after: Some(Duration::from_millis(250))
            },
        ]
    );
}

#[test]
fn messages_of_unsubscribed_channels_are_discarded() {
    let now = Instant::now();
    let mut s = session();
    s.on_open(welcome(), now);
    let (id, _) = subscribed(&mut s, "chat");
    s.on_envelope(ack(&id, "chat", "e", 0, None), now);
    s.unsubscribe("chat");
    assert!(matches!(bodies(&mut s).pop(), Some(Body::Unsubscribe(_))));
    events(&mut s);
    s.on_envelope(msg("chat", "e", 1, "a"), now);
    assert!(events(&mut s).is_empty());
}
