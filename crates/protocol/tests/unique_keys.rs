//! Repeated keys are malformed anywhere in a JSON or MessagePack frame
//! (ENC-JSON-FLAT, ENC-PAYLOAD-INVALID), on every path the decoder has:
//! few keys and many (the key set changes representation past eight),
//! escaped JSON keys (which the parser hands over as temporaries), `type`
//! first or late, known, unknown and skipped members, payloads.

use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{Codec, DecodeError, Encoding, Subprotocol, Version};
use serde_json::{json, Map, Value};

fn codec(encoding: Encoding) -> Codec {
    Codec::new(Subprotocol::new(Version::V2, encoding))
}

/// Decodes JSON `text`, and the same object as MessagePack when it parses
/// (serde_json keeps the last of repeated keys, so those inputs are built
/// for MessagePack by [`mp_object`] instead).
fn json(text: &str) -> Result<v2::Envelope, DecodeError> {
    codec(Encoding::Json).decode(text.as_bytes())
}

/// A MessagePack map from `entries`, in order, repeated keys kept.
fn mp_object(entries: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    rmp::encode::write_map_len(&mut out, entries.len() as u32).unwrap();
    for (k, v) in entries {
        rmp::encode::write_str(&mut out, k).unwrap();
        out.extend(rmp_serde::to_vec(v).unwrap());
    }
    out
}

fn msgpack(bytes: &[u8]) -> Result<v2::Envelope, DecodeError> {
    codec(Encoding::MsgPack).decode(bytes)
}

fn malformed(r: Result<v2::Envelope, DecodeError>) -> bool {
    matches!(r, Err(DecodeError::Malformed { .. }))
}

/// `{"type":"ping","ts":7, "f0":0, ..., "f<n-1>":n-1}` with `extra` appended.
fn many(n: usize, extra: &str) -> String {
    let fields: String = (0..n).map(|i| format!(",\"f{i}\":{i}")).collect();
    format!(r#"{{"type":"ping","ts":7{fields}{extra}}}"#)
}

#[test]
fn repeated_keys_among_many_members() {
    for n in [0, 3, 7, 8, 9, 40] {
        assert!(json(&many(n, "")).is_ok(), "{n} distinct members");
        assert!(
            malformed(json(&many(n, r#","ts":8"#))),
            "{n}: known field repeated last"
        );
        assert!(
            malformed(json(&many(n, r#","type":"ping""#))),
            "{n}: type repeated last"
        );
        if n > 0 {
            assert!(
                malformed(json(&many(n, r#","f0":1"#))),
                "{n}: first unknown repeated last"
            );
            let last = format!(",\"f{}\":1", n - 1);
            assert!(
                malformed(json(&many(n, &last))),
                "{n}: last unknown repeated"
            );
        }
    }
}

#[test]
fn escaped_keys_compare_by_their_text() {
    assert!(malformed(json(r#"{"type":"ping","\u0061":1,"a":2}"#)));
    assert!(malformed(json(r#"{"type":"ping","a":1,"\u0061":2}"#)));
    assert!(malformed(json(r#"{"\u0074ype":"ping","type":"pong"}"#)));
    assert!(json(r#"{"type":"ping","\u0061":1,"b":2}"#).is_ok());
    // An escaped `type` is `type`.
    let env = json(r#"{"t\u0079pe":"pong","ts":3}"#).unwrap();
    assert_eq!(env.body, Some(Body::Pong(v2::Pong { ts: 3 })));
    // Past eight keys, escaped keys join the same set.
    let escaped: String = (0..12).map(|i| format!(",\"\\u0066{i}\":{i}")).collect();
    assert!(json(&format!(r#"{{"type":"ping"{escaped}}}"#)).is_ok());
    assert!(malformed(json(&format!(
        r#"{{"type":"ping"{escaped},"f11":0}}"#
    ))));
}

#[test]
fn payload_objects_need_unique_keys_at_every_depth() {
    let publish = |payload: &str| {
        format!(r#"{{"type":"publish","id":"p","channel":"c","payload":{payload}}}"#)
    };
    assert!(json(&publish(r#"{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}"#)).is_ok());
    assert!(malformed(json(&publish(r#"{"a":1,"b":2,"a":3}"#))));
    assert!(malformed(json(&publish(r#"[[{"x":1,"x":1}]]"#))));
    let wide: Map<String, Value> = (0..30).map(|i| (format!("k{i}"), json!(i))).collect();
    let wide = Value::Object(wide).to_string();
    assert!(json(&publish(&wide)).is_ok());
    let repeated = wide.replacen("\"k29\"", "\"k3\"", 1);
    assert!(malformed(json(&publish(&repeated))));
}

#[test]
fn msgpack_frames_follow_the_same_rule() {
    let ping = || ("type", json!("ping"));
    assert!(msgpack(&mp_object(&[ping(), ("ts", json!(1))])).is_ok());
    assert!(malformed(msgpack(&mp_object(&[ping(), ping()]))));
    assert!(malformed(msgpack(&mp_object(&[
        ("ts", json!(1)),
        ping(),
        ("ts", json!(1))
    ]))));
    let mut entries = vec![ping()];
    let names: Vec<String> = (0..20).map(|i| format!("f{i}")).collect();
    entries.extend(names.iter().map(|n| (n.as_str(), json!(null))));
    assert!(msgpack(&mp_object(&entries)).is_ok());
    entries.push(("f4", json!(1)));
    assert!(malformed(msgpack(&mp_object(&entries))));
    // A repeated key inside a skipped value, and under an unknown type.
    let inner = mp_object(&[("a", json!(1)), ("a", json!(2))]);
    let mut frame = mp_object(&[ping(), ("future", json!(null))]);
    frame.pop();
    frame.extend(&inner);
    assert!(malformed(msgpack(&frame)));
    assert!(malformed(msgpack(&mp_object(&[
        ("type", json!("teleport")),
        ("x", json!(1)),
        ("x", json!(2))
    ]))));
}

#[test]
fn protobuf_payload_bytes_need_unique_keys() {
    let c = codec(Encoding::Protobuf);
    let mut env = v2::Envelope {
        body: Some(Body::Publish(v2::Publish {
            id: "p".into(),
            channel: "c".into(),
            payload: mp_object(&[("a", json!(1)), ("b", json!(1))]).into(),
        })),
    };
    assert!(c
        .decode::<v2::Envelope>(&prost::Message::encode_to_vec(&env))
        .is_ok());
    if let Some(Body::Publish(p)) = &mut env.body {
        p.payload = mp_object(&[("a", json!(1)), ("a", json!(1))]).into();
    }
    let err = c
        .decode::<v2::Envelope>(&prost::Message::encode_to_vec(&env))
        .unwrap_err();
    assert!(matches!(err, DecodeError::Invalid(_)), "{err:?}");
}
