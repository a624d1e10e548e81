//! The checked-in JSON Schemas in `schema/`: fresh, and accurate (every
//! canonical JSON encoding validates; wrong ones do not). The encoder
//! schema describes what encoders produce; the decoder schema also accepts
//! what decoders must read (enum numbers and unknown names, nulls), and the
//! JSON codec indeed reads every such value.

mod common;

use courier_protocol::schema::{decoder_schema, envelope_schema, Dialect};
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
        .chain([Version::V1, Version::V2].into_iter().map(|v| {
            let text = serde_json::to_string_pretty(&decoder_schema(v)).unwrap() + "\n";
            (format!("schema/{v}/envelope.decoder.schema.json"), text)
        }))
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

#[test]
fn a_misspelled_type_is_named_in_the_error() {
    for version in Version::ALL {
        let v = common::schema_validator(version);
        let errors: Vec<String> = v
            .iter_errors(&json!({"type": "publsh", "id": "p1", "channel": "c"}))
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("\"publsh\" is not one of")),
            "{version}: {errors:?}"
        );
        assert!(
            !errors
                .iter()
                .any(|e| e.contains("any of the given schemas")),
            "{version}: {errors:?}"
        );
        // A wrong field of a known type is reported at that field.
        let errors: Vec<String> = v
            .iter_errors(&json!({"type": "ping", "ts": "7"}))
            .map(|e| e.instance_path().to_string())
            .collect();
        assert_eq!(errors, vec!["/ts".to_string()], "{version}");
    }
}

#[test]
fn the_decoder_schema_accepts_what_decoders_must_and_the_codec_reads_it() {
    for version in Version::ALL {
        let enc = common::schema_validator(version);
        let dec = common::decoder_schema_validator(version);
        let codec = Codec::new(Subprotocol::new(version, Encoding::Json));
        let lenient = [
            // ENC-ENUM-NAMES: the number of an enum value.
            json!({"type": "error", "id": "x", "code": 2, "message": "m"}),
            // ENC-UNKNOWN-ENUM: a name this version does not know.
            json!({"type": "error", "id": "x", "code": "ERROR_CODE_FROM_THE_FUTURE"}),
            // ENC-DEFAULTS-OMITTED: null for non-payload fields.
            json!({"type": "subscribe", "id": null, "channel": "c", "resume": null}),
            json!({"type": "ping", "ts": null}),
            json!({"type": "welcome", "version": 1, "encoding": null, "session_id": "s", "features": null, "limits": {"max_burst": null}}),
        ];
        for value in lenient {
            assert!(
                dec.is_valid(&value),
                "{version}: decoder schema rejects {value}"
            );
            assert!(
                !enc.is_valid(&value),
                "{version}: encoder schema accepts {value}, which no encoder writes"
            );
            let text = serde_json::to_vec(&value).unwrap();
            codec
                .decode::<courier_protocol::v2::Envelope>(&text)
                .unwrap_or_else(|e| panic!("{version}: the codec rejects {value}: {e}"));
        }
        // Still strict where decoders are: unknown types, wrong kinds, nulls in lists.
        for value in [
            json!({"type": "publsh"}),
            json!({"type": "ping", "ts": "7"}),
            json!({"type": "hello", "features": [null]}),
            json!({"ts": 1}),
        ] {
            assert!(
                !dec.is_valid(&value),
                "{version}: decoder schema accepts {value}"
            );
        }
        for ex in examples::all(version) {
            let value: serde_json::Value =
                serde_json::from_slice(&codec.encode(&ex.envelope).unwrap()).unwrap();
            assert!(dec.is_valid(&value), "{version} {}", ex.name);
        }
    }
}
