//! Forward compatibility and versions: unknown fields, enum values and types
//! (ENC-UNKNOWN-*), v1 as a wire subset of v2 (checked against the proto
//! descriptors), v2-only messages on v1 sessions, size limits before parsing
//! and hostile nesting (ENC-NO-PANIC).

mod common;

use std::collections::BTreeMap;

use courier_protocol::compat::V2_ONLY_TYPES;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{
    close, examples, Codec, DecodeError, EncodeError, Encoding, Subprotocol, Version,
};

fn codec(version: Version, encoding: Encoding) -> Codec {
    Codec::new(Subprotocol::new(version, encoding))
}

/// (message, field) -> (number, type, label, type name) of every field of a version.
fn fields(version: u32) -> BTreeMap<(String, String), (i32, i32, i32, String)> {
    let fds = courier_codegen::courier_descriptors(version).unwrap();
    let package = format!(".courier.v{version}.");
    let mut out = BTreeMap::new();
    for file in &fds.file {
        for m in &file.message_type {
            for f in &m.field {
                let type_name = f.type_name().trim_start_matches(&package).to_string();
                out.insert(
                    (m.name().to_string(), f.name().to_string()),
                    (f.number(), f.r#type() as i32, f.label() as i32, type_name),
                );
            }
        }
    }
    out
}

fn enum_values(version: u32) -> BTreeMap<(String, String), i32> {
    let fds = courier_codegen::courier_descriptors(version).unwrap();
    let mut out = BTreeMap::new();
    for file in &fds.file {
        for e in &file.enum_type {
            for v in &e.value {
                out.insert((e.name().to_string(), v.name().to_string()), v.number());
            }
        }
    }
    out
}

#[test]
fn v1_is_a_wire_subset_of_v2() {
    let (v1, v2) = (fields(1), fields(2));
    assert!(v1.len() > 80, "descriptors loaded: {} v1 fields", v1.len());
    for (key, def) in &v1 {
        assert_eq!(v2.get(key), Some(def), "v1 field {key:?} differs in v2");
    }
    let (e1, e2) = (enum_values(1), enum_values(2));
    for (key, n) in &e1 {
        assert_eq!(e2.get(key), Some(n), "v1 enum value {key:?} differs in v2");
    }
    // What v2 adds is exactly what compat.rs refuses (types) or strips (fields).
    let added: Vec<_> = v2
        .keys()
        .filter(|k| !v1.contains_key(*k))
        .cloned()
        .collect();
    let expected: Vec<(String, String)> = [
        ("Batch", "envelopes"),
        ("Disconnect", "retry_after_ms"),
        ("Envelope", "batch"),
        ("Envelope", "reauth_request"),
        ("Error", "retry_after_ms"),
        ("Limits", "max_batch"),
        ("ReauthRequest", "deadline_ms"),
        ("ReauthRequest", "reason"),
        ("Welcome", "dedupe_max_per_channel"),
    ]
    .iter()
    .map(|(m, f)| (m.to_string(), f.to_string()))
    .collect();
    assert_eq!(added, expected);
    let added_types: Vec<_> = added
        .iter()
        .filter(|(m, _)| m == "Envelope")
        .map(|(_, f)| f.as_str())
        .collect();
    let mut refused = V2_ONLY_TYPES.to_vec();
    refused.sort();
    assert_eq!(added_types, refused);
    let added_enums: Vec<_> = e2.keys().filter(|k| !e1.contains_key(*k)).collect();
    assert_eq!(
        added_enums,
        [&(
            "CloseCode".to_string(),
            "CLOSE_CODE_REAUTH_TIMEOUT".to_string()
        )]
    );
}

#[test]
fn v2_only_fields_are_stripped_for_v1_and_kept_for_v2() {
    // The fields found by `v1_is_a_wire_subset_of_v2`, set on the v2 examples.
    for name in ["welcome", "error", "disconnect"] {
        let ex = examples::get(Version::V2, name).unwrap();
        for encoding in Encoding::ALL {
            let v1: v2::Envelope = codec(Version::V1, encoding)
                .decode(&codec(Version::V1, encoding).encode(&ex.envelope).unwrap())
                .unwrap();
            let mut expected = ex.envelope.clone();
            match expected.body.as_mut().unwrap() {
                Body::Welcome(w) => {
                    w.limits.as_mut().unwrap().max_batch = 0;
                    w.dedupe_max_per_channel = 0;
                }
                Body::Error(e) => e.retry_after_ms = None,
                Body::Disconnect(d) => d.retry_after_ms = None,
                _ => unreachable!(),
            }
            assert_eq!(v1, expected, "{name} {encoding}");
            // A v2 frame read by a v1 decoder drops the same fields.
            let v2_frame = codec(Version::V2, encoding).encode(&ex.envelope).unwrap();
            assert_eq!(
                codec(Version::V1, encoding)
                    .decode::<v2::Envelope>(&v2_frame)
                    .unwrap(),
                expected
            );
        }
    }
}

#[test]
fn v2_only_types_are_refused_on_v1() {
    for name in V2_ONLY_TYPES {
        let ex = examples::get(Version::V2, name).unwrap();
        for encoding in Encoding::ALL {
            let err = codec(Version::V1, encoding)
                .encode(&ex.envelope)
                .unwrap_err();
            assert!(
                matches!(err, EncodeError::NotInVersion(t, Version::V1) if t == *name),
                "{err}"
            );
            let frame = codec(Version::V2, encoding).encode(&ex.envelope).unwrap();
            let err = codec(Version::V1, encoding)
                .decode::<v2::Envelope>(&frame)
                .unwrap_err();
            assert_eq!(
                err.close_code(),
                close::UNKNOWN_TYPE,
                "{name} {encoding}: {err}"
            );
        }
    }
}

#[test]
fn unknown_types_close_4001_in_every_encoding() {
    let json = br#"{"type":"teleport","to":"mars"}"#.as_slice();
    let mut msgpack = vec![0x82];
    for s in ["type", "teleport", "to", "mars"] {
        msgpack.push(0xa0 | s.len() as u8);
        msgpack.extend_from_slice(s.as_bytes());
    }
    let protobuf = [0xca, 0x01, 0x00].as_slice(); // field 25: not a body yet
    for (encoding, frame) in [
        (Encoding::Json, json),
        (Encoding::MsgPack, &msgpack),
        (Encoding::Protobuf, protobuf),
    ] {
        for version in Version::ALL {
            let err = codec(version, encoding)
                .decode::<v2::Envelope>(frame)
                .unwrap_err();
            assert!(
                matches!(&err, DecodeError::UnknownType(_)),
                "{encoding}: {err}"
            );
            assert_eq!(err.close_code(), close::UNKNOWN_TYPE);
        }
    }
}

#[test]
fn unknown_enum_numbers_read_as_unspecified() {
    // Every enum field of every message, set to a number no version defines,
    // in each encoding's own way of carrying a number.
    let cases = [
        r#"{"type":"welcome","encoding":77}"#,
        r#"{"type":"subscribe_ack","recovery":{"status":77,"reason":77}}"#,
        r#"{"type":"presence_event","action":77}"#,
        r#"{"type":"error","code":77}"#,
        r#"{"type":"batch","envelopes":[{"type":"error","code":77}]}"#,
    ];
    let json = codec(Version::V2, Encoding::Json);
    for case in cases {
        // JSON and, re-encoded with the unknown number kept, Protobuf.
        let raw: serde_json::Value = serde_json::from_str(case).unwrap();
        let decoded: v2::Envelope = json.decode(case.as_bytes()).unwrap();
        let zeroed = serde_json::to_value(&decoded).unwrap();
        assert!(!zeroed.to_string().contains("77"), "{case} -> {zeroed}");
        assert_ne!(raw, zeroed);
        let mut with_number = decoded.clone();
        set_enums(&mut with_number, 77);
        let pb = codec(Version::V2, Encoding::Protobuf);
        let back: v2::Envelope = pb.decode(&pb.encode(&with_number).unwrap()).unwrap();
        assert_eq!(back, decoded, "{case} via Protobuf");
    }
}

fn set_enums(e: &mut v2::Envelope, n: i32) {
    match e.body.as_mut().unwrap() {
        Body::Welcome(m) => m.encoding = n,
        Body::SubscribeAck(m) => {
            let r = m.recovery.as_mut().unwrap();
            (r.status, r.reason) = (n, n);
        }
        Body::PresenceEvent(m) => m.action = n,
        Body::Error(m) => m.code = n,
        Body::Batch(b) => b.envelopes.iter_mut().for_each(|e| set_enums(e, n)),
        _ => unreachable!(),
    }
}

#[test]
fn oversize_frames_are_rejected_before_parsing() {
    for encoding in Encoding::ALL {
        let c = codec(Version::V2, encoding).with_max_message_bytes(16);
        // 17 bytes of garbage: too large, not malformed, so no parsing ran.
        let err = c.decode::<v2::Envelope>(&[0xc1; 17]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::TooLarge {
                size: 17,
                limit: 16
            }
        );
        assert_eq!(err.close_code(), close::MESSAGE_TOO_BIG);
        // At the limit the frame is parsed (and here found malformed).
        let err = c.decode::<v2::Envelope>(&[0xc1; 16]).unwrap_err();
        assert_ne!(err.close_code(), close::MESSAGE_TOO_BIG, "{encoding}");
    }
}

fn deep_payload_json(depth: usize) -> String {
    format!(
        r#"{{"type":"publish","payload":{}1{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
}

#[test]
fn payload_nesting_is_limited_to_64_in_every_encoding() {
    let json = codec(Version::V2, Encoding::Json);
    let ok: v2::Envelope = json.decode(deep_payload_json(64).as_bytes()).unwrap();
    assert!(json
        .decode::<v2::Envelope>(deep_payload_json(65).as_bytes())
        .is_err());
    for encoding in [Encoding::MsgPack, Encoding::Protobuf] {
        let c = codec(Version::V2, encoding);
        let frame = c.encode(&ok).unwrap();
        assert_eq!(c.decode::<v2::Envelope>(&frame).unwrap(), ok, "{encoding}");
        // One level deeper, built by hand (an encoder refuses to write it).
        let Body::Publish(p) = ok.body.as_ref().unwrap() else {
            unreachable!()
        };
        let deeper = [&[0x91u8][..], &p.payload].concat();
        let frame = match encoding {
            Encoding::MsgPack => [
                &[0x82, 0xa4, b't', b'y', b'p', b'e', 0xa7][..],
                b"publish",
                &[0xa7],
                b"payload",
                &deeper,
            ]
            .concat(),
            _ => [
                &[0x52, deeper.len() as u8 + 2, 0x1a, deeper.len() as u8][..],
                &deeper,
            ]
            .concat(),
        };
        let err = c.decode::<v2::Envelope>(&frame).unwrap_err();
        assert_eq!(err.close_code(), close::BAD_FRAME, "{encoding}: {err}");
    }
}

#[test]
fn hostile_nesting_is_a_typed_error_not_a_stack_overflow() {
    // Run on a 2 MiB stack (a tokio worker's default) so that unbounded
    // recursion would crash the test; the decoders stop at 128 levels.
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(|| {
            let depth = 5_000;
            // JSON: batches in batches, and a payload of nested arrays.
            let mut batch = String::new();
            for _ in 0..depth {
                batch.push_str(r#"{"type":"batch","envelopes":["#);
            }
            batch.push_str(&"]}".repeat(depth));
            let json = codec(Version::V2, Encoding::Json).with_max_message_bytes(1 << 20);
            assert!(json.decode::<v2::Envelope>(batch.as_bytes()).is_err());
            assert!(json
                .decode::<v2::Envelope>(deep_payload_json(depth).as_bytes())
                .is_err());
            // MessagePack: the same batch tower.
            let mut mp = Vec::new();
            for _ in 0..depth {
                mp.extend_from_slice(&[
                    0x82, 0xa4, b't', b'y', b'p', b'e', 0xa5, b'b', b'a', b't', b'c', b'h',
                ]);
                mp.extend_from_slice(&[
                    0xa9, b'e', b'n', b'v', b'e', b'l', b'o', b'p', b'e', b's', 0x91,
                ]);
            }
            mp.push(0x80);
            let c = codec(Version::V2, Encoding::MsgPack).with_max_message_bytes(1 << 20);
            assert!(c.decode::<v2::Envelope>(&mp).is_err());
            // Protobuf: envelope { batch { envelopes { batch ... } } }.
            let mut pb: Vec<u8> = Vec::new();
            for _ in 0..depth {
                let inner = pb.clone();
                let mut batch = vec![0x0a];
                put_varint(&mut batch, inner.len());
                batch.extend_from_slice(&inner);
                pb = vec![0xba, 0x01];
                put_varint(&mut pb, batch.len());
                pb.extend_from_slice(&batch);
            }
            let c = codec(Version::V2, Encoding::Protobuf).with_max_message_bytes(1 << 20);
            assert!(c.decode::<v2::Envelope>(&pb).is_err());
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[test]
fn payload_to_json_on_hostile_bytes_allocates_nothing_huge() {
    // An array header announcing 2^32-1 items in a 5-byte input.
    let err = courier_protocol::wire::payload::to_json(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(err.is_err());
    let err = courier_protocol::wire::payload::to_json(&[0xdf, 0xff, 0xff, 0xff, 0xff]);
    assert!(err.is_err());
}

#[test]
fn unknown_fields_are_ignored_in_every_encoding() {
    let ex = examples::get(Version::V2, "publish_ack").unwrap();
    // JSON and MessagePack: an extra member of every JSON kind.
    let mut value = serde_json::to_value(&ex.envelope).unwrap();
    value["future"] = serde_json::json!({"a": [1, 2.5, null, "x"], "b": {"c": true}});
    let json = codec(Version::V2, Encoding::Json);
    assert_eq!(
        json.decode::<v2::Envelope>(value.to_string().as_bytes())
            .unwrap(),
        ex.envelope
    );
    let mp = codec(Version::V2, Encoding::MsgPack);
    let mut frame = vec![0x80 | (value.as_object().unwrap().len() as u8)];
    frame.extend_from_slice(&rmp_serde::to_vec(&value).unwrap()[1..]);
    assert_eq!(mp.decode::<v2::Envelope>(&frame).unwrap(), ex.envelope);
    // Protobuf: unknown numbers of every wire type, in the body and the envelope.
    let pb = codec(Version::V2, Encoding::Protobuf);
    let mut frame = pb.encode(&ex.envelope).unwrap().to_vec();
    let unknown = [
        0xc8, 0x3e, 0x01, 0xd1, 0x3e, 1, 2, 3, 4, 5, 6, 7, 8, 0xda, 0x3e, 0x01, 0x00, 0xe5, 0x3e,
        1, 2, 3, 4,
    ];
    frame.extend_from_slice(&unknown);
    assert_eq!(pb.decode::<v2::Envelope>(&frame).unwrap(), ex.envelope);
}
