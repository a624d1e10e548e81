//! The cross-language vectors in `conformance/vectors/`: fresh, and true of
//! the Rust codec (valid vectors decode and re-encode byte for byte, decode
//! vectors read as their value, invalid vectors fail with their error).

mod common;

use common::{codec, kind};
use courier_protocol::vectors::{self, unhex};
use courier_protocol::{v2, Version};
use serde_json::Value;

fn load(version: Version, file: &str) -> Vec<Value> {
    let path = common::root().join(format!("conformance/vectors/{version}/{file}.json"));
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(v["version"], version.number());
    v["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn vectors_are_fresh() {
    common::assert_fresh(&vectors::files());
}

#[test]
fn valid_vectors_decode_to_their_value_and_reencode_identically() {
    for version in Version::ALL {
        let vectors = load(version, "valid");
        assert!(vectors.len() >= 25, "{version}: {} vectors", vectors.len());
        for v in vectors {
            let name = s(&v, "name");
            for (encoding, bytes) in [
                ("json", s(&v, "json").as_bytes().to_vec()),
                ("msgpack", unhex(s(&v, "msgpack")).unwrap()),
                ("protobuf", unhex(s(&v, "protobuf")).unwrap()),
            ] {
                let c = codec(version, encoding);
                let env: v2::Envelope = c
                    .decode(&bytes)
                    .unwrap_or_else(|e| panic!("{version} {name} {encoding}: {e}"));
                assert_eq!(
                    serde_json::to_value(&env).unwrap(),
                    v["value"],
                    "{version} {name} {encoding}"
                );
                assert_eq!(
                    c.encode(&env).unwrap(),
                    bytes,
                    "{version} {name} {encoding}: re-encoding differs"
                );
            }
        }
    }
}

#[test]
fn decode_vectors_read_as_their_value() {
    for version in Version::ALL {
        for v in load(version, "decode") {
            let name = s(&v, "name");
            let input = unhex(s(&v, "input")).unwrap();
            if let Some(text) = v["input_text"].as_str() {
                assert_eq!(
                    text.as_bytes(),
                    input,
                    "{name}: input_text and input differ"
                );
            }
            let env: v2::Envelope = codec(version, s(&v, "encoding"))
                .decode(&input)
                .unwrap_or_else(|e| panic!("{version} {name}: {e}"));
            assert_eq!(
                serde_json::to_value(&env).unwrap(),
                v["value"],
                "{version} {name}"
            );
        }
    }
}

#[test]
fn invalid_vectors_fail_with_their_error() {
    for version in Version::ALL {
        let vectors = load(version, "invalid");
        let mut kinds = std::collections::BTreeSet::new();
        for v in vectors {
            let name = s(&v, "name");
            let input = unhex(s(&v, "input")).unwrap();
            let limit = v["max_message_bytes"].as_u64().unwrap() as usize;
            let c = codec(version, s(&v, "encoding")).with_max_message_bytes(limit);
            let text = s(&v, "frame") == "text";
            let err = c
                .decode_frame::<v2::Envelope>(&input, Some(text))
                .expect_err(name);
            assert_eq!(kind(&err), s(&v, "error"), "{version} {name}: {err}");
            assert_eq!(
                u64::from(err.close_code()),
                v["close_code"].as_u64().unwrap(),
                "{version} {name}"
            );
            kinds.insert(kind(&err));
        }
        assert_eq!(
            kinds.len(),
            5,
            "{version}: every error kind is covered: {kinds:?}"
        );
    }
}
