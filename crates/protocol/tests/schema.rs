//! The checked-in JSON Schemas in `schema/`: fresh, and accurate (every
//! canonical JSON encoding validates; wrong ones do not).

mod common;

use courier_protocol::schema::{envelope_schema, Dialect};
use courier_protocol::{examples, Codec, Encoding, Subprotocol, Version};
use serde_json::json;

#[test]
fn schemas_are_fresh() {
    let files: Vec<_> = [Version::V1, Version::V2]
        .into_iter()
        .map(|v| {
            let text = serde_json::to_string_pretty(&envelope_schema(v, Dialect::Draft2020_12))
                .unwrap()
                + "\n";
            (format!("schema/{v}/envelope.schema.json"), text)
        })
        .collect();
    common::assert_fresh(&files);
}

#[test]
fn schema_says_it_is_generated() {
    for version in Version::ALL {
        let schema = envelope_schema(version, Dialect::Draft2020_12);
        assert!(schema["$comment"].as_str().unwrap().contains("do not edit"));
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
    }
}

#[test]
fn every_example_validates() {
    for version in Version::ALL {
        let validator = common::schema_validator(version);
        let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
        for ex in examples::all(version) {
            let value: serde_json::Value =
                serde_json::from_slice(&codec.encode(&ex.envelope).unwrap()).unwrap();
            let errors: Vec<_> = validator
                .iter_errors(&value)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{version} {}: {errors:?}", ex.name);
        }
    }
}

#[test]
fn schema_rejects_what_the_protocol_rejects() {
    let v2 = common::schema_validator(Version::V2);
    let v1 = common::schema_validator(Version::V1);
    let bad = [
        json!({"ts": 7}),
        json!({"type": "teleport"}),
        json!({"type": "ping", "ts": -1}),
        json!({"type": "ping", "ts": 9007199254740992_u64}),
        json!({"type": "ping", "ts": "7"}),
        json!({"type": "error", "code": "NOT_A_CODE"}),
        json!({"type": "subscribe", "channel": 5}),
        json!({"type": "batch", "envelopes": [{"type": "teleport"}]}),
        json!([]),
    ];
    for value in bad {
        assert!(!v2.is_valid(&value), "v2 schema accepts {value}");
    }
    assert!(v2.is_valid(&json!({"type": "batch", "envelopes": [{"type": "ping", "ts": 1}]})));
    assert!(!v1.is_valid(&json!({"type": "batch", "envelopes": []})));
    assert!(!v1.is_valid(&json!({"type": "reauth_request", "deadline_ms": 5})));
    // Unknown fields are allowed (ENC-UNKNOWN-FIELD).
    assert!(v2.is_valid(&json!({"type": "ping", "ts": 1, "future": true})));
}
