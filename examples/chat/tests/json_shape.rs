//! The JSON form of typed payloads, as a JSON client (or the TypeScript
//! bindings) sees it inside a `publish`: field names as declared, enums by
//! name, bytes as base64, 64-bit integers as numbers, defaults omitted,
//! oneofs as an object under the oneof's name, maps as objects with string
//! keys (ENC-TYPED-PAYLOAD, docs/codegen.md).

use std::collections::HashMap;

use courier_example_chat::chat::moderation::v1::{moderation_event, Action, ModerationEvent};
use courier_example_chat::chat::v1::{chat_message, Author, ChatMessage, MessageKind, Visibility};
use courier_protocol::{v2, wire, Codec, Subprotocol};
use serde_json::json;

/// The payload of `value` as a JSON client receives it, from a real frame.
fn json_payload<T: wire::serde::Serialize>(value: &T) -> serde_json::Value {
    let mut envelope: serde_json::Value = serde_json::from_str(&json_frame(value)).unwrap();
    envelope["payload"].take()
}

/// The JSON frame of a publish of `value`, as text (key order as sent;
/// `serde_json::Value` would sort keys).
fn json_frame<T: wire::serde::Serialize>(value: &T) -> String {
    let codec = Codec::new("courier.v2.json".parse::<Subprotocol>().unwrap());
    let frame = codec
        .encode(&v2::Envelope {
            body: Some(v2::envelope::Body::Publish(v2::Publish {
                id: "p".into(),
                channel: "c".into(),
                payload: wire::to_payload(value).unwrap(),
            })),
        })
        .unwrap();
    String::from_utf8(frame.to_vec()).unwrap()
}

/// Reads a JSON payload the way a server relays a JSON client's publish.
fn from_json<T: wire::serde::de::DeserializeOwned>(
    payload: serde_json::Value,
) -> Result<T, wire::PayloadError> {
    from_json_text(&payload.to_string())
}

/// [`from_json`] from JSON text, whose key order is kept.
fn from_json_text<T: wire::serde::de::DeserializeOwned>(
    payload: &str,
) -> Result<T, wire::PayloadError> {
    let frame = format!(r#"{{"type":"publish","id":"p","channel":"c","payload":{payload}}}"#);
    let codec = Codec::new("courier.v2.json".parse::<Subprotocol>().unwrap());
    let envelope: v2::Envelope = codec.decode(frame.as_bytes()).unwrap();
    let Some(v2::envelope::Body::Publish(p)) = envelope.body else {
        unreachable!()
    };
    wire::from_payload(&p.payload)
}

#[test]
fn chat_message_json_shape() {
    let message = ChatMessage {
        id: "m-1".into(),
        author: Some(Author {
            id: "u-ada".into(),
            display_name: String::new(),
        }),
        mentions: vec!["u-grace".into()],
        kind: MessageKind::User as i32,
        edited_at: Some(0),
        attachments: vec![chat_message::Attachment {
            name: "a".into(),
            data: vec![0xfbu8, 0xff].into(),
            size: 9_007_199_254_740_991,
            kind: chat_message::attachment::Kind::File as i32,
            ..Default::default()
        }],
        body: Some(chat_message::Body::Text("hi".into())),
        metadata: HashMap::from([("z".into(), "26".into()), ("a".into(), "1".into())]),
        flags: vec![chat_message::Flag::Pinned as i32],
        visibility: None,
        ..Default::default()
    };
    let got = json_payload(&message);
    assert_eq!(
        got,
        json!({
            "id": "m-1",
            "author": {"id": "u-ada"},
            "mentions": ["u-grace"],
            "kind": "MESSAGE_KIND_USER",
            "edited_at": 0,
            "attachments": [{"name": "a", "data": "+/8=", "size": 9_007_199_254_740_991u64, "kind": "KIND_FILE"}],
            "metadata": {"a": "1", "z": "26"},
            "flags": ["FLAG_PINNED"],
            "body": {"text": "hi"}
        })
    );
    // Map keys are written in sorted order, whatever the HashMap's order;
    // fields in declaration order, oneofs after them (as prost lays out
    // the struct).
    let text = json_frame(&message);
    assert!(text.contains(r#""metadata":{"a":"1","z":"26"}"#), "{text}");
    assert!(text.contains(r#""payload":{"id":"m-1","author""#), "{text}");
    assert!(
        text.ends_with(r#""flags":["FLAG_PINNED"],"body":{"text":"hi"}}}"#),
        "{text}"
    );
    // Defaults are omitted, but a set `optional` field is written even at 0
    // and `null` (absent) optional fields are not written at all.
    assert!(got.get("visibility").is_none());
    assert_eq!(json_payload(&ChatMessage::default()), json!({}));
    assert_eq!(
        json_payload(&ChatMessage {
            visibility: Some(Visibility::Unspecified as i32),
            ..Default::default()
        }),
        json!({"visibility": "VISIBILITY_UNSPECIFIED"})
    );
    assert_eq!(from_json::<ChatMessage>(got).unwrap(), message);
}

#[test]
fn oneof_members_are_objects_under_the_oneof_name() {
    let cases = [
        (
            moderation_event::Target::UserId("u".into()),
            json!({"user_id": "u"}),
        ),
        (
            moderation_event::Target::Kind(MessageKind::Bot as i32),
            json!({"kind": "MESSAGE_KIND_BOT"}),
        ),
        // A member set to its default value is still written: it says which
        // member is set.
        (moderation_event::Target::Seq(0), json!({"seq": 0})),
        (
            moderation_event::Target::Fingerprint(vec![1u8, 2].into()),
            json!({"fingerprint": "AQI="}),
        ),
        (
            moderation_event::Target::Message(ChatMessage {
                id: "m".into(),
                ..Default::default()
            }),
            json!({"message": {"id": "m"}}),
        ),
    ];
    for (target, shape) in cases {
        let event = ModerationEvent {
            target: Some(target),
            ..Default::default()
        };
        let got = json_payload(&event);
        assert_eq!(got, json!({ "target": shape }));
        assert_eq!(from_json::<ModerationEvent>(got).unwrap(), event);
    }
}

#[test]
fn maps_with_non_string_keys_use_string_keys() {
    let event = ModerationEvent {
        strikes: HashMap::from([(10, Action::Ban as i32), (2, Action::Warn as i32)]),
        evidence: HashMap::from([("log".into(), vec![0xffu8].into())]),
        reviews: HashMap::from([(-5, true), (7, false)]),
        notes: HashMap::from([(true, "yes".into()), (false, "no".into())]),
        offsets: HashMap::from([("m".into(), -3)]),
        ..Default::default()
    };
    let got = json_payload(&event);
    assert_eq!(
        got,
        json!({
            "strikes": {"2": "ACTION_WARN", "10": "ACTION_BAN"},
            "evidence": {"log": "/w=="},
            "reviews": {"-5": true, "7": false},
            "notes": {"false": "no", "true": "yes"},
            "offsets": {"m": -3}
        })
    );
    // Numeric order, not string order: "2" before "10".
    let text = json_frame(&event);
    assert!(
        text.contains(r#""strikes":{"2":"ACTION_WARN","10":"ACTION_BAN"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#""reviews":{"-5":true,"7":false}"#),
        "{text}"
    );
    assert_eq!(from_json::<ModerationEvent>(got).unwrap(), event);
    // A key that is not a number of the key type is refused.
    assert!(from_json::<ModerationEvent>(json!({"strikes": {"x": "ACTION_BAN"}})).is_err());
    assert!(from_json::<ModerationEvent>(json!({"strikes": {"-1": "ACTION_BAN"}})).is_err());
}

#[test]
fn keyword_and_imported_fields_keep_their_proto_names() {
    let event = ModerationEvent {
        r#type: "auto".into(),
        position: Some(v2::StreamPosition {
            epoch: "e".into(),
            seq: 3,
        }),
        history_gap: v2::RecoveryReason::HistoryExpired as i32,
        ..Default::default()
    };
    assert_eq!(
        json_payload(&event),
        json!({
            "position": {"epoch": "e", "seq": 3},
            "history_gap": "RECOVERY_REASON_HISTORY_EXPIRED",
            "type": "auto"
        })
    );
}

#[test]
fn decoders_accept_the_lenient_forms() {
    // Enum numbers as well as names, null as the default, unknown fields
    // ignored (ENC-ENUM-NAMES, ENC-DEFAULTS-OMITTED, ENC-UNKNOWN-FIELD).
    let got: ChatMessage = from_json(json!({
        "kind": 3,
        "flags": [1, "FLAG_URGENT"],
        "id": null,
        "author": null,
        "mentions": null,
        "attachments": [{"name": null, "kind": null}],
        "added_in_v2": {"anything": [1, 2]},
    }))
    .unwrap();
    assert_eq!(got.kind, MessageKind::Bot as i32);
    assert_eq!(
        got.flags,
        vec![
            chat_message::Flag::Pinned as i32,
            chat_message::Flag::Urgent as i32
        ]
    );
    assert_eq!(got.author, None);
    assert_eq!(got.id, "");
    assert_eq!(got.attachments, vec![chat_message::Attachment::default()]);
    // An enum name this version does not know reads as UNSPECIFIED (ENC-UNKNOWN-ENUM).
    let got: ChatMessage = from_json(json!({"kind": "MESSAGE_KIND_FROM_THE_FUTURE"})).unwrap();
    assert_eq!(got.kind, 0);
}

#[test]
fn unknown_oneof_members_are_skipped_and_the_last_member_wins() {
    // A member added by a newer schema is an unknown field here: the rest
    // of the payload still reads, with no member set.
    let got: ChatMessage = from_json(json!({"id": "m", "body": {"video": {"url": "v"}}})).unwrap();
    assert_eq!(
        got,
        ChatMessage {
            id: "m".into(),
            ..Default::default()
        }
    );
    // Several members: the last one counts, as in Protobuf (and unknown
    // ones around it are ignored).
    let got: ChatMessage =
        from_json_text(r#"{"body":{"text":"a","video":1,"reaction":{"emoji":"x"}}}"#).unwrap();
    assert!(matches!(got.body, Some(chat_message::Body::Reaction(r)) if r.emoji == "x"));
    let got: ChatMessage =
        from_json_text(r#"{"body":{"reaction":{"emoji":"x"},"text":"a","video":1}}"#).unwrap();
    assert_eq!(got.body, Some(chat_message::Body::Text("a".into())));
    let got: ChatMessage = from_json(json!({"body": null})).unwrap();
    assert_eq!(got.body, None);
    // A known member with a wrong value is still an error.
    assert!(from_json::<ChatMessage>(json!({"body": {"text": 5}})).is_err());
}

#[test]
fn out_of_range_integers_are_refused() {
    // ENC-INT53: 64-bit fields stay within 2^53-1, wherever they are.
    let too_big = 9_007_199_254_740_992u64;
    assert!(from_json::<ChatMessage>(json!({"edited_at": too_big})).is_err());
    assert!(from_json::<ChatMessage>(json!({"attachments": [{"size": too_big}]})).is_err());
    assert!(from_json::<ChatMessage>(json!({"read_counts": {"u": too_big}})).is_err());
    assert!(from_json::<ModerationEvent>(json!({"target": {"seq": too_big}})).is_err());
    assert!(from_json::<ModerationEvent>(json!({"removed_seqs": [1, too_big]})).is_err());
    assert!(from_json::<ModerationEvent>(json!({"offsets": {"m": -(too_big as i64)}})).is_err());
    assert!(from_json::<ModerationEvent>(json!({"delta": -(too_big as i64)})).is_err());
    // ... and at the limit they are fine.
    assert!(from_json::<ModerationEvent>(json!({"target": {"seq": too_big - 1}})).is_ok());
}

#[test]
fn json_schema_matches_the_json_shape() {
    use wire::schemars;
    let schema = serde_json::to_value(schemars::schema_for!(ModerationEvent)).unwrap();
    let props = &schema["properties"];
    assert_eq!(
        props["actions"]["items"]["enum"],
        json!([
            "ACTION_UNSPECIFIED",
            "ACTION_WARN",
            "ACTION_MUTE",
            "ACTION_BAN"
        ])
    );
    assert_eq!(props["strikes"]["type"], "object");
    assert_eq!(props["strikes"]["propertyNames"]["pattern"], "^[0-9]+$");
    assert_eq!(
        props["evidence"]["additionalProperties"]["contentEncoding"],
        "base64"
    );
    assert_eq!(props["delta"]["maximum"], json!(9_007_199_254_740_991i64));
    assert!(
        props.get("type").is_some(),
        "keyword field under its proto name"
    );
}
