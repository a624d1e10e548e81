//! VER-*, HELLO-*, WELCOME-FIELDS and the decode-error close codes.

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, subprotocol, v2, Subprotocol};
use tokio_tungstenite::tungstenite::Message;

use crate::common::*;

#[tokio::test]
async fn picks_highest_common_version_then_client_order() {
    let s = server(|_| {}).await;
    let cases: &[(&[&str], &str)] = &[
        (
            &["courier.v1.json", "courier.v2.msgpack", "courier.v2.json"],
            "courier.v2.msgpack",
        ),
        (&["courier.v2.proto", "courier.v2.json"], "courier.v2.proto"),
        (&["graphql-ws", "courier.v1.msgpack"], "courier.v1.msgpack"),
    ];
    for (offers, want) in cases {
        let up = upgrade(&s, offers, &[]).await.unwrap();
        assert_eq!(up.status, 101);
        assert_eq!(
            up.header("sec-websocket-protocol").as_deref(),
            Some(*want),
            "offers {offers:?}"
        );
    }
    // A server without msgpack: version first, then encoding.
    let s =
        server(|c| c.subprotocols = vec!["courier.v1.json".into(), "courier.v2.json".into()]).await;
    let up = upgrade(&s, &["courier.v2.msgpack", "courier.v1.json"], &[])
        .await
        .unwrap();
    assert_eq!(
        up.header("sec-websocket-protocol").as_deref(),
        Some("courier.v1.json")
    );
}

#[tokio::test]
async fn no_acceptable_offer_is_accepted_then_closed_4002_with_the_list() {
    let s = server(|_| {}).await;
    for offers in [&["courier.v3.json"][..], &[][..], &["Courier.V2.JSON"][..]] {
        let up = upgrade(&s, offers, &[]).await.unwrap();
        assert_eq!(up.status, 101, "VER-ACCEPT-THEN-CLOSE");
        assert_eq!(up.header("sec-websocket-protocol"), None);
        let mut ws = up.ws.unwrap();
        use futures_util::StreamExt;
        // No data frame precedes the close.
        match ws.next().await.unwrap().unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(u16::from(f.code), close::UNSUPPORTED_VERSION);
                assert_eq!(
                    f.reason.as_str(),
                    subprotocol::mismatch_reason(&Subprotocol::ALL)
                );
                assert_eq!(
                    f.reason.as_str(),
                    "unsupported version; supported: courier.v2.json,msgpack,proto courier.v1.json,msgpack,proto"
                );
            }
            other => panic!("expected a close, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn every_subprotocol_completes_hello_and_a_publish_round_trip() {
    let s = server(|_| {}).await;
    for name in all_subprotocols() {
        let mut c = Client::open(&s, name, "", &["presence"]).await.unwrap();
        let w = &c.welcome;
        let p: Subprotocol = name.parse().unwrap();
        assert_eq!(w.version, p.version.number(), "{name}");
        assert_eq!(
            w.encoding,
            1 + courier_protocol::Encoding::ALL
                .iter()
                .position(|e| *e == p.encoding)
                .unwrap() as i32
        );
        assert!(w.session_id.starts_with("s_"));
        assert_eq!(
            (
                w.heartbeat_interval_ms,
                w.heartbeat_grace_ms,
                w.dedupe_window_ms
            ),
            (25_000, 10_000, 120_000)
        );
        let l = w.limits.unwrap();
        assert_eq!(
            (
                l.max_message_bytes,
                l.max_messages_per_second,
                l.max_burst,
                l.send_queue_frames
            ),
            (65536, 100, 200, 1024)
        );
        assert_eq!(
            (l.max_subscriptions, l.history_size, l.history_ttl_ms),
            (128, 300, 300_000)
        );
        // v1 never sees max_batch (ENC-V1-ISOLATION).
        assert_eq!(l.max_batch, if p.version.number() == 2 { 64 } else { 0 });
        assert_eq!(w.features, vec!["presence".to_string()]);
        let channel = format!("rt-{name}");
        let ack = c.subscribe("s1", &channel, None).await.unwrap();
        assert_eq!(ack.position.as_ref().unwrap().seq, 0);
        assert_eq!(
            ack.recovery.unwrap().status,
            v2::RecoveryStatus::NotRequested as i32
        );
        let pack = c
            .publish("p1", &channel, serde_json::json!({"text": "hi", "n": 1.5}))
            .await
            .unwrap();
        assert_eq!(
            (pack.id.as_str(), pack.seq, pack.duplicate),
            ("p1", 1, false)
        );
        let m = c.message().await.unwrap();
        assert_eq!(
            (m.seq, m.id.as_str(), m.publisher.as_str()),
            (1, "p1", c.welcome.session_id.as_str())
        );
        assert_eq!(
            courier_protocol::wire::payload::to_json(&m.payload).unwrap(),
            serde_json::json!({"text": "hi", "n": 1.5})
        );
    }
}

#[tokio::test]
async fn session_ids_are_unique() {
    let s = server(|_| {}).await;
    let mut ids = std::collections::HashSet::new();
    for _ in 0..5 {
        let c = Client::json(&s).await.unwrap();
        assert!(ids.insert(c.welcome.session_id.clone()));
    }
}

#[tokio::test]
async fn hello_deadline_closes_4005() {
    let s = server(|c| c.hello_timeout_ms = 150).await;
    let mut c = raw_client(&s, "courier.v2.json").await;
    expect_close(&mut c, close::AUTH_TIMEOUT).await;
}

#[tokio::test]
async fn request_before_hello_closes_4003() {
    let s = server(|_| {}).await;
    let mut c = raw_client(&s, "courier.v2.msgpack").await;
    c.send(Body::Subscribe(v2::Subscribe {
        id: "s".into(),
        channel: "a".into(),
        resume: None,
    }))
    .await
    .unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
    let mut c = raw_client(&s, "courier.v2.json").await;
    c.send(Body::Ping(v2::Ping { ts: 1 })).await.unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
}

#[tokio::test]
async fn second_hello_closes_4003() {
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    c.send(Body::Hello(v2::Hello::default())).await.unwrap();
    expect_close(&mut c, close::PROTOCOL_VIOLATION).await;
}

#[tokio::test]
async fn malformed_frames_close_4000_in_every_encoding() {
    let s = server(|_| {}).await;
    for name in all_subprotocols() {
        let mut c = Client::open(&s, name, "", &[]).await.unwrap();
        let garbage: &'static [u8] = match sp(name).encoding {
            courier_protocol::Encoding::Json => b"{not json",
            courier_protocol::Encoding::MsgPack => b"\xc1",
            // Field 10 (publish), length 5, but only 2 bytes follow.
            courier_protocol::Encoding::Protobuf => b"\x52\x05ab",
        };
        c.send_bytes(bytes::Bytes::from_static(garbage))
            .await
            .unwrap();
        expect_close(&mut c, close::BAD_FRAME).await;
    }
    // Wrong frame kind: binary on a JSON session (ENC-FRAME-TYPE).
    let mut c = Client::json(&s).await.unwrap();
    use futures_util::SinkExt;
    c.ws.send(Message::Binary(bytes::Bytes::from_static(
        br#"{"type":"ping","ts":1}"#,
    )))
    .await
    .unwrap();
    expect_close(&mut c, close::BAD_FRAME).await;
}

#[tokio::test]
async fn unknown_type_closes_4001_and_v1_refuses_batch() {
    let s = server(|_| {}).await;
    let mut c = Client::json(&s).await.unwrap();
    c.send_bytes(bytes::Bytes::from_static(
        br#"{"type":"teleport","id":"x"}"#,
    ))
    .await
    .unwrap();
    expect_close(&mut c, close::UNKNOWN_TYPE).await;
    let mut c = Client::open(&s, "courier.v1.json", "", &[]).await.unwrap();
    c.send_bytes(bytes::Bytes::from_static(
        br#"{"type":"batch","envelopes":[]}"#,
    ))
    .await
    .unwrap();
    expect_close(&mut c, close::UNKNOWN_TYPE).await;
}

#[tokio::test]
async fn hello_pipelined_with_requests_is_processed_in_order() {
    let s = server(|_| {}).await;
    let mut c = raw_client(&s, "courier.v2.json").await;
    c.send(Body::Hello(v2::Hello::default())).await.unwrap();
    c.send(Body::Subscribe(v2::Subscribe {
        id: "s1".into(),
        channel: "pipe".into(),
        resume: None,
    }))
    .await
    .unwrap();
    c.send(Body::Ping(v2::Ping { ts: 9 })).await.unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::Welcome(_)));
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::SubscribeAck(_)
    ));
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::Pong(v2::Pong { ts: 9 })
    ));
}
