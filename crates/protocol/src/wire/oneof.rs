//! serde for `oneof` fields of typed payloads: an object under the oneof's
//! name holding the member that is set, keyed by the member's field name
//! (`"body":{"text":"hi"}`).
//!
//! Deserialization is forward compatible, which serde's derived enum impls
//! are not: a member this version does not know is skipped (ENC-UNKNOWN-FIELD),
//! so a payload from a newer schema reads as "no member set" here instead of
//! failing, and when several members are present the last one wins, as in
//! Protobuf.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, EnumAccess, IgnoredAny, IntoDeserializer, MapAccess, VariantAccess,
    Visitor,
};
use serde::{Deserialize, Deserializer};

/// A generated oneof enum: the field names of its members.
pub trait ProtoOneof {
    /// The proto field name of each member, in declaration order.
    const NAMES: &'static [&'static str];
}

/// Deserializes an `Option` oneof field (serde `deserialize_with`).
pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
where
    T: ProtoOneof + Deserialize<'de>,
    D: Deserializer<'de>,
{
    d.deserialize_any(OneofVisitor::<T>(PhantomData))
}

struct OneofVisitor<T>(PhantomData<T>);

impl<'de, T: ProtoOneof + Deserialize<'de>> Visitor<'de> for OneofVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "an object with one of {:?}", T::NAMES)
    }

    // ENC-DEFAULTS-OMITTED: null reads as "no member set".
    fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
        Ok(None)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<T>, A::Error> {
        let mut out = None;
        while let Some(key) = map.next_key::<KeyName<'de>>()? {
            let name = key.as_str();
            match T::NAMES.iter().find(|n| **n == name) {
                Some(known) => {
                    out = Some(map.next_value_seed(Member::<T> {
                        name: known,
                        marker: PhantomData,
                    })?)
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// A map key, borrowed when the input allows it.
enum KeyName<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl KeyName<'_> {
    fn as_str(&self) -> &str {
        match self {
            KeyName::Borrowed(s) => s,
            KeyName::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for KeyName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<KeyName<'de>, E> {
                Ok(KeyName::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName<'de>, E> {
                Ok(KeyName::Owned(v.to_string()))
            }
        }
        d.deserialize_str(V)
    }
}

/// Deserializes the value of member `name` as that variant of `T`, through
/// `T`'s own (derived) impl, so each member keeps its field policy.
struct Member<T> {
    name: &'static str,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Member<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, value: D) -> Result<T, D::Error> {
        T::deserialize(OneVariant {
            name: self.name,
            value,
        })
    }
}

/// A deserializer that presents one `(variant, value)` pair as an
/// externally tagged enum.
struct OneVariant<D> {
    name: &'static str,
    value: D,
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for OneVariant<D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, D: Deserializer<'de>> EnumAccess<'de> for OneVariant<D> {
    type Error = D::Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), D::Error> {
        let name: StrDeserializer<'_, D::Error> = self.name.into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de, D: Deserializer<'de>> VariantAccess<'de> for OneVariant<D> {
    type Error = D::Error;

    fn unit_variant(self) -> Result<(), D::Error> {
        Err(de::Error::custom("oneof members carry a value"))
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, D::Error> {
        seed.deserialize(self.value)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("oneof members carry a single value"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, D::Error> {
        Err(de::Error::custom("oneof members carry a single value"))
    }
}
