//! proptest strategies for every v2 message: 53-bit-safe integers, payloads
//! of the JSON data model, and (for v1) only fields version 1 defines.

use bytes::Bytes;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::wire::msgpack::MAX_SAFE_INTEGER;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use serde_json::Value;

pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![4 => "[a-z0-9._-]{0,10}", 1 => "\\PC{0,6}"]
}

pub fn u53() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0..1_000_000u64, 1 => 0..=MAX_SAFE_INTEGER, 1 => Just(MAX_SAFE_INTEGER)]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        (-(MAX_SAFE_INTEGER as i64)..=MAX_SAFE_INTEGER as i64).prop_map(Value::from),
        // Multiples of 1/8 print and parse exactly in every language.
        any::<i32>().prop_map(|i| Value::from(f64::from(i) / 8.0)),
        "\\PC{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A payload field: absent (empty) or a JSON-model value.
pub fn payload() -> impl Strategy<Value = Bytes> {
    option::weighted(0.9, json_value()).prop_map(|v| match v {
        None => Bytes::new(),
        Some(v) => courier_protocol::wire::payload::from_json(&v).unwrap(),
    })
}

fn position() -> impl Strategy<Value = v2::StreamPosition> {
    (text(), u53()).prop_map(|(epoch, seq)| v2::StreamPosition { epoch, seq })
}

fn member() -> impl Strategy<Value = v2::PresenceMember> {
    (text(), text(), payload()).prop_map(|(session_id, user, info)| v2::PresenceMember {
        session_id,
        user,
        info,
    })
}

fn limits(v2_fields: bool) -> impl Strategy<Value = v2::Limits> {
    (any::<[u32; 7]>(), u53()).prop_map(move |(n, ttl)| v2::Limits {
        max_message_bytes: n[0],
        max_messages_per_second: n[1],
        max_burst: n[2],
        send_queue_frames: n[3],
        max_subscriptions: n[4],
        history_size: n[5],
        history_ttl_ms: ttl,
        max_batch: if v2_fields { n[6] } else { 0 },
    })
}

fn v2_only(v2_fields: bool) -> impl Strategy<Value = Option<u64>> {
    option::of(u53()).prop_map(move |v| v.filter(|_| v2_fields))
}

/// A body of any type both versions define (v2-only fields set only when
/// `v2_fields`).
pub fn common_body(v2_fields: bool) -> BoxedStrategy<Body> {
    let session = prop_oneof![
        (text(), text(), vec(text(), 0..3)).prop_map(|(token, client, features)| Body::Hello(
            v2::Hello {
                token,
                client,
                features
            }
        )),
        (
            (0..3u32, 0..4i32, text(), vec(text(), 0..3)),
            (u53(), u53(), u53(), option::of(limits(v2_fields))),
            (option::of(u53()), text(), text(), any::<u32>())
        )
            .prop_map(
                move |(
                    (version, encoding, session_id, features),
                    (hi, hg, dw, limits),
                    (exp, server, user, dedupe_max),
                )| {
                    Body::Welcome(v2::Welcome {
                        version,
                        encoding,
                        session_id,
                        features,
                        heartbeat_interval_ms: hi,
                        heartbeat_grace_ms: hg,
                        dedupe_window_ms: dw,
                        limits,
                        token_expires_at_ms: exp,
                        server,
                        user,
                        dedupe_max_per_channel: if v2_fields { dedupe_max } else { 0 },
                    })
                }
            ),
        (text(), text()).prop_map(|(id, token)| Body::Refresh(v2::Refresh { id, token })),
        (text(), option::of(u53())).prop_map(|(id, exp)| Body::Refreshed(v2::Refreshed {
            id,
            token_expires_at_ms: exp
        })),
        u53().prop_map(|ts| Body::Ping(v2::Ping { ts })),
        u53().prop_map(|ts| Body::Pong(v2::Pong { ts })),
        (text(), 0..9i32, text(), text(), v2_only(v2_fields)).prop_map(
            |(id, code, message, channel, retry)| {
                Body::Error(v2::Error {
                    id,
                    code,
                    message,
                    channel,
                    retry_after_ms: retry,
                })
            }
        ),
        (any::<u32>(), text(), v2_only(v2_fields)).prop_map(|(code, reason, retry)| {
            Body::Disconnect(v2::Disconnect {
                code,
                reason,
                retry_after_ms: retry,
            })
        }),
    ];
    let channels = prop_oneof![
        (text(), text(), option::of(position())).prop_map(|(id, channel, resume)| Body::Subscribe(
            v2::Subscribe {
                id,
                channel,
                resume
            }
        )),
        (
            text(),
            text(),
            option::of(position()),
            option::of((0..4i32, 0..5i32, u53()))
        )
            .prop_map(|(id, channel, position, r)| {
                let recovery = r.map(|(status, reason, replayed)| v2::Recovery {
                    status,
                    reason,
                    replayed,
                });
                Body::SubscribeAck(v2::SubscribeAck {
                    id,
                    channel,
                    position,
                    recovery,
                })
            }),
        (text(), text())
            .prop_map(|(id, channel)| Body::Unsubscribe(v2::Unsubscribe { id, channel })),
        (text(), text())
            .prop_map(|(id, channel)| Body::UnsubscribeAck(v2::UnsubscribeAck { id, channel })),
        (text(), text(), payload()).prop_map(|(id, channel, payload)| Body::Publish(v2::Publish {
            id,
            channel,
            payload
        })),
        (text(), text(), text(), u53(), any::<bool>()).prop_map(
            |(id, channel, epoch, seq, duplicate)| {
                Body::PublishAck(v2::PublishAck {
                    id,
                    channel,
                    epoch,
                    seq,
                    duplicate,
                })
            }
        ),
        ((text(), text(), u53(), text()), (u53(), payload(), text())).prop_map(
            |((channel, epoch, seq, id), (ts, payload, publisher))| {
                Body::Message(v2::Message {
                    channel,
                    epoch,
                    seq,
                    id,
                    ts,
                    payload,
                    publisher,
                })
            }
        ),
        (text(), payload(), text()).prop_map(|(channel, payload, publisher)| Body::Ephemeral(
            v2::Ephemeral {
                channel,
                payload,
                publisher
            }
        )),
    ];
    let other = prop_oneof![
        (text(), text())
            .prop_map(|(id, channel)| Body::PresenceQuery(v2::PresenceQuery { id, channel })),
        (text(), text(), vec(member(), 0..3)).prop_map(|(id, channel, members)| Body::Presence(
            v2::Presence {
                id,
                channel,
                members
            }
        )),
        (text(), 0..3i32, option::of(member())).prop_map(|(channel, action, member)| {
            Body::PresenceEvent(v2::PresenceEvent {
                channel,
                action,
                member,
            })
        }),
        (text(), text(), payload()).prop_map(|(id, method, payload)| Body::RpcRequest(
            v2::RpcRequest {
                id,
                method,
                payload
            }
        )),
        (text(), payload())
            .prop_map(|(id, payload)| Body::RpcResponse(v2::RpcResponse { id, payload })),
    ];
    prop_oneof![session, channels, other].boxed()
}

fn wrap(body: Body) -> v2::Envelope {
    v2::Envelope { body: Some(body) }
}

/// Any v2 envelope, batches included (holding no batch).
pub fn v2_envelope() -> impl Strategy<Value = v2::Envelope> {
    prop_oneof![
        8 => common_body(true).prop_map(wrap),
        1 => (u53(), text()).prop_map(|(deadline_ms, reason)| wrap(Body::ReauthRequest(v2::ReauthRequest { deadline_ms, reason }))),
        1 => vec(common_body(true).prop_map(wrap), 0..4).prop_map(|envelopes| wrap(Body::Batch(v2::Batch { envelopes }))),
    ]
}

/// Any envelope version 1 defines, as the shared v2 type.
pub fn v1_envelope() -> impl Strategy<Value = v2::Envelope> {
    common_body(false).prop_map(wrap)
}

/// The proptest configuration of the protocol tests: `cases` per property
/// (sized for CI), `PROPTEST_CASES` overriding it for longer local runs.
pub fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}
