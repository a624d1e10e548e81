//! Payload values: application data in the JSON data model, held in memory
//! (and in Protobuf frames) as canonical MessagePack, embedded as a JSON value
//! in JSON frames and as a MessagePack value in MessagePack frames.
//!
//! ENC-PAYLOAD: one data model for all three encodings lets a server relay a
//! payload between subscribers of different encodings without knowing the
//! application's schema, and without ever materialising a value tree.

use std::cell::Cell;
use std::fmt;

use base64::Engine as _;
use bytes::Bytes;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserializer, Serialize, Serializer};

use super::msgpack::{self, Item, ReadError};

/// Deepest nesting of arrays and maps a payload may have.
pub const MAX_DEPTH: usize = 64;

/// Why a payload value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The MessagePack bytes are cut short or use a marker outside the JSON model.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// Bytes are left over after the value.
    #[error("trailing bytes after the payload value")]
    Trailing,
    /// A map key is not a string (JSON objects only have string keys).
    #[error("payload map keys must be strings")]
    NonStringKey,
    /// A map holds the same key twice (ENC-PAYLOAD-INVALID).
    #[error("payload map holds a key twice")]
    DuplicateKey,
    /// A string is not valid UTF-8.
    #[error("payload string is not valid UTF-8")]
    Utf8,
    /// NaN or an infinity: JSON cannot carry them.
    #[error("payload number is NaN or infinite")]
    NonFinite,
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("payload nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// A typed payload failed to (de)serialize.
    #[error("typed payload: {0}")]
    Typed(String),
}

/// Checks that `bytes` is exactly one well-formed payload value
/// (ENC-PAYLOAD-INVALID), in one pass without allocating.
pub fn validate(bytes: &[u8]) -> Result<(), PayloadError> {
    super::scan::validate(bytes)
}

/// Encodes a typed value as a payload (canonical MessagePack).
pub fn to_payload<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, PayloadError> {
    let raw = rmp_serde::to_vec_named(value).map_err(|e| PayloadError::Typed(e.to_string()))?;
    // Re-write canonically (integral floats as integers, shortest headers).
    let mut de = rmp_serde::Deserializer::from_read_ref(&raw);
    let mut out = Vec::with_capacity(raw.len());
    ValueSeed {
        out: &mut out,
        depth: 0,
    }
    .deserialize(&mut de)
    .map_err(|e| PayloadError::Typed(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// Decodes a payload into a typed value.
pub fn from_payload<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, PayloadError> {
    rmp_serde::from_slice(payload).map_err(|e| PayloadError::Typed(e.to_string()))
}

/// Encodes a `serde_json::Value` as a payload.
pub fn from_json(value: &serde_json::Value) -> Result<Bytes, PayloadError> {
    let mut out = Vec::new();
    ValueSeed {
        out: &mut out,
        depth: 0,
    }
    .deserialize(value)
    .map_err(|e: serde_json::Error| PayloadError::Typed(e.to_string()))?;
    Ok(Bytes::from(out))
}

/// Decodes a payload as a `serde_json::Value` (bytes become base64 strings).
pub fn to_json(payload: &[u8]) -> Result<serde_json::Value, PayloadError> {
    serde_json::to_value(Embedded(payload)).map_err(|e| PayloadError::Typed(e.to_string()))
}

/// Writes a payload as the JSON text a JSON frame embeds (byte strings as
/// base64 strings), appending to `out`: what [`to_json`] holds, as text,
/// without a value tree. After an error `out` may hold part of the text.
pub fn write_json_text(out: &mut Vec<u8>, payload: &[u8]) -> Result<(), PayloadError> {
    super::json_text::write_json_text(out, payload)
}

/// Serializes payload bytes as the embedded value (serde `with` helper).
pub fn serialize<S: Serializer>(payload: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    // Inside the JSON codec the payload goes to its formatter as bytes, to
    // be transcoded straight into the frame (`json_frame`). Elsewhere this
    // costs one thread-local read (asking `is_human_readable` first made
    // MessagePack encodes measurably slower: rmp-serde answers at run time).
    if super::json_frame::claim_payload() {
        return s.serialize_bytes(payload);
    }
    Embedded(payload).serialize(s)
}

/// Deserializes an embedded value into canonical payload bytes.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    let mut out = Vec::new();
    ValueSeed {
        out: &mut out,
        depth: 0,
    }
    .deserialize(d)?;
    Ok(Bytes::from(out))
}

/// A payload borrowed for serialization as an embedded value.
pub struct Embedded<'a>(pub &'a [u8]);

impl Serialize for Embedded<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cursor = Cell::new(self.0);
        let r = At {
            cursor: &cursor,
            depth: 0,
        }
        .serialize(s)?;
        Ok(r)
    }
}

struct At<'c, 'a> {
    cursor: &'c Cell<&'a [u8]>,
    depth: usize,
}

impl Serialize for At<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = self.cursor.get();
        let item = msgpack::read(&mut buf).map_err(ser::Error::custom)?;
        self.cursor.set(buf);
        // ENC-PAYLOAD: at most MAX_DEPTH arrays and maps deep, the bound
        // `validate` and the writer (`ValueSeed::nested`) apply: a container
        // at depth MAX_DEPTH would be the 65th (found by the payload fuzz
        // target: this reader let one more level through than the writer).
        if self.depth >= MAX_DEPTH && matches!(item, Item::Array(_) | Item::Map(_)) {
            return Err(ser::Error::custom(PayloadError::TooDeep));
        }
        fn utf8<E: ser::Error>(b: &[u8]) -> Result<&str, E> {
            std::str::from_utf8(b).map_err(|_| E::custom(PayloadError::Utf8))
        }
        match item {
            Item::Nil => s.serialize_unit(),
            Item::Bool(b) => s.serialize_bool(b),
            Item::Uint(u) => s.serialize_u64(u),
            Item::Int(i) => s.serialize_i64(i),
            Item::Float(f) if f.is_finite() => s.serialize_f64(f),
            Item::Float(_) => Err(ser::Error::custom(PayloadError::NonFinite)),
            Item::Str(b) => s.serialize_str(utf8::<S::Error>(b)?),
            Item::Bin(b) if s.is_human_readable() => {
                s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
            }
            Item::Bin(b) => s.serialize_bytes(b),
            // ENC-NO-PANIC: the header's count is untrusted (this also runs
            // on unvalidated bytes via `to_json`), and serializers such as
            // serde_json's allocate the hinted capacity up front. Every item
            // takes at least one byte, so the bytes left bound the count.
            Item::Array(n) => {
                let mut seq = s.serialize_seq(Some((n as usize).min(buf.len())))?;
                for _ in 0..n {
                    seq.serialize_element(&At {
                        cursor: self.cursor,
                        depth: self.depth + 1,
                    })?;
                }
                seq.end()
            }
            Item::Map(n) => {
                let mut map = s.serialize_map(Some((n as usize).min(buf.len() / 2)))?;
                for _ in 0..n {
                    let mut buf = self.cursor.get();
                    let key = match msgpack::read(&mut buf).map_err(ser::Error::custom)? {
                        Item::Str(k) => utf8::<S::Error>(k)?,
                        _ => return Err(ser::Error::custom(PayloadError::NonStringKey)),
                    };
                    self.cursor.set(buf);
                    map.serialize_entry(
                        key,
                        &At {
                            cursor: self.cursor,
                            depth: self.depth + 1,
                        },
                    )?;
                }
                map.end()
            }
        }
    }
}

/// Writes one value from any deserializer into canonical MessagePack.
pub(crate) struct ValueSeed<'o> {
    pub(crate) out: &'o mut Vec<u8>,
    pub(crate) depth: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl ValueSeed<'_> {
    fn nested<E: de::Error>(&mut self) -> Result<ValueSeed<'_>, E> {
        if self.depth >= MAX_DEPTH {
            return Err(E::custom(PayloadError::TooDeep));
        }
        Ok(ValueSeed {
            out: self.out,
            depth: self.depth + 1,
        })
    }

    /// Replaces the 5 bytes reserved at `at` by the real header, shifting
    /// the contents left when the header is shorter (the common case).
    fn patch_header(&mut self, at: usize, header: Vec<u8>) {
        self.out.splice(at..at + 5, header);
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON-model value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push(0xc0);
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push(if v { 0xc3 } else { 0xc2 });
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        msgpack::write_int(self.out, v);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        msgpack::write_uint(self.out, v);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        if !v.is_finite() {
            return Err(E::custom(PayloadError::NonFinite));
        }
        msgpack::write_float(self.out, v);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        msgpack::write_str(self.out, v);
        Ok(())
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<(), E> {
        msgpack::write_bin(self.out, v);
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 5]);
        let mut n = 0u32;
        while seq.next_element_seed(self.nested()?)?.is_some() {
            n += 1;
        }
        self.patch_header(at, msgpack::array_header(n));
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let at = self.out.len();
        self.out.extend_from_slice(&[0; 5]);
        let mut n = 0u32;
        while map.next_key_seed(KeySeed { out: self.out })?.is_some() {
            map.next_value_seed(self.nested()?)?;
            n += 1;
        }
        self.patch_header(at, msgpack::map_header(n));
        Ok(())
    }
}

/// Map keys: strings only.
struct KeySeed<'o> {
    out: &'o mut Vec<u8>,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string map key")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        msgpack::write_str(self.out, v);
        Ok(())
    }
}
