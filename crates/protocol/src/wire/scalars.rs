//! serde helpers for scalar fields: defaults omitted, enums by name, 64-bit
//! integers limited to 2^53−1, bytes as base64 (JSON) or `bin` (MessagePack).

use std::fmt;
use std::marker::PhantomData;

use ::base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serializer};

use super::msgpack::MAX_SAFE_INTEGER;
use super::ProtoEnum;

/// `skip_serializing_if` for scalars: proto3 defaults are omitted.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `skip_serializing_if` for repeated and map fields.
pub fn is_empty_collection<C>(c: &C) -> bool
where
    for<'a> &'a C: IntoIterator,
{
    c.into_iter().next().is_none()
}

fn too_big<E: de::Error>() -> E {
    E::custom("integer exceeds 2^53-1 (ENC-INT53)")
}

// ENC-DEFAULTS-OMITTED: the field helpers below read `null` as the field's
// default (0, empty, `None` for `optional`). The `non_null_*` ones are for
// oneof members and map values, where null is not a value of the field's
// type: an error, as in the TypeScript codec (`rt.nonNull`).

/// Deserializes a `uint64` that must stay within 2^53−1; null is an error.
pub fn non_null_u53<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = u64::deserialize(d)?;
    if v > MAX_SAFE_INTEGER {
        return Err(too_big());
    }
    Ok(v)
}

/// Deserializes an `int64` that must stay within ±(2^53−1); null is an error.
pub fn non_null_i53<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = i64::deserialize(d)?;
    if v.unsigned_abs() > MAX_SAFE_INTEGER {
        return Err(too_big());
    }
    Ok(v)
}

/// Deserializes a `uint64` field within 2^53−1; null reads as 0.
pub fn u53<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    opt_u53(d).map(Option::unwrap_or_default)
}

/// `u53` for `optional uint64`; null reads as unset.
pub fn opt_u53<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<u64>::deserialize(d)?;
    if v.is_some_and(|v| v > MAX_SAFE_INTEGER) {
        return Err(too_big());
    }
    Ok(v)
}

/// Deserializes an `int64` field within ±(2^53−1); null reads as 0.
pub fn i53<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    opt_i53(d).map(Option::unwrap_or_default)
}

/// `i53` for `optional int64`; null reads as unset.
pub fn opt_i53<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<i64>::deserialize(d)?;
    if v.is_some_and(|v| v.unsigned_abs() > MAX_SAFE_INTEGER) {
        return Err(too_big());
    }
    Ok(v)
}

/// `u53` for `repeated uint64`; null reads as empty (a null element is an
/// error: elements are not fields).
pub fn u53_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    let v = Option::<Vec<u64>>::deserialize(d)?.unwrap_or_default();
    if v.iter().any(|x| *x > MAX_SAFE_INTEGER) {
        return Err(too_big());
    }
    Ok(v)
}

/// `i53` for `repeated int64`; null reads as empty.
pub fn i53_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    let v = Option::<Vec<i64>>::deserialize(d)?.unwrap_or_default();
    if v.iter().any(|x| x.unsigned_abs() > MAX_SAFE_INTEGER) {
        return Err(too_big());
    }
    Ok(v)
}

/// Serializes an enum field by value name; a value this version does not
/// name (kept from a Protobuf frame) is written as its number.
pub fn enum_ser<E: ProtoEnum, S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
    match E::name_of(*v) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_i32(*v),
    }
}

/// `enum_ser` for `optional` enum fields.
pub fn opt_enum_ser<E: ProtoEnum, S: Serializer>(v: &Option<i32>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => enum_ser::<E, S>(v, s),
        None => s.serialize_none(),
    }
}

/// Reads an enum value; `null_ok` says whether null is the zero value
/// (fields, members, map values) or an error (repeated-field elements).
struct EnumVisitor<E> {
    null_ok: bool,
    marker: PhantomData<E>,
}

impl<E: ProtoEnum> Visitor<'_> for EnumVisitor<E> {
    type Value = i32;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an enum value name or number")
    }
    // ENC-UNKNOWN-ENUM: a name or number this version does not define reads
    // as the `_UNSPECIFIED` value (0). (prost keeps unknown numbers of
    // Protobuf frames; `compat` resets them after decoding.)
    fn visit_str<Er: de::Error>(self, v: &str) -> Result<i32, Er> {
        Ok(E::value_of(v).unwrap_or(0))
    }
    fn visit_i64<Er: de::Error>(self, v: i64) -> Result<i32, Er> {
        let v = i32::try_from(v).map_err(|_| Er::custom("enum number out of range"))?;
        Ok(if E::name_of(v).is_some() { v } else { 0 })
    }
    fn visit_u64<Er: de::Error>(self, v: u64) -> Result<i32, Er> {
        self.visit_i64(i64::try_from(v).map_err(|_| Er::custom("enum number out of range"))?)
    }
    // ENC-DEFAULTS-OMITTED: null reads as the default.
    fn visit_unit<Er: de::Error>(self) -> Result<i32, Er> {
        if self.null_ok {
            Ok(0)
        } else {
            Err(Er::invalid_type(de::Unexpected::Unit, &self))
        }
    }
}

/// Deserializes an enum field from its name (or number); null reads as the
/// `_UNSPECIFIED` value (also for oneof members and map values, as in the
/// TypeScript codec).
pub fn enum_de<'de, E: ProtoEnum, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    d.deserialize_any(EnumVisitor::<E> {
        null_ok: true,
        marker: PhantomData,
    })
}

/// One enum value, for `Option` and `Vec` of them: null is not one (a
/// null element of a repeated field is an error, as in TypeScript).
struct EnumItem<E>(i32, PhantomData<E>);

impl<'de, E: ProtoEnum> Deserialize<'de> for EnumItem<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = EnumVisitor::<E> {
            null_ok: false,
            marker: PhantomData,
        };
        d.deserialize_any(v).map(|v| EnumItem(v, PhantomData))
    }
}

/// `enum_de` for `optional` enum fields; null reads as unset.
pub fn opt_enum_de<'de, E: ProtoEnum, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    Ok(Option::<EnumItem<E>>::deserialize(d)?.map(|i| i.0))
}

/// Serializes a repeated enum field by names.
pub fn enum_list_ser<E: ProtoEnum, S: Serializer>(v: &[i32], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeSeq;
    let mut seq = s.serialize_seq(Some(v.len()))?;
    for x in v {
        match E::name_of(*x) {
            Some(n) => seq.serialize_element(n)?,
            None => seq.serialize_element(x)?,
        }
    }
    seq.end()
}

/// Deserializes a repeated enum field; null reads as empty.
pub fn enum_list_de<'de, E: ProtoEnum, D: Deserializer<'de>>(d: D) -> Result<Vec<i32>, D::Error> {
    let items = Option::<Vec<EnumItem<E>>>::deserialize(d)?.unwrap_or_default();
    Ok(items.into_iter().map(|i| i.0).collect())
}

/// JSON Schema of an enum field: one of its value names.
pub fn enum_schema<E: ProtoEnum>(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "enum": E::NAMES })
}

/// JSON Schema of an `optional` enum field.
pub fn opt_enum_schema<E: ProtoEnum>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    enum_schema::<E>(g)
}

/// JSON Schema of a repeated enum field.
pub fn enum_list_schema<E: ProtoEnum>(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": { "type": "string", "enum": E::NAMES } })
}

/// `bytes` fields: base64 in human-readable formats (JSON), `bin` otherwise.
pub mod base64 {
    use super::*;

    /// Serializes bytes per the policy.
    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&::base64::engine::general_purpose::STANDARD.encode(v))
        } else {
            s.serialize_bytes(v)
        }
    }

    /// Deserializes a `bytes` field from base64 text or `bin`, whichever
    /// is present; null reads as empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        Ok(Option::<super::BytesValue>::deserialize(d)?
            .map(|b| b.0)
            .unwrap_or_default())
    }

    pub(super) struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Bytes;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("base64 text or binary")
        }
        // ENC-BYTES: standard or URL-safe alphabet, padded or not.
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Bytes, E> {
            use ::base64::engine::general_purpose::{
                STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
            };
            let url = v.contains(['-', '_']);
            let padded = v.ends_with('=');
            let engine = match (url, padded) {
                (false, true) => &STANDARD,
                (false, false) => &STANDARD_NO_PAD,
                (true, true) => &URL_SAFE,
                (true, false) => &URL_SAFE_NO_PAD,
            };
            engine
                .decode(v)
                .map(Bytes::from)
                .map_err(|_| E::custom("invalid base64"))
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }
}

/// One `bytes` value, base64 or `bin`; null is an error.
struct BytesValue(Bytes);

impl<'de> Deserialize<'de> for BytesValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(base64::BytesVisitor).map(BytesValue)
    }
}

/// `base64` for oneof members and map values: null is an error.
pub mod non_null_base64 {
    use super::*;
    /// Serializes bytes per the policy.
    pub fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        super::base64::serialize(v, s)
    }
    /// Deserializes bytes from base64 text or `bin`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        BytesValue::deserialize(d).map(|b| b.0)
    }
}

/// `base64` for `optional bytes`.
pub mod opt_base64 {
    use super::*;
    /// Serializes `Some` bytes per the policy.
    pub fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => super::base64::serialize(b, s),
            None => s.serialize_none(),
        }
    }
    /// Deserializes bytes; null reads as unset.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        Ok(Option::<BytesValue>::deserialize(d)?.map(|b| b.0))
    }
}

/// `base64` for `repeated bytes`.
pub mod base64_list {
    use super::*;
    /// Serializes each element per the policy.
    pub fn serialize<S: Serializer>(v: &[Bytes], s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        struct One<'a>(&'a Bytes);
        impl serde::Serialize for One<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::base64::serialize(self.0, s)
            }
        }
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(&One(b))?;
        }
        seq.end()
    }
    /// Deserializes each element; null reads as empty.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Bytes>, D::Error> {
        let items = Option::<Vec<BytesValue>>::deserialize(d)?.unwrap_or_default();
        Ok(items.into_iter().map(|o| o.0).collect())
    }
}

/// JSON Schema of a `bytes` field.
pub fn base64_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "string", "contentEncoding": "base64" })
}

/// JSON Schema of a `repeated bytes` field.
pub fn base64_list_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "array", "items": { "type": "string", "contentEncoding": "base64" } })
}
