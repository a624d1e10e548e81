//! The byte format between the Lua scripts, Redis pub/sub and this
//! engine: a record is a run of netstring-like fields, `<len>:<bytes>`
//! (length in decimal, no separator), so payloads stay binary and nothing
//! is escaped. Scripts build records with the prelude's `ns()`.

use std::sync::Arc;

use bytes::Bytes;

use crate::engine::EngineError;

/// Appends one field to `out`.
pub(super) fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(field.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(field);
}

/// Reads the fields of a record in order.
pub(super) struct Fields {
    data: Bytes,
    at: usize,
}

impl Fields {
    pub(super) fn new(data: impl Into<Bytes>) -> Self {
        Fields {
            data: data.into(),
            at: 0,
        }
    }

    /// True when every field was read.
    pub(super) fn is_empty(&self) -> bool {
        self.at >= self.data.len()
    }

    fn corrupt(&self, what: &str) -> EngineError {
        EngineError::Corrupt(format!(
            "{what} at byte {} of a {}-byte record",
            self.at,
            self.data.len()
        ))
    }

    /// The next field, sharing the record's buffer.
    pub(super) fn bytes(&mut self) -> Result<Bytes, EngineError> {
        let rest = &self.data[self.at.min(self.data.len())..];
        let colon = rest
            .iter()
            .take(21)
            .position(|b| *b == b':')
            .ok_or_else(|| self.corrupt("missing field length"))?;
        let len: usize = std::str::from_utf8(&rest[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.corrupt("bad field length"))?;
        let start = self.at + colon + 1;
        let end = start
            .checked_add(len)
            .filter(|end| *end <= self.data.len())
            .ok_or_else(|| self.corrupt("truncated field"))?;
        self.at = end;
        Ok(self.data.slice(start..end))
    }

    /// The next field as UTF-8 text.
    pub(super) fn text(&mut self) -> Result<Arc<str>, EngineError> {
        let b = self.bytes()?;
        std::str::from_utf8(&b)
            .map(Arc::from)
            .map_err(|_| self.corrupt("field is not UTF-8"))
    }

    /// The next field as a decimal number.
    pub(super) fn number(&mut self) -> Result<u64, EngineError> {
        let b = self.bytes()?;
        std::str::from_utf8(&b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.corrupt("field is not a number"))
    }

    /// The next field as a flag (`1` or `0`).
    pub(super) fn flag(&mut self) -> Result<bool, EngineError> {
        Ok(self.number()? != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_binary_data() {
        let mut out = Vec::new();
        put(&mut out, b"m");
        put(&mut out, b"");
        put(&mut out, b"12");
        put(&mut out, &[0, 58, 255, 10]);
        let mut f = Fields::new(out);
        assert_eq!(&*f.text().unwrap(), "m");
        assert_eq!(&*f.text().unwrap(), "");
        assert_eq!(f.number().unwrap(), 12);
        assert_eq!(&f.bytes().unwrap()[..], &[0, 58, 255, 10]);
        assert!(f.is_empty());
    }

    #[test]
    fn malformed_records_are_typed_errors() {
        for bad in [&b"5:abc"[..], b"x:a", b"abc", b"99999999999999999999999:a"] {
            let mut f = Fields::new(bad.to_vec());
            assert!(matches!(f.bytes(), Err(EngineError::Corrupt(_))), "{bad:?}");
        }
        assert!(Fields::new(b"1:a".to_vec()).number().is_err());
    }
}
