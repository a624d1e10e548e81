//! One realistic example of every message type of each protocol version.
//!
//! The examples feed the insta snapshots, the cross-language vectors in
//! `conformance/vectors/`, the documentation site and the TypeScript tests,
//! so they are deterministic (no clock, no randomness) and exercise every
//! field: each one is set to a meaningful non-default value, except where the
//! spec forbids the combination (a `recovery` with status `FAILED` carries a
//! `reason` and therefore no `replayed` count).
//!
//! # Examples
//!
//! ```
//! use courier_protocol::examples::{self, Direction};
//! use courier_protocol::{Codec, Encoding, Subprotocol, Version};
//!
//! for version in Version::ALL {
//!     for example in examples::all(version) {
//!         let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
//!         let frame = codec.encode(&example.envelope).unwrap();
//!         let back = codec.decode::<courier_protocol::v2::Envelope>(&frame).unwrap();
//!         assert_eq!(back, example.envelope, "{}", example.name);
//!     }
//! }
//! assert_eq!(examples::direction_of("publish"), Direction::ClientToServer);
//! ```

use bytes::Bytes;
use serde_json::json;

use crate::v2::{self, envelope::Body};
use crate::Version;

/// Who may send a message type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Only clients send it (`hello`, `subscribe`, `publish`, ...).
    ClientToServer,
    /// Only servers send it (`welcome`, `message`, `error`, ...).
    ServerToClient,
    /// Either peer sends it (`ping`, `pong`, `ephemeral`, `batch`).
    Both,
}

impl Direction {
    /// A short lowercase name: `client_to_server`, `server_to_client`, `both`
    /// (the form used in `conformance/vectors/`).
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client_to_server",
            Direction::ServerToClient => "server_to_client",
            Direction::Both => "both",
        }
    }
}

/// One example envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The envelope's type name (`subscribe_ack`), as on the JSON wire.
    pub name: &'static str,
    /// Who sends this type.
    pub direction: Direction,
    /// The example itself.
    pub envelope: v2::Envelope,
}

/// The direction of the message type `type_name` (the oneof field name).
/// Unknown names are reported as [`Direction::Both`].
pub fn direction_of(type_name: &str) -> Direction {
    use Direction::*;
    match type_name {
        "hello" | "refresh" | "subscribe" | "unsubscribe" | "publish" | "presence_query"
        | "rpc_request" => ClientToServer,
        "welcome" | "refreshed" | "reauth_request" | "subscribe_ack" | "unsubscribe_ack"
        | "publish_ack" | "message" | "presence" | "presence_event" | "rpc_response" | "error"
        | "disconnect" => ServerToClient,
        _ => Both,
    }
}

/// One example of every message type `version` defines, in the field-number
/// order of the `Envelope.body` oneof. Version 1 examples set no field that
/// only version 2 defines, so they encode identically as v1 and v2.
pub fn all(version: Version) -> Vec<Example> {
    let v2 = version == Version::V2;
    let mut bodies = vec![
        Body::Hello(v2::Hello {
            token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl".into(),
            client: "courier-ts/0.1.0".into(),
            features: vec!["presence".into(), "rpc".into()],
        }),
        Body::Welcome(welcome(version)),
        Body::Refresh(v2::Refresh {
            id: "r-7".into(),
            token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMzYwMH0.c2ln".into(),
        }),
        Body::Refreshed(v2::Refreshed {
            id: "r-7".into(),
            token_expires_at_ms: Some(1_700_003_600_000),
        }),
    ];
    if v2 {
        bodies.push(Body::ReauthRequest(v2::ReauthRequest {
            deadline_ms: 30_000,
            reason: "token expires in 30 s".into(),
        }));
    }
    bodies.extend([
        Body::Subscribe(v2::Subscribe {
            id: "s-1".into(),
            channel: "chat.lobby".into(),
            resume: Some(v2::StreamPosition {
                epoch: "k3x9".into(),
                seq: 41,
            }),
        }),
        Body::SubscribeAck(v2::SubscribeAck {
            id: "s-1".into(),
            channel: "chat.lobby".into(),
            position: Some(v2::StreamPosition {
                epoch: "k3x9".into(),
                seq: 57,
            }),
            recovery: Some(v2::Recovery {
                status: v2::RecoveryStatus::Failed as i32,
                reason: v2::RecoveryReason::HistoryExpired as i32,
                replayed: 0,
            }),
        }),
        Body::Unsubscribe(v2::Unsubscribe {
            id: "u-2".into(),
            channel: "chat.lobby".into(),
        }),
        Body::UnsubscribeAck(v2::UnsubscribeAck {
            id: "u-2".into(),
            channel: "chat.lobby".into(),
        }),
        Body::Publish(v2::Publish {
            id: "p-42".into(),
            channel: "chat.lobby".into(),
            payload: payload(json!({"text": "hello, lobby", "mentions": ["bob"], "draft": false})),
        }),
        Body::PublishAck(v2::PublishAck {
            id: "p-42".into(),
            channel: "chat.lobby".into(),
            epoch: "k3x9".into(),
            seq: 58,
            duplicate: true,
        }),
        Body::Message(message(
            58,
            "p-42",
            json!({"text": "hello, lobby", "mentions": ["bob"], "draft": false}),
        )),
        Body::PresenceQuery(v2::PresenceQuery {
            id: "q-3".into(),
            channel: "chat.lobby".into(),
        }),
        Body::Presence(v2::Presence {
            id: "q-3".into(),
            channel: "chat.lobby".into(),
            members: vec![
                member(
                    "sess-a1",
                    "alice",
                    json!({"name": "Alice", "status": "online"}),
                ),
                member("sess-b2", "bob", json!({"name": "Bob", "status": "away"})),
            ],
        }),
        Body::PresenceEvent(v2::PresenceEvent {
            channel: "chat.lobby".into(),
            action: v2::PresenceAction::Join as i32,
            member: Some(member(
                "sess-c3",
                "carol",
                json!({"name": "Carol", "status": "online"}),
            )),
        }),
        Body::Ephemeral(v2::Ephemeral {
            channel: "chat.lobby".into(),
            payload: payload(json!({"typing": true})),
            publisher: "sess-a1".into(),
        }),
        Body::RpcRequest(v2::RpcRequest {
            id: "c-9".into(),
            method: "rooms.list".into(),
            payload: payload(json!({"prefix": "chat.", "limit": 20})),
        }),
        Body::RpcResponse(v2::RpcResponse {
            id: "c-9".into(),
            payload: payload(json!({"rooms": ["chat.lobby", "chat.random"], "more": false})),
        }),
        Body::Ping(v2::Ping {
            ts: 1_700_000_000_000,
        }),
        Body::Pong(v2::Pong {
            ts: 1_700_000_000_000,
        }),
        Body::Error(v2::Error {
            id: "s-5".into(),
            code: v2::ErrorCode::Forbidden as i32,
            message: "scope `admin` required to subscribe".into(),
            channel: "private.admin".into(),
            retry_after_ms: v2.then_some(5_000),
        }),
        Body::Disconnect(v2::Disconnect {
            code: u32::from(crate::close::GOING_AWAY),
            reason: "server shutting down".into(),
            retry_after_ms: v2.then_some(2_500),
        }),
    ]);
    if v2 {
        bodies.push(Body::Batch(v2::Batch {
            envelopes: vec![
                envelope(Body::Message(message(59, "p-43", json!({"text": "first"})))),
                envelope(Body::Message(message(
                    60,
                    "p-44",
                    json!({"text": "second"}),
                ))),
            ],
        }));
    }
    bodies
        .into_iter()
        .map(|body| {
            let envelope = envelope(body);
            let name = crate::WireEnvelope::type_name(&envelope).expect("every example has a body");
            Example {
                name,
                direction: direction_of(name),
                envelope,
            }
        })
        .collect()
}

/// The example of type `name` for `version`, if that version defines it.
pub fn get(version: Version, name: &str) -> Option<Example> {
    all(version).into_iter().find(|e| e.name == name)
}

fn envelope(body: Body) -> v2::Envelope {
    v2::Envelope { body: Some(body) }
}

fn payload(value: serde_json::Value) -> Bytes {
    crate::wire::payload::from_json(&value).expect("example payloads are JSON-model values")
}

fn welcome(version: Version) -> v2::Welcome {
    let v2 = version == Version::V2;
    let mut features = vec!["presence".to_string(), "rpc".into(), "ephemeral".into()];
    if v2 {
        features.extend(["batch".to_string(), "reauth".into()]);
    }
    v2::Welcome {
        version: version.number(),
        encoding: v2::Encoding::Json as i32,
        session_id: "sess-a1".into(),
        features,
        heartbeat_interval_ms: 25_000,
        heartbeat_grace_ms: 10_000,
        dedupe_window_ms: 120_000,
        limits: Some(v2::Limits {
            max_message_bytes: 65_536,
            max_messages_per_second: 100,
            max_burst: 200,
            send_queue_frames: 1_024,
            max_subscriptions: 256,
            history_size: 1_000,
            history_ttl_ms: 300_000,
            max_batch: if v2 { 64 } else { 0 },
        }),
        token_expires_at_ms: Some(1_700_003_600_000),
        server: "courier/0.1.0".into(),
        user: "alice".into(),
        dedupe_max_per_channel: if v2 { 100_000 } else { 0 },
    }
}

fn message(seq: u64, id: &str, value: serde_json::Value) -> v2::Message {
    v2::Message {
        channel: "chat.lobby".into(),
        epoch: "k3x9".into(),
        seq,
        id: id.into(),
        ts: 1_700_000_000_000 + seq,
        payload: payload(value),
        publisher: "sess-a1".into(),
    }
}

fn member(session_id: &str, user: &str, info: serde_json::Value) -> v2::PresenceMember {
    v2::PresenceMember {
        session_id: session_id.into(),
        user: user.into(),
        info: payload(info),
    }
}
