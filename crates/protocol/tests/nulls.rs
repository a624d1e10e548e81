//! ENC-DEFAULTS-OMITTED for the serde helpers generated code uses: a null
//! *field* reads as its default (unset for `optional`), a null payload is
//! the value null, and null stays an error where it is not a field: oneof
//! members (`non_null_*`), map values of scalar types, and elements of
//! repeated fields. Checked in JSON and in MessagePack, as users' typed
//! payloads see them; Courier's own messages are covered by the vectors.

use std::collections::HashMap;

use bytes::Bytes;
use courier_protocol::wire::{self, ProtoEnum};
use serde::Deserialize;
use serde_json::{json, Value};

/// A three-value enum, as codegen writes `ProtoEnum`.
struct Color;

impl ProtoEnum for Color {
    const NAMES: &'static [&'static str] = &["COLOR_UNSPECIFIED", "COLOR_RED", "COLOR_BLUE"];
    fn name_of(v: i32) -> Option<&'static str> {
        Self::NAMES.get(usize::try_from(v).ok()?).copied()
    }
    fn value_of(name: &str) -> Option<i32> {
        Self::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| i as i32)
    }
}

/// One field of every helper kind, with the attributes codegen emits.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Fields {
    #[serde(deserialize_with = "wire::u53")]
    count: u64,
    #[serde(deserialize_with = "wire::i53")]
    delta: i64,
    #[serde(deserialize_with = "wire::opt_u53")]
    limit: Option<u64>,
    #[serde(deserialize_with = "wire::opt_i53")]
    offset: Option<i64>,
    #[serde(deserialize_with = "wire::u53_list")]
    counts: Vec<u64>,
    #[serde(deserialize_with = "wire::i53_list")]
    deltas: Vec<i64>,
    #[serde(deserialize_with = "wire::enum_de::<Color, _>")]
    color: i32,
    #[serde(deserialize_with = "wire::opt_enum_de::<Color, _>")]
    maybe_color: Option<i32>,
    #[serde(deserialize_with = "wire::enum_list_de::<Color, _>")]
    colors: Vec<i32>,
    #[serde(deserialize_with = "wire::base64::deserialize")]
    blob: Bytes,
    #[serde(deserialize_with = "wire::opt_base64::deserialize")]
    maybe_blob: Option<Bytes>,
    #[serde(deserialize_with = "wire::base64_list::deserialize")]
    blobs: Vec<Bytes>,
    #[serde(deserialize_with = "wire::nulls::or_default")]
    name: String,
    #[serde(deserialize_with = "wire::nulls::or_default")]
    names: Vec<String>,
    #[serde(deserialize_with = "wire::payload::deserialize")]
    payload: Bytes,
}

/// A oneof member and map values, where null is not a field's null.
#[derive(Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
struct Values {
    #[serde(deserialize_with = "member_u53")]
    member: u64,
    #[serde(deserialize_with = "member_bytes")]
    member_bytes: Bytes,
    #[serde(deserialize_with = "wire::maps::deserialize::<wire::maps::U53, String, _>")]
    by_u53: HashMap<String, u64>,
    #[serde(deserialize_with = "wire::maps::deserialize::<wire::maps::Enum<Color>, String, _>")]
    by_enum: HashMap<String, i32>,
}

fn member_u53<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    wire::non_null_u53(d)
}

fn member_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    wire::non_null_base64::deserialize(d)
}

/// Decodes `value` as `T` from JSON text and from MessagePack bytes, and
/// checks both encodings agree.
fn both<T: for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
    value: Value,
) -> Result<T, String> {
    let from_json = serde_json::from_value::<T>(value.clone()).map_err(|e| e.to_string());
    let mp = rmp_serde::to_vec_named(&value).unwrap();
    let from_mp = rmp_serde::from_slice::<T>(&mp).map_err(|e| e.to_string());
    assert_eq!(
        from_json.is_ok(),
        from_mp.is_ok(),
        "JSON {from_json:?} vs MessagePack {from_mp:?}"
    );
    if let (Ok(a), Ok(b)) = (&from_json, &from_mp) {
        assert_eq!(a, b);
    }
    from_json
}

#[test]
fn null_fields_read_as_their_defaults() {
    let all_null: serde_json::Map<String, Value> = [
        "count",
        "delta",
        "limit",
        "offset",
        "counts",
        "deltas",
        "color",
        "maybe_color",
        "colors",
        "blob",
        "maybe_blob",
        "blobs",
        "name",
        "names",
    ]
    .iter()
    .map(|k| (k.to_string(), Value::Null))
    .collect();
    let got: Fields = both(Value::Object(all_null)).unwrap();
    assert_eq!(got, Fields::default());
}

#[test]
fn a_null_payload_is_the_value_null() {
    let got: Fields = both(json!({"payload": null})).unwrap();
    assert_eq!(&got.payload[..], &[0xc0]);
    assert_eq!(both::<Fields>(json!({})).unwrap().payload, Bytes::new());
}

#[test]
fn set_values_still_decode_and_keep_their_checks() {
    let got: Fields = both(json!({
        "count": 3, "limit": 0, "offset": -2, "color": "COLOR_BLUE", "maybe_color": 0,
        "colors": ["COLOR_RED", 2], "blob": "AQI=", "maybe_blob": "", "name": "n", "names": ["a"]
    }))
    .unwrap();
    assert_eq!((got.count, got.limit, got.offset), (3, Some(0), Some(-2)));
    assert_eq!(
        (got.color, got.maybe_color, got.colors.as_slice()),
        (2, Some(0), &[1, 2][..])
    );
    assert_eq!(
        (&got.blob[..], got.maybe_blob.as_deref()),
        (&[1u8, 2][..], Some(&[][..]))
    );
    // ENC-INT53 still applies to the null-tolerant helpers.
    assert!(both::<Fields>(json!({"count": 9007199254740992u64})).is_err());
    assert!(both::<Fields>(json!({"limit": 9007199254740992u64})).is_err());
    assert!(both::<Fields>(json!({"offset": -9007199254740992i64})).is_err());
    assert!(both::<Fields>(json!({"deltas": [1, 9007199254740992i64]})).is_err());
}

#[test]
fn null_elements_of_repeated_fields_are_errors() {
    for (field, list) in [
        ("counts", json!([1, null])),
        ("deltas", json!([null])),
        ("colors", json!(["COLOR_RED", null])),
        ("blobs", json!([null])),
        ("names", json!(["a", null])),
    ] {
        let err = both::<Fields>(json!({ field: list })).unwrap_err();
        assert!(
            err.contains("null") || err.contains("unit"),
            "{field}: {err}"
        );
    }
}

#[test]
fn null_oneof_members_and_scalar_map_values_are_errors() {
    assert!(both::<Values>(json!({"member": null})).is_err());
    assert!(both::<Values>(json!({"member_bytes": null})).is_err());
    assert!(both::<Values>(json!({"by_u53": {"a": null}})).is_err());
    // Enums read null as the zero value everywhere (as TypeScript does).
    let got: Values = both(json!({"by_enum": {"a": null}, "by_u53": null})).unwrap();
    assert_eq!(got.by_enum, HashMap::from([("a".to_string(), 0)]));
    assert!(got.by_u53.is_empty());
    let got: Values =
        both(json!({"member": 5, "member_bytes": "AQ==", "by_u53": {"a": 1}})).unwrap();
    assert_eq!(
        (got.member, &got.member_bytes[..], got.by_u53["a"]),
        (5, &[1u8][..], 1)
    );
}
