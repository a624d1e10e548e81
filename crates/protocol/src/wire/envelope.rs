//! serde for envelopes: a flat map whose `type` key names the body
//! (ENC-JSON-FLAT). Encoders write `type` first; decoders take the fast path
//! when it is first and buffer the earlier keys when it is not.

use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::Deserializer;

use super::msgpack;
use super::payload::ValueSeed;
use super::Validate;

/// Prefix of the serde error raised for an unknown `type` inside a message
/// that holds envelopes (a batch); the codec maps it to an unknown-type error.
pub const UNKNOWN_TYPE_PREFIX: &str = "unknown message type ";

/// An envelope as decoded, with an unknown or missing `type` kept apart from
/// malformed input so each gets its own close code.
#[derive(Debug)]
pub enum Tagged<T> {
    /// A body this version defines.
    Known(T),
    /// A `type` this version does not define.
    Unknown(String),
    /// No `type` key at all.
    Missing,
}

/// Implemented (by generated code) for every version's `Envelope`.
pub trait WireEnvelope:
    prost::Message + Default + Clone + serde::Serialize + Validate + Sized + 'static
{
    /// The `type` names of every body, in field-number order.
    const TYPES: &'static [&'static str];
    /// The `type` name of this envelope's body (`None` when it has none).
    fn type_name(&self) -> Option<&'static str>;
    /// Deserializes the body named `type_name` from `d` (the rest of the
    /// map). Returns `None`, having consumed the input, for unknown names.
    fn dispatch<'de, D: Deserializer<'de>>(type_name: &str, d: D)
        -> Result<Option<Self>, D::Error>;
    /// Deserializes an envelope, reporting unknown and missing types apart.
    fn deserialize_tagged<'de, D: Deserializer<'de>>(d: D) -> Result<Tagged<Self>, D::Error> {
        d.deserialize_map(EnvelopeVisitor::<Self>(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<E>(std::marker::PhantomData<E>);

enum Key<'de> {
    Type,
    Borrowed(&'de str),
    Owned(String),
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(if v == "type" {
            Key::Type
        } else {
            Key::Borrowed(v)
        })
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(if v == "type" {
            Key::Type
        } else {
            Key::Owned(v.to_string())
        })
    }
}

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

enum TypeName<'de> {
    Borrowed(&'de str),
    Owned(String),
    /// ENC-UNKNOWN-TYPE: a `type` that is not a string is an unknown type
    /// (close 4001), not a malformed frame.
    NotString,
}

impl TypeName<'_> {
    fn as_str(&self) -> &str {
        match self {
            TypeName::Borrowed(s) => s,
            TypeName::Owned(s) => s,
            // No body is named "": dispatch skips the rest as unknown.
            TypeName::NotString => "",
        }
    }
}

impl<'de> de::Deserialize<'de> for TypeName<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TypeName<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a message type name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<TypeName<'de>, E> {
                Ok(TypeName::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<TypeName<'de>, E> {
                Ok(TypeName::Owned(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_unit<E: de::Error>(self) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<TypeName<'de>, E> {
                Ok(TypeName::NotString)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TypeName<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TypeName::NotString)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TypeName<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(TypeName::NotString)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de, E: WireEnvelope> Visitor<'de> for EnvelopeVisitor<E> {
    type Value = Tagged<E>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an envelope (a map with a `type` key)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tagged<E>, A::Error> {
        let first = match map.next_key::<Key<'de>>()? {
            None => return Ok(Tagged::Missing),
            Some(k) => k,
        };
        if let Key::Type = first {
            // Fast path: `type` first, as every Courier encoder writes it.
            let t: TypeName<'de> = map.next_value()?;
            let d = de::value::MapAccessDeserializer::new(map);
            return Ok(match E::dispatch(t.as_str(), d)? {
                Some(e) => Tagged::Known(e),
                None => Tagged::Unknown(t.as_str().to_string()),
            });
        }
        // Slow path: buffer the entries as a MessagePack map until `type`
        // turns up, then decode the body from the buffer.
        let mut buf = Vec::with_capacity(256);
        let mut n = 0u32;
        let mut type_name: Option<String> = None;
        let mut key = Some(first);
        while let Some(k) = key
            .take()
            .map(Ok)
            .or_else(|| map.next_key::<Key<'de>>().transpose())
        {
            match k? {
                Key::Type => {
                    type_name = Some(map.next_value::<TypeName<'de>>()?.as_str().to_string())
                }
                Key::Borrowed(k) => {
                    msgpack::write_str(&mut buf, k);
                    map.next_value_seed(ValueSeed {
                        out: &mut buf,
                        depth: 0,
                    })?;
                    n += 1;
                }
                Key::Owned(k) => {
                    msgpack::write_str(&mut buf, &k);
                    map.next_value_seed(ValueSeed {
                        out: &mut buf,
                        depth: 0,
                    })?;
                    n += 1;
                }
            }
        }
        let Some(t) = type_name else {
            return Ok(Tagged::Missing);
        };
        let mut whole = msgpack::map_header(n);
        whole.extend_from_slice(&buf);
        let mut de = rmp_serde::Deserializer::from_read_ref(&whole);
        de.set_max_depth(128);
        match E::dispatch(&t, &mut de).map_err(de::Error::custom)? {
            Some(e) => Ok(Tagged::Known(e)),
            None => Ok(Tagged::Unknown(t)),
        }
    }
}

/// Consumes the rest of the input after an unknown `type`.
pub fn skip<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    <IgnoredAny as de::Deserialize>::deserialize(d).map(|_| ())
}

/// Implements serde, schemars and [`WireEnvelope`] for a version's Envelope.
/// Invoked by the code `courier-codegen` generates.
macro_rules! envelope_impls {
    ($env:ident, $m:ident, { $($name:literal => $var:ident($ty:ty)),* $(,)? }) => {
        impl $crate::wire::serde::Serialize for $env {
            fn serialize<S: $crate::wire::serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                match &self.body {
                    ::core::option::Option::Some(b) => $crate::wire::serde::Serialize::serialize(b, s),
                    ::core::option::Option::None => ::core::result::Result::Err(
                        <S::Error as $crate::wire::serde::ser::Error>::custom("envelope has no body"),
                    ),
                }
            }
        }
        impl<'de> $crate::wire::serde::Deserialize<'de> for $env {
            fn deserialize<D: $crate::wire::serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                use $crate::wire::serde::de::Error as _;
                match <$env as $crate::wire::envelope::WireEnvelope>::deserialize_tagged(d)? {
                    $crate::wire::envelope::Tagged::Known(e) => Ok(e),
                    $crate::wire::envelope::Tagged::Unknown(t) => Err(D::Error::custom(format!(
                        "{}`{}`", $crate::wire::envelope::UNKNOWN_TYPE_PREFIX, t
                    ))),
                    $crate::wire::envelope::Tagged::Missing => Err(D::Error::custom(format!(
                        "{}(none)", $crate::wire::envelope::UNKNOWN_TYPE_PREFIX
                    ))),
                }
            }
        }
        impl $crate::wire::schemars::JsonSchema for $env {
            fn schema_name() -> ::std::borrow::Cow<'static, str> {
                "Envelope".into()
            }
            fn json_schema(g: &mut $crate::wire::schemars::SchemaGenerator) -> $crate::wire::schemars::Schema {
                <$m::Body as $crate::wire::schemars::JsonSchema>::json_schema(g)
            }
        }
        impl $crate::wire::envelope::WireEnvelope for $env {
            const TYPES: &'static [&'static str] = &[$($name),*];
            fn type_name(&self) -> ::core::option::Option<&'static str> {
                match &self.body {
                    $(::core::option::Option::Some($m::Body::$var(_)) => ::core::option::Option::Some($name),)*
                    ::core::option::Option::None => ::core::option::Option::None,
                }
            }
            fn dispatch<'de, D: $crate::wire::serde::Deserializer<'de>>(
                type_name: &str,
                d: D,
            ) -> ::core::result::Result<::core::option::Option<Self>, D::Error> {
                let body = match type_name {
                    $($name => $m::Body::$var(<$ty as $crate::wire::serde::Deserialize>::deserialize(d)?),)*
                    _ => {
                        $crate::wire::envelope::skip(d)?;
                        return Ok(::core::option::Option::None);
                    }
                };
                Ok(::core::option::Option::Some($env { body: ::core::option::Option::Some(body) }))
            }
        }
    };
}
pub(crate) use envelope_impls;
