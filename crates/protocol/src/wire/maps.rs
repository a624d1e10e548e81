//! serde and schema helpers for proto `map` fields of typed payloads: keys
//! are always strings on the wire (JSON objects have only string keys, and
//! the payload data model only string map keys, ENC-PAYLOAD), values follow
//! the same policy as singular fields (enum names, base64 bytes, 53-bit
//! integers, ENC-TYPED-PAYLOAD).
//!
//! Generated code uses these for every map field. prost's maps are
//! `HashMap`s, whose iteration order changes from run to run; keys are
//! written in sorted order so that one value always encodes to the same
//! bytes (ENC-CANONICAL).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ProtoEnum;

/// A proto map key type (`string`, `bool` or an integer type).
pub trait MapKey: Ord + Hash + Sized {
    /// The key as written on the wire.
    fn to_key(&self) -> Cow<'_, str>;
    /// Parses a key read from the wire; `None` if it is not one.
    fn from_key(key: &str) -> Option<Self>;
    /// JSON Schema `pattern` of the key, if restricted.
    const PATTERN: Option<&'static str>;
}

impl MapKey for String {
    fn to_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
    fn from_key(key: &str) -> Option<Self> {
        Some(key.to_string())
    }
    const PATTERN: Option<&'static str> = None;
}

impl MapKey for bool {
    fn to_key(&self) -> Cow<'_, str> {
        Cow::Borrowed(if *self { "true" } else { "false" })
    }
    fn from_key(key: &str) -> Option<Self> {
        key.parse().ok()
    }
    const PATTERN: Option<&'static str> = Some("^(true|false)$");
}

macro_rules! int_key {
    ($($t:ty => $pattern:expr),*) => {$(
        impl MapKey for $t {
            fn to_key(&self) -> Cow<'_, str> {
                Cow::Owned(self.to_string())
            }
            fn from_key(key: &str) -> Option<Self> {
                key.parse().ok()
            }
            const PATTERN: Option<&'static str> = Some($pattern);
        }
    )*};
}
int_key!(i32 => "^-?[0-9]+$", i64 => "^-?[0-9]+$", u32 => "^[0-9]+$", u64 => "^[0-9]+$");

/// How the values of a map are encoded.
pub trait MapValue {
    /// The Rust value type prost generates.
    type Value;
    /// Serializes one value.
    fn serialize<S: Serializer>(v: &Self::Value, s: S) -> Result<S::Ok, S::Error>;
    /// Deserializes one value.
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Self::Value, D::Error>;
    /// JSON Schema of one value.
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema;
}

/// Values with their own serde impls (strings, numbers, bools, messages).
pub struct Plain<T>(PhantomData<T>);

impl<T: Serialize + DeserializeOwned + schemars::JsonSchema> MapValue for Plain<T> {
    type Value = T;
    fn serialize<S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        v.serialize(s)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        g.subschema_for::<T>()
    }
}

/// Enum values, by name (ENC-ENUM-NAMES).
pub struct Enum<E>(PhantomData<E>);

impl<E: ProtoEnum> MapValue for Enum<E> {
    type Value = i32;
    fn serialize<S: Serializer>(v: &i32, s: S) -> Result<S::Ok, S::Error> {
        super::enum_ser::<E, S>(v, s)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
        super::enum_de::<E, D>(d)
    }
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::enum_schema::<E>(g)
    }
}

/// `bytes` values: base64 in JSON, `bin` in MessagePack (ENC-BYTES).
pub struct Base64;

impl MapValue for Base64 {
    type Value = Bytes;
    fn serialize<S: Serializer>(v: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        super::base64::serialize(v, s)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        super::non_null_base64::deserialize(d)
    }
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        super::base64_schema(g)
    }
}

/// `uint64`/`fixed64` values within 2^53−1 (ENC-INT53).
pub struct U53;

impl MapValue for U53 {
    type Value = u64;
    fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(*v)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        super::non_null_u53(d)
    }
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        u53_schema(g)
    }
}

/// `int64`/`sint64`/`sfixed64` values within ±(2^53−1) (ENC-INT53).
pub struct I53;

impl MapValue for I53 {
    type Value = i64;
    fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(*v)
    }
    fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        super::non_null_i53(d)
    }
    fn schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        i53_schema(g)
    }
}

/// JSON Schema of a `uint64` within 2^53−1 (map values and oneof members,
/// which cannot carry schemars' `range` attribute).
pub fn u53_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "type": "integer", "minimum": 0, "maximum": super::msgpack::MAX_SAFE_INTEGER })
}

/// JSON Schema of an `int64` within ±(2^53−1).
pub fn i53_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let max = super::msgpack::MAX_SAFE_INTEGER as i64;
    schemars::json_schema!({ "type": "integer", "minimum": -max, "maximum": max })
}

/// Serializes a map field: string keys in sorted order, values per `V`.
pub fn serialize<V: MapValue, K: MapKey, S: Serializer>(
    m: &HashMap<K, V::Value>,
    s: S,
) -> Result<S::Ok, S::Error> {
    struct One<'a, V: MapValue>(&'a V::Value);
    impl<V: MapValue> Serialize for One<'_, V> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            V::serialize(self.0, s)
        }
    }
    let mut entries: Vec<(&K, &V::Value)> = m.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut map = s.serialize_map(Some(entries.len()))?;
    for (k, v) in entries {
        map.serialize_entry(k.to_key().as_ref(), &One::<V>(v))?;
    }
    map.end()
}

/// Deserializes a map field. Keys may be strings or, for integer and bool
/// keys, the bare number or boolean; a key that does not parse is an error.
/// A repeated key keeps the last value, as in Protobuf.
pub fn deserialize<'de, V: MapValue, K: MapKey, D: Deserializer<'de>>(
    d: D,
) -> Result<HashMap<K, V::Value>, D::Error> {
    struct Key<K>(K);
    impl<'de, K: MapKey> Deserialize<'de> for Key<K> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(KeyVisitor(PhantomData)).map(Key)
        }
    }
    struct KeyVisitor<K>(PhantomData<K>);
    impl<K: MapKey> Visitor<'_> for KeyVisitor<K> {
        type Value = K;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map key")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
            K::from_key(v).ok_or_else(|| E::custom(format!("invalid map key `{v}`")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<K, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<K, E> {
            self.visit_str(&v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<K, E> {
            self.visit_str(if v { "true" } else { "false" })
        }
    }
    struct Value<V: MapValue>(V::Value);
    impl<'de, V: MapValue> Deserialize<'de> for Value<V> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            V::deserialize(d).map(Value)
        }
    }
    struct MapVisitor<K, V>(PhantomData<(K, V)>);
    impl<'de, K: MapKey, V: MapValue> Visitor<'de> for MapVisitor<K, V> {
        type Value = HashMap<K, V::Value>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            // Bounded by the frame: each entry consumed at least one byte.
            let mut out = HashMap::new();
            while let Some((Key(k), Value(v))) = access.next_entry::<Key<K>, Value<V>>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        // ENC-DEFAULTS-OMITTED: null reads as the default (empty) map.
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(HashMap::new())
        }
    }
    d.deserialize_any(MapVisitor::<K, V>(PhantomData))
}

/// JSON Schema of a map field: an object whose values follow `V`.
pub fn schema<V: MapValue, K: MapKey>(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let values = V::schema(g);
    match K::PATTERN {
        Some(p) => schemars::json_schema!({
            "type": "object",
            "additionalProperties": values,
            "propertyNames": { "pattern": p },
        }),
        None => schemars::json_schema!({ "type": "object", "additionalProperties": values }),
    }
}
