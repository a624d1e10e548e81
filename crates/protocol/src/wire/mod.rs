//! Runtime support for generated types: the serde helpers that realise the
//! encoding policy (`docs/spec/encoding.md`) and the [`Validate`] checks.
//!
//! Generated code (Courier's and a user's, from `courier-codegen`) refers to
//! these by path; applications rarely call them directly, except
//! [`to_payload`] / [`from_payload`] for typed payloads.

pub(crate) mod json_frame;
mod json_text;
pub mod maps;
pub mod msgpack;
pub mod nulls;
pub mod oneof;
pub mod payload;
mod scalars;
mod scan;
pub(crate) mod unique;

#[doc(hidden)]
pub use prost;
#[doc(hidden)]
pub use schemars;
#[doc(hidden)]
pub use serde;

pub use payload::{from_payload, to_payload, PayloadError, MAX_DEPTH};
pub use scalars::*;

/// Payload fields as embedded values (serde `with` module).
pub mod opt_payload {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer};
    /// Serializes `Some` payload as its embedded value.
    pub fn serialize<S: Serializer>(v: &Option<Bytes>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => super::payload::serialize(b, s),
            None => s.serialize_none(),
        }
    }
    /// Deserializes an embedded value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Bytes>, D::Error> {
        super::payload::deserialize(d).map(Some)
    }
}

/// JSON Schema of a payload: any JSON value.
pub fn payload_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "description": "Application payload: any JSON value." })
}

/// A generated proto enum: its value names, for the JSON and MessagePack
/// encodings (ENC-ENUM-NAMES).
pub trait ProtoEnum {
    /// Every value name, in declaration order.
    const NAMES: &'static [&'static str];
    /// The name of `value`, if this version defines it.
    fn name_of(value: i32) -> Option<&'static str>;
    /// The value named `name`, if this version defines it.
    fn value_of(name: &str) -> Option<i32>;
}

/// Why a decoded message breaks a rule serde or prost cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidateError {
    /// A 64-bit integer above 2^53−1 (ENC-INT53).
    #[error("field `{0}` exceeds 2^53-1")]
    Int53(&'static str),
    /// A payload field does not hold a well-formed JSON-model value.
    #[error("field `{field}`: {error}")]
    Payload {
        /// The field name.
        field: &'static str,
        /// What is wrong with it.
        error: PayloadError,
    },
}

/// Checks the rules of the encoding policy that types cannot (64-bit range,
/// payload well-formedness). Generated for every message.
pub trait Validate {
    /// Returns the first rule broken, if any.
    fn validate(&self) -> Result<(), ValidateError>;
}

/// `Validate` check of a 64-bit unsigned field.
pub fn check_u53(v: u64, field: &'static str) -> Result<(), ValidateError> {
    if v > msgpack::MAX_SAFE_INTEGER {
        Err(ValidateError::Int53(field))
    } else {
        Ok(())
    }
}

/// `Validate` check of a 64-bit signed field.
pub fn check_i53(v: i64, field: &'static str) -> Result<(), ValidateError> {
    check_u53(v.unsigned_abs(), field)
}

/// `Validate` check of a payload field (empty means absent).
pub fn check_payload(v: &[u8], field: &'static str) -> Result<(), ValidateError> {
    if v.is_empty() {
        return Ok(());
    }
    payload::validate(v).map_err(|error| ValidateError::Payload { field, error })
}

pub mod envelope;
#[doc(hidden)]
pub(crate) use envelope::envelope_impls;
