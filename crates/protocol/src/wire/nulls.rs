//! `null` read as the default for fields of typed payloads whose serde has
//! no helper of its own (strings, bools, 32-bit numbers, repeated fields):
//! ENC-DEFAULTS-OMITTED requires decoders to read a non-payload field whose
//! value is null as its default, and serde's derived impls refuse null for
//! a `String` or a `Vec`.

use serde::{Deserialize, Deserializer};

/// Deserializes `T`, or its default from `null` (serde `deserialize_with`).
pub fn or_default<'de, T, D>(d: D) -> Result<T, D::Error>
where
    T: Deserialize<'de> + Default,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}
