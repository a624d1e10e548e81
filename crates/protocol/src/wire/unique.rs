//! ENC-JSON-FLAT / ENC-PAYLOAD: every object (map) anywhere in a JSON or
//! MessagePack frame has unique string keys — the envelope (a second `type`
//! included), nested messages, payloads, even the values of unknown fields
//! that are otherwise skipped. The TypeScript codec rejects a repeated key
//! while parsing; this makes the Rust codec agree on every such input.
//!
//! serde's derived impls catch a repeated *known* field only, and
//! serde_json and rmp_serde keep both entries of a repeated payload key, so
//! the check wraps the format's deserializer: [`UniqueKeys`] forwards every
//! call, and each map it meets goes through [`Map`], which records the keys
//! as they are read. Values that would be skipped unseen
//! (`deserialize_ignored_any`) are walked instead, so nothing escapes.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

use super::scan::filter_bit;

/// A deserializer whose maps must have unique string keys.
pub(crate) struct UniqueKeys<D>(pub(crate) D);

/// The keys of one map so far. Borrowed keys (the common case: serde_json
/// and rmp_serde lend unescaped keys from the frame) are compared in a
/// small inline list; past that, or for a key the format had to unescape
/// into a temporary, they move to a hash set (SipHash: no crafted-collision
/// blow-up on hostile frames).
struct Seen<'de> {
    inline: [&'de str; INLINE],
    len: usize,
    /// One bit per inline key (`scan::filter_bit`): a key whose bit is
    /// clear is new without comparing it to anything.
    filter: u64,
    set: Option<HashSet<Cow<'de, str>>>,
}

const INLINE: usize = 8;

impl<'de> Seen<'de> {
    fn new() -> Self {
        Seen {
            inline: [""; INLINE],
            len: 0,
            filter: 0,
            set: None,
        }
    }

    /// Records `k`; false if it was already there.
    fn insert(&mut self, k: Cow<'de, str>) -> bool {
        if self.set.is_none() {
            let bit = filter_bit(k.as_bytes());
            if self.filter & bit != 0 && self.inline[..self.len].contains(&k.as_ref()) {
                return false;
            }
            if let (Cow::Borrowed(b), true) = (&k, self.len < INLINE) {
                self.inline[self.len] = b;
                self.len += 1;
                self.filter |= bit;
                return true;
            }
            let set = self.inline[..self.len]
                .iter()
                .map(|s| Cow::Borrowed(*s))
                .collect();
            self.set = Some(set);
        }
        self.set.as_mut().is_some_and(|set| set.insert(k))
    }
}

fn duplicate<E: de::Error>(k: &str) -> E {
    E::custom(format_args!(
        "duplicate key `{k}` (keys of an object must be unique)"
    ))
}

fn not_a_string<E: de::Error>() -> E {
    E::custom("map keys must be strings")
}

/// Forwards every `deserialize_*` call to the inner deserializer with the
/// visitor wrapped.
macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method($($arg,)* Wrap(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for UniqueKeys<D> {
    type Error = D::Error;

    forward! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf();
        deserialize_option(); deserialize_unit(); deserialize_seq(); deserialize_map();
        deserialize_identifier();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    /// Skipped values are walked, so their maps are checked too.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(Wrap(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A visitor whose nested deserializers are wrapped in turn.
struct Wrap<V>(V);

macro_rules! pass {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    pass! {
        visit_bool(bool); visit_i8(i8); visit_i16(i16); visit_i32(i32); visit_i64(i64);
        visit_i128(i128); visit_u8(u8); visit_u16(u16); visit_u32(u32); visit_u64(u64);
        visit_u128(u128); visit_f32(f32); visit_f64(f64); visit_char(char);
        visit_str(&str); visit_borrowed_str(&'de str); visit_string(String);
        visit_bytes(&[u8]); visit_borrowed_bytes(&'de [u8]); visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_none()
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(UniqueKeys(d))
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_newtype_struct(UniqueKeys(d))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Seq(seq))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Map {
            map,
            seen: Seen::new(),
        })
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Enum(data))
    }
}

/// A seed whose deserializer is wrapped.
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(UniqueKeys(d))
    }
}

struct Seq<A>(A);

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Seq<A> {
    type Error = A::Error;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// A map whose keys are recorded as they are read.
struct Map<'de, A> {
    map: A,
    seen: Seen<'de>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Map<'de, A> {
    type Error = A::Error;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.map.next_key_seed(KeySeed {
            seed,
            seen: &mut self.seen,
        })
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(Seed(seed))
    }
    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

struct KeySeed<'s, 'de, K> {
    seed: K,
    seen: &'s mut Seen<'de>,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, 'de, K> {
    type Value = K::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        self.seed.deserialize(KeyDeserializer {
            inner: d,
            seen: self.seen,
        })
    }
}

/// A map key: whatever the seed asks for, the key is read as a string (a
/// skipped key too) and recorded.
struct KeyDeserializer<'s, 'de, D> {
    inner: D,
    seen: &'s mut Seen<'de>,
}

macro_rules! as_str {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
            $(let _ = $arg;)*
            self.inner.deserialize_str(KeyVisitor { inner: visitor, seen: self.seen })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for KeyDeserializer<'_, 'de, D> {
    type Error = D::Error;

    as_str! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf();
        deserialize_option(); deserialize_unit(); deserialize_seq(); deserialize_map();
        deserialize_identifier(); deserialize_ignored_any();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

struct KeyVisitor<'s, 'de, V> {
    inner: V,
    seen: &'s mut Seen<'de>,
}

macro_rules! reject {
    ($($method:ident($ty:ty);)*) => {$(
        fn $method<E: de::Error>(self, _: $ty) -> Result<V::Value, E> {
            Err(not_a_string())
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for KeyVisitor<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string map key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        if !self.seen.insert(Cow::Borrowed(v)) {
            return Err(duplicate(v));
        }
        self.inner.visit_borrowed_str(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<V::Value, E> {
        if !self.seen.insert(Cow::Owned(v.to_string())) {
            return Err(duplicate(v));
        }
        self.inner.visit_str(v)
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<V::Value, E> {
        if !self.seen.insert(Cow::Owned(v.clone())) {
            return Err(duplicate(&v));
        }
        self.inner.visit_string(v)
    }

    // ENC-JSON-FLAT: an envelope is the JSON object model in MessagePack
    // too, whose keys are strings (payload maps: ENC-PAYLOAD-INVALID).
    reject! {
        visit_bool(bool); visit_i64(i64); visit_u64(u64); visit_i128(i128); visit_u128(u128);
        visit_f64(f64); visit_bytes(&[u8]);
    }
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        Err(not_a_string())
    }
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        Err(not_a_string())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(not_a_string())
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<V::Value, A::Error> {
        Err(not_a_string())
    }
}

struct Enum<A>(A);

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Enum<A> {
    type Error = A::Error;
    type Variant = Enum<A::Variant>;
    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, Self::Variant), A::Error> {
        let (v, variant) = self.0.variant_seed(seed)?;
        Ok((v, Enum(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Enum<A> {
    type Error = A::Error;
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }
    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap(visitor))
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap(visitor))
    }
}
