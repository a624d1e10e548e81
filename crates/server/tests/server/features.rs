//! PRESENCE-*, EPHEMERAL-*, RPC-*, FEATURE-* and BATCH-*.

use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::{ErrorCode, PresenceAction};
use courier_protocol::{close, v2, wire};
use courier_server::rpc::{RpcContext, RpcError};
use courier_server::ServerBuilder;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn presence_join_query_leave() {
    let s = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let alice = hs256(json!({"sub": "alice", "info": {"name": "Alice"}}));
    let bob = hs256(json!({"sub": "bob"}));
    let mut a = Client::open(&s, "courier.v2.json", &alice, &["presence"])
        .await
        .unwrap();
    a.subscribe("s", "room", None).await.unwrap();
    let mut b = Client::open(&s, "courier.v1.msgpack", &bob, &["presence"])
        .await
        .unwrap();
    b.subscribe("s", "room", None).await.unwrap();
    match a.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => {
            assert_eq!(e.action, PresenceAction::Join as i32);
            let m = e.member.unwrap();
            assert_eq!(
                (m.session_id, m.user),
                (b.welcome.session_id.clone(), "bob".to_string())
            );
        }
        other => panic!("{other:?}"),
    }
    // A repeated subscribe sends no second join.
    b.subscribe("s2", "room", None).await.unwrap();
    b.send(Body::PresenceQuery(v2::PresenceQuery {
        id: "q".into(),
        channel: "room".into(),
    }))
    .await
    .unwrap();
    match b.recv_body().await.unwrap() {
        Body::Presence(p) => {
            assert_eq!(p.id, "q");
            let members: Vec<_> = p
                .members
                .iter()
                .map(|m| (m.user.as_str(), m.session_id.as_str()))
                .collect();
            assert_eq!(
                members,
                vec![
                    ("alice", a.welcome.session_id.as_str()),
                    ("bob", b.welcome.session_id.as_str())
                ]
            );
            assert_eq!(
                wire::payload::to_json(&p.members[0].info).unwrap(),
                json!({"name": "Alice"})
            );
        }
        other => panic!("{other:?}"),
    }
    b.send(Body::PresenceQuery(v2::PresenceQuery {
        id: "q2".into(),
        channel: "elsewhere".into(),
    }))
    .await
    .unwrap();
    assert_eq!(
        b.error().await.unwrap().code,
        ErrorCode::NotSubscribed as i32
    );
    drop(b);
    match a.recv_body().await.unwrap() {
        Body::PresenceEvent(e) => assert_eq!(e.action, PresenceAction::Leave as i32),
        other => panic!("{other:?}"),
    }
    // Without the feature: UNSUPPORTED, and no presence events.
    let mut c = Client::open(&s, "courier.v2.json", &alice, &[])
        .await
        .unwrap();
    c.subscribe("s", "room", None).await.unwrap();
    c.send(Body::PresenceQuery(v2::PresenceQuery {
        id: "q".into(),
        channel: "room".into(),
    }))
    .await
    .unwrap();
    assert_eq!(c.error().await.unwrap().code, ErrorCode::Unsupported as i32);
    assert!(
        matches!(a.recv_body().await.unwrap(), Body::PresenceEvent(e) if e.action == PresenceAction::Join as i32)
    );
}

#[tokio::test]
async fn ephemeral_relays_without_seq_to_other_members() {
    let s = server(|_| {}).await;
    let mut a = Client::open(&s, "courier.v2.proto", "", &["ephemeral"])
        .await
        .unwrap();
    let mut b = Client::open(&s, "courier.v2.json", "", &["ephemeral"])
        .await
        .unwrap();
    a.subscribe("s", "typing", None).await.unwrap();
    b.subscribe("s", "typing", None).await.unwrap();
    a.send(Body::Ephemeral(v2::Ephemeral {
        channel: "typing".into(),
        payload: payload(json!({"typing": true})),
        publisher: "forged".into(),
    }))
    .await
    .unwrap();
    match b.recv_body().await.unwrap() {
        Body::Ephemeral(e) => {
            assert_eq!(
                e.publisher, a.welcome.session_id,
                "MSG-PUBLISHER replaces the client's value"
            );
            assert_eq!(
                wire::payload::to_json(&e.payload).unwrap(),
                json!({"typing": true})
            );
        }
        other => panic!("{other:?}"),
    }
    // Not numbered: the channel's position is unchanged.
    assert_eq!(
        b.subscribe("again", "typing", None)
            .await
            .unwrap()
            .position
            .unwrap()
            .seq,
        0
    );
    // The sender does not get its own ephemeral; a non-member gets NOT_SUBSCRIBED with an empty id.
    a.send(Body::Ping(v2::Ping { ts: 1 })).await.unwrap();
    assert!(matches!(a.recv_body().await.unwrap(), Body::Pong(_)));
    a.send(Body::Ephemeral(v2::Ephemeral {
        channel: "nowhere".into(),
        payload: payload(json!(1)),
        publisher: String::new(),
    }))
    .await
    .unwrap();
    let e = a.error().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.code, e.channel.as_str()),
        ("", ErrorCode::NotSubscribed as i32, "nowhere")
    );
    let mut c = Client::open(&s, "courier.v2.json", "", &[]).await.unwrap();
    c.send(Body::Ephemeral(v2::Ephemeral {
        channel: "typing".into(),
        payload: payload(json!(1)),
        publisher: String::new(),
    }))
    .await
    .unwrap();
    assert_eq!(c.error().await.unwrap().code, ErrorCode::Unsupported as i32);
}

#[tokio::test]
async fn rpc_correlates_responses_and_reports_unknown_methods() {
    let mut config = config();
    config.max_rpc_in_flight = 8;
    let mut builder = ServerBuilder::new(config);
    builder.rpc("whoami", |ctx: RpcContext, _args: Bytes| async move {
        wire::to_payload(&json!({"user": &*ctx.user, "method": ctx.method}))
            .map_err(|e| RpcError::Internal(e.to_string()))
    });
    builder.rpc("fail", |_ctx: RpcContext, _args: Bytes| async move {
        Err::<Bytes, _>(RpcError::BadRequest("nope".into()))
    });
    let s = builder.start().await.unwrap();
    for name in ["courier.v2.json", "courier.v1.proto"] {
        let mut c = Client::open(&s, name, "", &["rpc"]).await.unwrap();
        let call = |id: &str, method: &str, args: serde_json::Value| {
            Body::RpcRequest(v2::RpcRequest {
                id: id.into(),
                method: method.into(),
                payload: payload(args),
            })
        };
        // A slow call first, a fast one second: answers match by id, in completion order.
        c.send(call("slow", "sleep", json!({"ms": 200})))
            .await
            .unwrap();
        c.send(call("fast", "echo", json!([1, "two"])))
            .await
            .unwrap();
        match c.recv_body().await.unwrap() {
            Body::RpcResponse(r) => assert_eq!(
                (r.id.as_str(), wire::payload::to_json(&r.payload).unwrap()),
                ("fast", json!([1, "two"]))
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.recv_body().await.unwrap(), Body::RpcResponse(r) if r.id == "slow"));
        c.send(call("w", "whoami", json!(null))).await.unwrap();
        assert!(
            matches!(c.recv_body().await.unwrap(), Body::RpcResponse(r) if wire::payload::to_json(&r.payload).unwrap() == json!({"user": "", "method": "whoami"}))
        );
        c.send(call("u", "no.such", json!(null))).await.unwrap();
        let e = c.error().await.unwrap();
        assert_eq!(
            (e.id.as_str(), e.code),
            ("u", ErrorCode::UnknownMethod as i32)
        );
        c.send(call("f", "fail", json!(null))).await.unwrap();
        let e = c.error().await.unwrap();
        assert_eq!((e.id.as_str(), e.code), ("f", ErrorCode::BadRequest as i32));
    }
    let mut c = Client::open(&s, "courier.v2.json", "", &[]).await.unwrap();
    c.send(Body::RpcRequest(v2::RpcRequest {
        id: "x".into(),
        method: "echo".into(),
        payload: Bytes::new(),
    }))
    .await
    .unwrap();
    assert_eq!(c.error().await.unwrap().code, ErrorCode::Unsupported as i32);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test]
async fn batches_in_and_out() {
    let s = server(|c| c.max_batch = 4).await;
    let mut c = Client::open(&s, "courier.v2.msgpack", "", &["batch"])
        .await
        .unwrap();
    assert_eq!(c.welcome.features, vec!["batch".to_string()]);
    let ping = |ts| v2::Envelope {
        body: Some(Body::Ping(v2::Ping { ts })),
    };
    c.send(Body::Batch(v2::Batch {
        envelopes: vec![ping(1), ping(2), ping(3)],
    }))
    .await
    .unwrap();
    for ts in 1..=3 {
        assert!(
            matches!(c.recv_body().await.unwrap(), Body::Pong(p) if p.ts == ts),
            "BATCH-ORDER"
        );
    }
    // Deliveries queued together may arrive as one batch frame; the
    // client flattens them, and the order and content are unchanged.
    c.subscribe("s", "b", None).await.unwrap();
    let mut p = Client::json(&s).await.unwrap();
    for i in 0..10 {
        p.send(Body::Publish(v2::Publish {
            id: format!("{i}"),
            channel: "b".into(),
            payload: payload(json!(i)),
        }))
        .await
        .unwrap();
    }
    for seq in 1..=10 {
        assert_eq!(c.message().await.unwrap().seq, seq);
    }
    let five = v2::Batch {
        envelopes: (0..5).map(ping).collect(),
    };
    c.send(Body::Batch(five)).await.unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
    let mut c = Client::open(&s, "courier.v2.json", "", &["batch"])
        .await
        .unwrap();
    let nested = v2::Batch {
        envelopes: vec![
            ping(1),
            v2::Envelope {
                body: Some(Body::Batch(v2::Batch::default())),
            },
        ],
    };
    c.send(Body::Batch(nested)).await.unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
    let mut c = Client::open(&s, "courier.v2.json", "", &[]).await.unwrap();
    c.send(Body::Batch(v2::Batch {
        envelopes: vec![ping(1)],
    }))
    .await
    .unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
}
