//! v1 ↔ v2: v2 is a wire superset of v1, so one set of types (v2) serves
//! both versions. On a v1 session, v2-only message types are refused and
//! v2-only fields are dropped, exactly as a v1 peer would see them.

use crate::codec::{DecodeError, EncodeError};
use crate::wire::envelope::WireEnvelope;
use crate::{v1, v2, Version};

/// Message types that exist only in v2.
pub const V2_ONLY_TYPES: &[&str] = &["reauth_request", "batch"];

/// Adapts an envelope type to a session's negotiated version.
pub trait VersionCompat: Sized + Clone {
    /// Checks that the envelope may be sent to a peer of `version`, and
    /// returns the copy to send instead when fields must be dropped for it
    /// (`None`: send it as it is, the common case, which copies nothing;
    /// a `Cow` here cost a ~200-byte move on every encode).
    fn for_version(&self, version: Version) -> Result<Option<Self>, EncodeError>;
    /// Checks a decoded envelope against `version` in place, dropping fields
    /// that version does not define (ENC-UNKNOWN-FIELD). In place because
    /// an envelope is ~200 bytes: moving it in and out costs a `memmove`
    /// each way on every decoded frame.
    fn check_version(&mut self, version: Version) -> Result<(), DecodeError>;
}

impl VersionCompat for v1::Envelope {
    fn for_version(&self, _: Version) -> Result<Option<Self>, EncodeError> {
        Ok(None)
    }
    fn check_version(&mut self, _: Version) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl VersionCompat for v2::Envelope {
    fn for_version(&self, version: Version) -> Result<Option<Self>, EncodeError> {
        if version == Version::V2 {
            return Ok(None);
        }
        if let Some(t) = self.type_name().filter(|t| V2_ONLY_TYPES.contains(t)) {
            return Err(EncodeError::NotInVersion(t, version));
        }
        if has_v2_fields(self) {
            let mut e = self.clone();
            strip_v2_fields(&mut e);
            Ok(Some(e))
        } else {
            Ok(None)
        }
    }

    fn check_version(&mut self, version: Version) -> Result<(), DecodeError> {
        reset_unknown_enums(self);
        if version == Version::V1 {
            if let Some(t) = self.type_name().filter(|t| V2_ONLY_TYPES.contains(t)) {
                return Err(DecodeError::UnknownType(t.to_string()));
            }
            strip_v2_fields(self);
        }
        Ok(())
    }
}

fn has_v2_fields(e: &v2::Envelope) -> bool {
    use v2::envelope::Body;
    match &e.body {
        Some(Body::Error(m)) => m.retry_after_ms.is_some(),
        Some(Body::Disconnect(m)) => m.retry_after_ms.is_some(),
        Some(Body::Welcome(m)) => {
            m.dedupe_max_per_channel != 0 || m.limits.as_ref().is_some_and(|l| l.max_batch != 0)
        }
        _ => false,
    }
}

/// ENC-UNKNOWN-ENUM: an enum number this version does not define reads as
/// `_UNSPECIFIED`. prost keeps unknown numbers of Protobuf frames (the JSON
/// and MessagePack decoders already map them to 0). The test
/// `unknown_enum_numbers_read_as_unspecified` covers every enum field.
fn reset_unknown_enums(e: &mut v2::Envelope) {
    use v2::envelope::Body;
    fn reset<E: TryFrom<i32>>(v: &mut i32) {
        if E::try_from(*v).is_err() {
            *v = 0;
        }
    }
    match &mut e.body {
        Some(Body::Welcome(m)) => reset::<v2::Encoding>(&mut m.encoding),
        Some(Body::SubscribeAck(m)) => {
            if let Some(r) = m.recovery.as_mut() {
                reset::<v2::RecoveryStatus>(&mut r.status);
                reset::<v2::RecoveryReason>(&mut r.reason);
            }
        }
        Some(Body::PresenceEvent(m)) => reset::<v2::PresenceAction>(&mut m.action),
        Some(Body::Error(m)) => reset::<v2::ErrorCode>(&mut m.code),
        Some(Body::Batch(b)) => b.envelopes.iter_mut().for_each(reset_unknown_enums),
        _ => {}
    }
}

/// Clears every field v1 does not define. The test `v1_is_a_subset` checks
/// this list against the proto definitions.
fn strip_v2_fields(e: &mut v2::Envelope) {
    use v2::envelope::Body;
    match &mut e.body {
        Some(Body::Error(m)) => m.retry_after_ms = None,
        Some(Body::Disconnect(m)) => m.retry_after_ms = None,
        Some(Body::Welcome(m)) => {
            m.dedupe_max_per_channel = 0;
            if let Some(l) = m.limits.as_mut() {
                l.max_batch = 0;
            }
        }
        _ => {}
    }
}
