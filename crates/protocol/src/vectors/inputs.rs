//! Hand-built inputs for the `decode` and `invalid` vector files: the
//! non-canonical forms a decoder must accept and the hostile or broken ones
//! it must reject, in each encoding.

use serde_json::{json, Value};

use super::{hex, Decode, Invalid};
use crate::{close, Version, DEFAULT_MAX_MESSAGE_BYTES};

/// MessagePack building blocks, written out by hand so the inputs can use
/// forms Courier's own encoder never produces.
mod mp {
    pub fn map(n: u8) -> Vec<u8> {
        vec![0x80 | n]
    }
    pub fn s(v: &str) -> Vec<u8> {
        let mut out = vec![0xa0 | v.len() as u8];
        out.extend_from_slice(v.as_bytes());
        out
    }
    pub fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }
}

/// Protobuf building blocks.
mod pb {
    pub fn varint(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }
    pub fn uint(field: u32, v: u64) -> Vec<u8> {
        [varint(u64::from(field) << 3), varint(v)].concat()
    }
    pub fn len(field: u32, body: &[u8]) -> Vec<u8> {
        [
            varint((u64::from(field) << 3) | 2),
            varint(body.len() as u64),
            body.to_vec(),
        ]
        .concat()
    }
    pub fn string(field: u32, s: &str) -> Vec<u8> {
        len(field, s.as_bytes())
    }
}

fn text(name: &str, description: &str, input: &str, value: Value) -> Decode {
    Decode {
        name: name.into(),
        description: description.into(),
        encoding: "json",
        input: hex(input.as_bytes()),
        input_text: Some(input.into()),
        value,
    }
}

fn binary(
    name: &str,
    description: &str,
    encoding: &'static str,
    input: &[u8],
    value: Value,
) -> Decode {
    Decode {
        name: name.into(),
        description: description.into(),
        encoding,
        input: hex(input),
        input_text: None,
        value,
    }
}

/// Inputs that must decode to the given value.
pub fn decode(version: Version) -> Vec<Decode> {
    let ping = json!({"type": "ping", "ts": 7});
    let publish =
        json!({"type": "publish", "id": "p-1", "channel": "chat", "payload": {"text": "hi"}});
    let mut v = vec![
        text(
            "json_unknown_fields",
            "Unknown members, at top level and in a nested message, are ignored (ENC-UNKNOWN-FIELD).",
            r#"{"type":"subscribe_ack","id":"s-1","future":{"a":[1,2,{"b":null}]},"position":{"epoch":"e","seq":3,"later":true},"channel":"c"}"#,
            json!({"type": "subscribe_ack", "id": "s-1", "channel": "c", "position": {"epoch": "e", "seq": 3}}),
        ),
        text(
            "json_type_last",
            "`type` may come after the other members (ENC-JSON-FLAT).",
            r#"{"id":"p-1","channel":"chat","payload":{"text":"hi"},"type":"publish"}"#,
            publish.clone(),
        ),
        text(
            "json_whitespace",
            "Whitespace around and inside the object is allowed (ENC-ONE-ENVELOPE).",
            " \n{ \"type\" : \"ping\" ,\t\"ts\" : 7 }\r\n ",
            ping.clone(),
        ),
        text(
            "json_explicit_defaults",
            "Fields explicitly present with their default value are accepted (ENC-DEFAULTS-OMITTED).",
            r#"{"type":"publish_ack","id":"p-1","channel":"","epoch":"","seq":0,"duplicate":false}"#,
            json!({"type": "publish_ack", "id": "p-1"}),
        ),
        text(
            "json_enum_by_number",
            "An enum value given by number reads as that value (ENC-ENUM-NAMES).",
            r#"{"type":"error","code":2,"message":"no"}"#,
            json!({"type": "error", "code": "ERROR_CODE_FORBIDDEN", "message": "no"}),
        ),
        text(
            "json_unknown_enum_name",
            "An enum name this version does not define reads as UNSPECIFIED, which is then omitted (ENC-UNKNOWN-ENUM).",
            r#"{"type":"error","code":"ERROR_CODE_FROM_THE_FUTURE","message":"no"}"#,
            json!({"type": "error", "message": "no"}),
        ),
        text(
            "json_unknown_enum_number",
            "An enum number this version does not define reads as UNSPECIFIED (ENC-UNKNOWN-ENUM).",
            r#"{"type":"presence_event","channel":"c","action":99}"#,
            json!({"type": "presence_event", "channel": "c"}),
        ),
        text(
            "json_camel_case_is_unknown",
            "proto3 JSON camelCase names are not Courier names: ignored as unknown fields.",
            r#"{"type":"welcome","sessionId":"x","session_id":"s-1","heartbeatIntervalMs":5}"#,
            json!({"type": "welcome", "session_id": "s-1"}),
        ),
        text(
            "json_payload_integral_float",
            "A payload number written as 2.0 is the number 2 (ENC-NUMBER-EQUIV); payload key order is kept.",
            r#"{"type":"publish","id":"p-1","channel":"chat","payload":{"z":2.0,"a":-0.5}}"#,
            json!({"type": "publish", "id": "p-1", "channel": "chat", "payload": {"z": 2, "a": -0.5}}),
        ),
        binary(
            "msgpack_unknown_fields",
            "Unknown map entries are ignored (ENC-UNKNOWN-FIELD).",
            "msgpack",
            &mp::cat(&[mp::map(3), mp::s("type"), mp::s("ping"), mp::s("future"), vec![0x92, 0x01, 0xc0], mp::s("ts"), vec![7]]),
            ping.clone(),
        ),
        binary(
            "msgpack_type_last",
            "`type` may come after the other entries (ENC-JSON-FLAT).",
            "msgpack",
            &mp::cat(&[
                mp::map(4),
                mp::s("id"),
                mp::s("p-1"),
                mp::s("channel"),
                mp::s("chat"),
                mp::s("payload"),
                mp::map(1),
                mp::s("text"),
                mp::s("hi"),
                mp::s("type"),
                mp::s("publish"),
            ]),
            publish.clone(),
        ),
        binary(
            "msgpack_wide_headers",
            "Integers, strings and maps in wider headers than needed are accepted (ENC-INT-FORM).",
            "msgpack",
            &mp::cat(&[
                vec![0xde, 0x00, 0x02],
                vec![0xd9, 4],
                b"type".to_vec(),
                vec![0xda, 0x00, 0x04],
                b"ping".to_vec(),
                mp::s("ts"),
                vec![0xcf, 0, 0, 0, 0, 0, 0, 0, 7],
            ]),
            ping.clone(),
        ),
        binary(
            "msgpack_signed_int_marker",
            "A non-negative integer under a signed marker is accepted (ENC-INT-FORM).",
            "msgpack",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping"), mp::s("ts"), vec![0xd1, 0x00, 0x07]]),
            ping.clone(),
        ),
        binary(
            "msgpack_unknown_enum_name",
            "An enum name this version does not define reads as UNSPECIFIED (ENC-UNKNOWN-ENUM).",
            "msgpack",
            &mp::cat(&[mp::map(3), mp::s("type"), mp::s("error"), mp::s("code"), mp::s("ERROR_CODE_NEW"), mp::s("id"), mp::s("x")]),
            json!({"type": "error", "id": "x"}),
        ),
        binary(
            "msgpack_float32_payload",
            "A `float 32` in a payload reads as the float64 of the same value.",
            "msgpack",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("rpc_response"), mp::s("payload"), vec![0xca, 0x3f, 0xc0, 0, 0]]),
            json!({"type": "rpc_response", "payload": 1.5}),
        ),
        binary(
            "protobuf_unknown_fields",
            "Unknown field numbers, in the envelope and in the body, are skipped (ENC-UNKNOWN-FIELD).",
            "protobuf",
            &[pb::string(100, "future"), pb::len(19, &[pb::uint(1, 7), pb::uint(15, 1)].concat())].concat(),
            ping.clone(),
        ),
        binary(
            "protobuf_unknown_enum_number",
            "An enum number this version does not define reads as UNSPECIFIED (ENC-UNKNOWN-ENUM).",
            "protobuf",
            &pb::len(7, &[pb::string(1, "s-1"), pb::len(4, &[pb::uint(1, 9), pb::uint(2, 42)].concat())].concat()),
            json!({"type": "subscribe_ack", "id": "s-1", "recovery": {}}),
        ),
        binary(
            "protobuf_fields_out_of_order",
            "Fields in any order, and a repeated scalar field, last one winning (proto3).",
            "protobuf",
            &pb::len(11, &[pb::uint(4, 3), pb::string(1, "p-1"), pb::uint(4, 42)].concat()),
            json!({"type": "publish_ack", "id": "p-1", "seq": 42}),
        ),
        binary(
            "protobuf_last_body_wins",
            "Two oneof members: the last one wins (ENC-PROTOBUF).",
            "protobuf",
            &[pb::len(19, &pb::uint(1, 5)), pb::len(20, &pb::uint(1, 7))].concat(),
            json!({"type": "pong", "ts": 7}),
        ),
    ];
    // ENC-DEFAULTS-OMITTED: null reads as the default for every kind of
    // field, except payloads, where null is a value.
    let mp_null = |k: &str| mp::cat(&[mp::s(k), vec![0xc0]]);
    v.extend([
        text(
            "json_keys_differ_by_case",
            "Keys are compared exactly: `ts` and `Ts` are different keys, and `Ts` is unknown (ENC-UNKNOWN-FIELD).",
            r#"{"type":"ping","ts":7,"Ts":8,"payload":{"a":1,"A":2}}"#,
            json!({"type": "ping", "ts": 7}),
        ),
        text(
            "json_null_scalar",
            "A null 64-bit field reads as 0, like a missing one (ENC-DEFAULTS-OMITTED).",
            r#"{"type":"ping","ts":null}"#,
            json!({"type": "ping"}),
        ),
        text(
            "json_null_every_field_kind",
            "Null for a uint32, an enum, a string, a repeated field, a uint64, a message and a \
             proto3 `optional` field reads as the default (unset for `optional`) (ENC-DEFAULTS-OMITTED).",
            r#"{"type":"welcome","version":null,"encoding":null,"session_id":"s-1","features":null,"heartbeat_interval_ms":null,"limits":null,"token_expires_at_ms":null,"server":null}"#,
            json!({"type": "welcome", "session_id": "s-1"}),
        ),
        text(
            "json_null_bool",
            "A null bool reads as false (ENC-DEFAULTS-OMITTED).",
            r#"{"type":"publish_ack","id":"p-1","seq":null,"duplicate":null}"#,
            json!({"type": "publish_ack", "id": "p-1"}),
        ),
        text(
            "json_null_in_nested_messages",
            "Null fields inside nested messages read as defaults; the messages stay present (ENC-DEFAULTS-OMITTED).",
            r#"{"type":"subscribe_ack","id":"s-1","channel":"c","position":{"epoch":null,"seq":null},"recovery":{"status":null,"reason":null,"replayed":null}}"#,
            json!({"type": "subscribe_ack", "id": "s-1", "channel": "c", "position": {}, "recovery": {}}),
        ),
        text(
            "json_null_payload_is_a_value",
            "A null payload is the payload value null, not a missing payload (ENC-PAYLOAD-WIRE).",
            r#"{"type":"rpc_response","id":"c-1","payload":null}"#,
            json!({"type": "rpc_response", "id": "c-1", "payload": null}),
        ),
        binary(
            "msgpack_null_every_field_kind",
            "nil for a uint32, an enum, a string, a repeated field, a message and a proto3 \
             `optional` field reads as the default (ENC-DEFAULTS-OMITTED).",
            "msgpack",
            &mp::cat(&[
                mp::map(8),
                mp::s("type"),
                mp::s("welcome"),
                mp_null("version"),
                mp_null("encoding"),
                mp::s("session_id"),
                mp::s("s-1"),
                mp_null("features"),
                mp_null("limits"),
                mp_null("token_expires_at_ms"),
                mp_null("user"),
            ]),
            json!({"type": "welcome", "session_id": "s-1"}),
        ),
        binary(
            "msgpack_null_scalar",
            "A nil 64-bit field reads as 0 (ENC-DEFAULTS-OMITTED).",
            "msgpack",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("pong"), mp_null("ts")]),
            json!({"type": "pong"}),
        ),
        binary(
            "msgpack_null_payload_is_a_value",
            "A nil payload is the payload value null (ENC-PAYLOAD-WIRE).",
            "msgpack",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("rpc_response"), mp_null("payload")]),
            json!({"type": "rpc_response", "payload": null}),
        ),
    ]);
    if version == Version::V2 {
        v.extend([
            text(
                "json_null_optional_v2",
                "A null proto3 `optional` field reads as unset, so it is not written back (ENC-DEFAULTS-OMITTED).",
                r#"{"type":"error","message":"m","retry_after_ms":null}"#,
                json!({"type": "error", "message": "m"}),
            ),
            text(
                "json_null_batch",
                "A null repeated message field reads as empty (ENC-DEFAULTS-OMITTED).",
                r#"{"type":"batch","envelopes":null}"#,
                json!({"type": "batch"}),
            ),
        ]);
    }
    if version == Version::V1 {
        v.extend([
            text(
                "json_v2_fields_dropped",
                "A v1 decoder ignores fields only v2 defines (ENC-UNKNOWN-FIELD).",
                r#"{"type":"error","id":"s-5","code":"ERROR_CODE_INTERNAL","retry_after_ms":500}"#,
                json!({"type": "error", "id": "s-5", "code": "ERROR_CODE_INTERNAL"}),
            ),
            binary(
                "protobuf_v2_fields_dropped",
                "A v1 decoder ignores field numbers only v2 defines (Disconnect.retry_after_ms).",
                "protobuf",
                &pb::len(22, &[pb::uint(1, 1001), pb::uint(3, 250)].concat()),
                json!({"type": "disconnect", "code": 1001}),
            ),
        ]);
    }
    v
}

struct Bad {
    encoding: &'static str,
    frame: Option<&'static str>,
    limit: usize,
}

const JSON: Bad = Bad {
    encoding: "json",
    frame: None,
    limit: DEFAULT_MAX_MESSAGE_BYTES,
};
const MSGPACK: Bad = Bad {
    encoding: "msgpack",
    frame: None,
    limit: DEFAULT_MAX_MESSAGE_BYTES,
};
const PROTOBUF: Bad = Bad {
    encoding: "protobuf",
    frame: None,
    limit: DEFAULT_MAX_MESSAGE_BYTES,
};

fn bad(how: Bad, name: &str, description: &str, input: &[u8], error: &'static str) -> Invalid {
    let close_code = match error {
        "too_large" => close::MESSAGE_TOO_BIG,
        "unknown_type" => close::UNKNOWN_TYPE,
        _ => close::BAD_FRAME,
    };
    let natural = if how.encoding == "json" {
        "text"
    } else {
        "binary"
    };
    let input_text = std::str::from_utf8(input)
        .ok()
        .filter(|s| s.len() <= 200)
        .map(str::to_string);
    Invalid {
        name: name.into(),
        description: description.into(),
        encoding: how.encoding,
        frame: how.frame.unwrap_or(natural),
        max_message_bytes: how.limit,
        input: hex(input),
        input_text,
        error,
        close_code,
    }
}

fn nested(open: &str, close: &str, depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

/// Inputs that must be rejected with the given error.
pub fn invalid(version: Version) -> Vec<Invalid> {
    let small = |b: Bad| Bad { limit: 64, ..b };
    let j = |name, description, input: &str, error| {
        bad(JSON, name, description, input.as_bytes(), error)
    };
    let deep_payload = format!(
        r#"{{"type":"publish","id":"p","channel":"c","payload":{}}}"#,
        nested("[", "]", 65, "")
    );
    let deep_batch = {
        let mut s = r#"{"type":"ping"}"#.to_string();
        for _ in 0..200 {
            s = format!(r#"{{"type":"batch","envelopes":[{s}]}}"#);
        }
        s
    };
    let mp_publish = |payload: &[u8]| {
        mp::cat(&[
            mp::map(3),
            mp::s("type"),
            mp::s("publish"),
            mp::s("id"),
            mp::s("p"),
            mp::s("payload"),
            payload.to_vec(),
        ])
    };
    let pb_publish =
        |payload: &[u8]| pb::len(10, &[pb::string(1, "p"), pb::len(3, payload)].concat());
    let mut v = vec![
        bad(
            small(JSON),
            "json_too_large",
            "A frame over the limit is rejected before parsing (CLOSE-OVERSIZE); the limit here is 64 bytes.",
            format!(r#"{{"type":"publish","id":"p","channel":"c","payload":"{}"}}"#, "x".repeat(40)).as_bytes(),
            "too_large",
        ),
        bad(
            small(JSON),
            "json_too_large_garbage",
            "Size is checked before anything else: oversized garbage is too_large, not malformed.",
            &[0xff; 65],
            "too_large",
        ),
        bad(
            Bad { frame: Some("binary"), ..JSON },
            "json_in_binary_frame",
            "A JSON session receives a binary frame (ENC-FRAME-TYPE).",
            br#"{"type":"ping","ts":7}"#,
            "wrong_frame_kind",
        ),
        j("json_truncated", "The text ends inside the object.", r#"{"type":"ping","ts":"#, "malformed"),
        j("json_not_json", "Not JSON at all.", "ping", "malformed"),
        j("json_empty", "An empty frame.", "", "malformed"),
        j("json_trailing_data", "Bytes after the envelope (ENC-ONE-ENVELOPE).", r#"{"type":"ping"} {"type":"pong"}"#, "malformed"),
        j("json_array_root", "The envelope is not an object.", r#"[{"type":"ping"}]"#, "malformed"),
        j("json_unknown_type", "A type this version does not define (ENC-UNKNOWN-TYPE).", r#"{"type":"teleport","to":"mars"}"#, "unknown_type"),
        j("json_missing_type", "No `type` member (ENC-UNKNOWN-TYPE).", r#"{"ts":7}"#, "unknown_type"),
        j("json_type_not_string", "A `type` that is not a string (ENC-UNKNOWN-TYPE).", r#"{"type":19,"ts":7}"#, "unknown_type"),
        j("json_type_wrong_case", "Type names are case-sensitive (ENC-UNKNOWN-TYPE).", r#"{"type":"Ping","ts":7}"#, "unknown_type"),
        j("json_int53_overflow", "A 64-bit field above 2^53-1 (ENC-INT53).", r#"{"type":"ping","ts":9007199254740992}"#, "malformed"),
        j("json_negative_unsigned", "A negative value in an unsigned field (ENC-INT-FORM).", r#"{"type":"ping","ts":-1}"#, "malformed"),
        j("json_fractional_integer", "A fraction in an integer field (ENC-INT-FORM).", r#"{"type":"ping","ts":1.5}"#, "malformed"),
        j("json_quoted_integer", "An integer field written as a string (ENC-INT-FORM).", r#"{"type":"ping","ts":"7"}"#, "malformed"),
        j("json_uint32_overflow", "A uint32 field above 2^32-1 (ENC-INT-FORM).", r#"{"type":"disconnect","code":4294967296}"#, "malformed"),
        j("json_string_field_number", "A string field holding a number.", r#"{"type":"unsubscribe","id":"u","channel":5}"#, "malformed"),
        j("json_enum_wrong_kind", "An enum field that is neither a name nor a number.", r#"{"type":"error","code":true}"#, "malformed"),
        j("json_duplicate_field", "A member written twice (ENC-JSON-FLAT: keys are unique).", r#"{"type":"ping","ts":1,"ts":2}"#, "malformed"),
        j("json_duplicate_type", "`type` written twice: malformed, whichever comes first (ENC-JSON-FLAT).", r#"{"type":"ping","type":"pong"}"#, "malformed"),
        j("json_duplicate_type_same_value", "`type` written twice with the same value (ENC-JSON-FLAT).", r#"{"type":"ping","type":"ping"}"#, "malformed"),
        j("json_duplicate_type_unknown_first", "An unknown `type`, then a known one: the repeated key makes it malformed, not an unknown type (ENC-JSON-FLAT).", r#"{"type":"teleport","type":"ping"}"#, "malformed"),
        j("json_duplicate_type_not_first", "`type` twice after another member (the decoder's buffering path) (ENC-JSON-FLAT).", r#"{"ts":1,"type":"ping","type":"pong"}"#, "malformed"),
        j("json_duplicate_unknown_field", "An unknown member written twice: still a repeated key (ENC-JSON-FLAT).", r#"{"type":"ping","future":1,"future":2}"#, "malformed"),
        j("json_duplicate_inside_unknown_field", "A repeated key inside the value of an unknown member, which is otherwise ignored (ENC-JSON-FLAT).", r#"{"type":"ping","future":{"a":1,"a":2}}"#, "malformed"),
        j("json_duplicate_in_unknown_type", "A repeated key in an envelope of an unknown type: malformed wins over unknown (ENC-JSON-FLAT).", r#"{"type":"teleport","to":"mars","to":"venus"}"#, "malformed"),
        j("json_duplicate_escaped_key", "The same key once escaped and once not: `t\\u0073` is `ts` (ENC-JSON-FLAT).", r#"{"type":"ping","t\u0073":1,"ts":2}"#, "malformed"),
        j("json_duplicate_in_nested_message", "A repeated key in a nested message (ENC-JSON-FLAT).", r#"{"type":"subscribe","id":"s","channel":"c","resume":{"epoch":"e","epoch":"f"}}"#, "malformed"),
        j("json_duplicate_payload_key", "A payload object with a repeated key (ENC-PAYLOAD-INVALID).", r#"{"type":"publish","id":"p","channel":"c","payload":{"a":1,"b":{"c":1,"c":1}}}"#, "malformed"),
        j("json_null_list_element", "A null element of a repeated field: elements are values, not fields, so null is not their default (ENC-DEFAULTS-OMITTED).", r#"{"type":"hello","features":["a",null]}"#, "malformed"),
        bad(
            MSGPACK,
            "msgpack_null_list_element",
            "A nil element of a repeated field (ENC-DEFAULTS-OMITTED covers fields, not elements).",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("hello"), mp::s("features"), vec![0x92, 0xc0, 0xa1, b'a']]),
            "malformed",
        ),
        j("json_payload_too_deep", "A payload nested 65 arrays deep (ENC-PAYLOAD).", &deep_payload, "malformed"),
        bad(
            JSON,
            "json_invalid_utf8",
            "A string that is not UTF-8.",
            &[br#"{"type":"unsubscribe","id":"u","channel":""#.as_slice(), &[0xc3, 0x28], br#""}"#].concat(),
            "malformed",
        ),
        bad(
            Bad { frame: Some("text"), ..MSGPACK },
            "msgpack_in_text_frame",
            "A MessagePack session receives a text frame (ENC-FRAME-TYPE).",
            &mp::cat(&[mp::map(1), mp::s("type"), mp::s("ping")]),
            "wrong_frame_kind",
        ),
        bad(small(MSGPACK), "msgpack_too_large", "A frame over the limit (64 bytes here) (CLOSE-OVERSIZE).", &mp_publish(&mp::s(&"y".repeat(60))), "too_large"),
        bad(MSGPACK, "msgpack_truncated", "The input ends inside the map.", &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping")]), "malformed"),
        bad(MSGPACK, "msgpack_empty", "An empty frame.", &[], "malformed"),
        bad(MSGPACK, "msgpack_trailing_data", "Bytes after the envelope (ENC-ONE-ENVELOPE).", &mp::cat(&[mp::map(1), mp::s("type"), mp::s("ping"), vec![0xc0]]), "malformed"),
        bad(MSGPACK, "msgpack_array_root", "The envelope is not a map.", &[0x91, 0x01], "malformed"),
        bad(MSGPACK, "msgpack_unknown_type", "A type this version does not define (ENC-UNKNOWN-TYPE).", &mp::cat(&[mp::map(1), mp::s("type"), mp::s("teleport")]), "unknown_type"),
        bad(MSGPACK, "msgpack_missing_type", "No `type` entry (ENC-UNKNOWN-TYPE).", &mp::cat(&[mp::map(1), mp::s("ts"), vec![7]]), "unknown_type"),
        bad(MSGPACK, "msgpack_type_not_string", "A `type` that is not a string (ENC-UNKNOWN-TYPE).", &mp::cat(&[mp::map(1), mp::s("type"), vec![19]]), "unknown_type"),
        bad(
            MSGPACK,
            "msgpack_int53_overflow",
            "A 64-bit field above 2^53-1 (ENC-INT53).",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping"), mp::s("ts"), vec![0xcf, 0, 0x20, 0, 0, 0, 0, 0, 0]]),
            "malformed",
        ),
        bad(
            MSGPACK,
            "msgpack_float_integer",
            "A float in an integer field (ENC-INT-FORM).",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping"), mp::s("ts"), vec![0xcb, 0x40, 0x1c, 0, 0, 0, 0, 0, 0]]),
            "malformed",
        ),
        bad(MSGPACK, "msgpack_payload_ext", "An extension type in a payload (ENC-PAYLOAD-INVALID).", &mp_publish(&[0xd4, 0x01, 0x00]), "malformed"),
        bad(MSGPACK, "msgpack_payload_int_key", "A payload map key that is not a string (ENC-PAYLOAD-INVALID).", &mp_publish(&[0x81, 0x01, 0x02]), "malformed"),
        bad(MSGPACK, "msgpack_payload_nan", "NaN in a payload (ENC-PAYLOAD-INVALID).", &mp_publish(&[0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0]), "malformed"),
        bad(MSGPACK, "msgpack_reserved_marker", "The reserved marker 0xc1 (ENC-PAYLOAD-INVALID).", &mp_publish(&[0xc1]), "malformed"),
        bad(
            MSGPACK,
            "msgpack_duplicate_type",
            "`type` written twice (ENC-JSON-FLAT: keys are unique).",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping"), mp::s("type"), mp::s("pong")]),
            "malformed",
        ),
        bad(
            MSGPACK,
            "msgpack_duplicate_field",
            "A field written twice (ENC-JSON-FLAT).",
            &mp::cat(&[mp::map(3), mp::s("type"), mp::s("ping"), mp::s("ts"), vec![1], mp::s("ts"), vec![2]]),
            "malformed",
        ),
        bad(
            MSGPACK,
            "msgpack_duplicate_payload_key",
            "A payload map with a repeated key (ENC-PAYLOAD-INVALID).",
            &mp_publish(&mp::cat(&[mp::map(2), mp::s("a"), vec![1], mp::s("a"), vec![2]])),
            "malformed",
        ),
        bad(
            MSGPACK,
            "msgpack_int_key_in_unknown_field",
            "A map with an integer key inside an unknown field: MessagePack envelopes use the JSON object model, whose keys are strings (ENC-JSON-FLAT).",
            &mp::cat(&[mp::map(2), mp::s("type"), mp::s("ping"), mp::s("future"), vec![0x81, 0x01, 0x02]]),
            "malformed",
        ),
        bad(
            MSGPACK,
            "msgpack_huge_length",
            "A header announcing 4 GiB of entries in a 10-byte frame: rejected without allocating (ENC-NO-PANIC).",
            &[0xdf, 0xff, 0xff, 0xff, 0xff, 0xa4, b't', b'y', b'p', b'e'],
            "malformed",
        ),
        bad(
            Bad { frame: Some("text"), ..PROTOBUF },
            "protobuf_in_text_frame",
            "A Protobuf session receives a text frame (ENC-FRAME-TYPE).",
            &pb::len(19, &pb::uint(1, 7)),
            "wrong_frame_kind",
        ),
        bad(small(PROTOBUF), "protobuf_too_large", "A frame over the limit (64 bytes here) (CLOSE-OVERSIZE).", &pb_publish(&mp::s(&"z".repeat(60))), "too_large"),
        bad(PROTOBUF, "protobuf_empty", "An empty frame has no body (ENC-UNKNOWN-TYPE).", &[], "unknown_type"),
        bad(PROTOBUF, "protobuf_unknown_body", "Only an unknown oneof member: no known body (ENC-UNKNOWN-TYPE).", &pb::len(99, &pb::uint(1, 1)), "unknown_type"),
        bad(PROTOBUF, "protobuf_truncated", "A length-delimited field longer than the frame.", &[0x9a, 0x01, 0x05, 0x08], "malformed"),
        bad(PROTOBUF, "protobuf_bad_varint", "A varint longer than 10 bytes.", &[0x9a, 0x01, 0x0b, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], "malformed"),
        bad(PROTOBUF, "protobuf_wrong_wire_type", "A body sent as a varint instead of a message.", &pb::uint(19, 7), "malformed"),
        bad(PROTOBUF, "protobuf_invalid_utf8", "A string field that is not UTF-8.", &pb::len(8, &pb::len(2, &[0xc3, 0x28])), "malformed"),
        bad(PROTOBUF, "protobuf_int53_overflow", "A 64-bit field above 2^53-1 (ENC-INT53).", &pb::len(19, &pb::uint(1, 1 << 53)), "invalid"),
        bad(PROTOBUF, "protobuf_payload_not_msgpack", "Payload bytes that are not a MessagePack value (ENC-PAYLOAD-INVALID).", &pb_publish(&[0xc1]), "invalid"),
        bad(PROTOBUF, "protobuf_payload_trailing", "Payload bytes holding two values (ENC-PAYLOAD-INVALID).", &pb_publish(&[0x01, 0x02]), "invalid"),
        bad(PROTOBUF, "protobuf_payload_truncated", "Payload bytes cut short (ENC-PAYLOAD-INVALID).", &pb_publish(&[0x92, 0x01]), "invalid"),
        bad(
            PROTOBUF,
            "protobuf_payload_duplicate_key",
            "Payload bytes holding a map with a repeated key (ENC-PAYLOAD-INVALID).",
            &pb_publish(&mp::cat(&[mp::map(2), mp::s("k"), vec![1], mp::s("k"), vec![1]])),
            "invalid",
        ),
    ];
    if version == Version::V2 {
        v.extend([
            j(
                "json_batch_too_deep",
                "Batches nested 200 deep: a typed error, no stack overflow (ENC-NO-PANIC).",
                &deep_batch,
                "malformed",
            ),
            j(
                "json_duplicate_type_in_batch",
                "`type` written twice in an envelope inside a batch (ENC-JSON-FLAT).",
                r#"{"type":"batch","envelopes":[{"type":"ping","type":"pong"}]}"#,
                "malformed",
            ),
            j(
                "json_null_in_batch",
                "A null where a batch holds an envelope: not an envelope (ENC-DEFAULTS-OMITTED covers fields, not elements).",
                r#"{"type":"batch","envelopes":[{"type":"ping"},null]}"#,
                "malformed",
            ),
            j(
                "json_unknown_type_in_batch",
                "An unknown type inside a batch (ENC-UNKNOWN-TYPE).",
                r#"{"type":"batch","envelopes":[{"type":"ping"},{"type":"teleport"}]}"#,
                "unknown_type",
            ),
        ]);
    } else {
        v.extend([
            j(
                "json_v1_batch",
                "`batch` does not exist in v1 (BATCH-V2-ONLY).",
                r#"{"type":"batch","envelopes":[{"type":"ping"}]}"#,
                "unknown_type",
            ),
            j(
                "json_v1_reauth_request",
                "`reauth_request` does not exist in v1.",
                r#"{"type":"reauth_request","deadline_ms":1000}"#,
                "unknown_type",
            ),
            bad(
                MSGPACK,
                "msgpack_v1_batch",
                "`batch` does not exist in v1 (BATCH-V2-ONLY).",
                &mp::cat(&[
                    mp::map(2),
                    mp::s("type"),
                    mp::s("batch"),
                    mp::s("envelopes"),
                    vec![0x90],
                ]),
                "unknown_type",
            ),
            bad(
                PROTOBUF,
                "protobuf_v1_reauth_request",
                "Field 5 (`reauth_request`) does not exist in v1.",
                &pb::len(5, &pb::uint(1, 1000)),
                "unknown_type",
            ),
        ]);
    }
    v
}
