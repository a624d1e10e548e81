//! Helpers shared by the protocol test files.
#![allow(dead_code)]

pub mod strategies;

use std::path::PathBuf;

use courier_protocol::{Codec, DecodeError, Encoding, Subprotocol, Version};

/// The workspace root (checked-in generated files live there).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compares generated files with the checked-in copies.
pub fn assert_fresh(files: &[(String, String)]) {
    for (path, contents) in files {
        let on_disk = std::fs::read_to_string(root().join(path)).unwrap_or_default();
        assert!(
            on_disk == *contents,
            "stale: run `cargo xtask codegen` ({path} differs)"
        );
    }
}

/// The codec of a version and encoding name (`json`, `msgpack`, `protobuf`).
pub fn codec(version: Version, encoding: &str) -> Codec {
    let encoding = match encoding {
        "json" => Encoding::Json,
        "msgpack" => Encoding::MsgPack,
        "protobuf" => Encoding::Protobuf,
        other => panic!("unknown encoding {other}"),
    };
    Codec::new(Subprotocol::new(version, encoding))
}

/// The vector kind name of a decode error.
pub fn kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::TooLarge { .. } => "too_large",
        DecodeError::WrongFrameKind { .. } => "wrong_frame_kind",
        DecodeError::Malformed { .. } => "malformed",
        DecodeError::Invalid(_) => "invalid",
        DecodeError::UnknownType(_) => "unknown_type",
    }
}

/// The decoder JSON Schema of `version`, compiled.
pub fn decoder_schema_validator(version: Version) -> jsonschema::Validator {
    let path = root().join(format!("schema/{version}/envelope.decoder.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

/// The JSON Schema of `version`, compiled.
pub fn schema_validator(version: Version) -> jsonschema::Validator {
    let path = root().join(format!("schema/{version}/envelope.schema.json"));
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}
