//! One codec API for the three wire encodings, selected by the negotiated
//! subprotocol. Decoding untrusted bytes never panics and never allocates
//! beyond a constant factor of the (size-limited) frame.

use bytes::Bytes;

use crate::compat::VersionCompat;
use crate::wire::envelope::{Tagged, WireEnvelope, UNKNOWN_TYPE_PREFIX};
use crate::wire::unique::UniqueKeys;
use crate::wire::ValidateError;
use crate::{close, Encoding, Subprotocol};

/// Default largest frame, in bytes (64 KiB), matching the reference
/// server's `max_message_bytes`.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Deepest nesting a MessagePack frame may have (JSON: serde_json's 128).
const MAX_MSGPACK_DEPTH: usize = 128;

/// Why a frame could not be decoded. Each variant maps to the close code
/// the spec requires ([`DecodeError::close_code`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The frame is larger than the limit (CLOSE-OVERSIZE): close with 1009.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size of the frame.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A text frame for a binary encoding or the reverse: close with 4000.
    #[error("{encoding} expects {} frames", if encoding.is_text() { "text" } else { "binary" })]
    WrongFrameKind {
        /// The negotiated encoding.
        encoding: Encoding,
    },
    /// The bytes are not a valid envelope in the encoding (CLOSE-MALFORMED):
    /// close with 4000. `detail` says what the parser found.
    #[error("malformed {encoding} frame: {detail}")]
    Malformed {
        /// The negotiated encoding.
        encoding: Encoding,
        /// The parser's description.
        detail: String,
    },
    /// A well-formed envelope breaks an encoding rule (53-bit integers,
    /// payload shape): close with 4000.
    #[error("invalid envelope: {0}")]
    Invalid(#[from] ValidateError),
    /// The `type` names no message of this version (CLOSE-UNKNOWN-TYPE):
    /// close with 4001. Empty when the envelope had no type at all.
    #[error("unknown message type `{0}`")]
    UnknownType(String),
}

impl DecodeError {
    /// The WebSocket close code the spec assigns to this error.
    pub fn close_code(&self) -> u16 {
        match self {
            DecodeError::TooLarge { .. } => close::MESSAGE_TOO_BIG,
            DecodeError::UnknownType(_) => close::UNKNOWN_TYPE,
            _ => close::BAD_FRAME,
        }
    }
}

/// Why an envelope could not be encoded. These are caller bugs: fix the
/// envelope rather than retrying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The envelope has no body.
    #[error("envelope has no body")]
    NoBody,
    /// The body does not exist in the session's version (v2-only on v1).
    #[error("message type `{0}` does not exist in protocol {1}")]
    NotInVersion(&'static str, crate::Version),
    /// serde refused the value (a payload that is not a JSON-model value).
    #[error("cannot encode: {0}")]
    Serialize(String),
}

/// Encodes and decodes envelopes for one negotiated subprotocol.
///
/// # Examples
///
/// ```
/// use courier_protocol::{v2, Codec, Subprotocol};
///
/// let codec = Codec::new("courier.v2.json".parse::<Subprotocol>().unwrap());
/// let ping = v2::Envelope { body: Some(v2::envelope::Body::Ping(v2::Ping { ts: 7 })) };
/// let frame = codec.encode(&ping).unwrap();
/// assert_eq!(&frame[..], br#"{"type":"ping","ts":7}"#);
/// assert_eq!(codec.decode::<v2::Envelope>(&frame).unwrap(), ping);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    subprotocol: Subprotocol,
    max_message_bytes: usize,
}

impl Codec {
    /// A codec for `subprotocol` with the default frame limit.
    pub fn new(subprotocol: Subprotocol) -> Self {
        Codec {
            subprotocol,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Sets the largest frame `decode` accepts (default 64 KiB).
    pub fn with_max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit;
        self
    }

    /// The subprotocol this codec speaks.
    pub fn subprotocol(&self) -> Subprotocol {
        self.subprotocol
    }

    /// The largest frame `decode` accepts.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Encodes an envelope into one frame's bytes (text for JSON).
    pub fn encode<E: WireEnvelope + VersionCompat>(
        &self,
        envelope: &E,
    ) -> Result<Bytes, EncodeError> {
        let converted = envelope.for_version(self.subprotocol.version)?;
        let envelope: &E = converted.as_ref().unwrap_or(envelope);
        if envelope.type_name().is_none() {
            return Err(EncodeError::NoBody);
        }
        let ser = |e: String| EncodeError::Serialize(e);
        Ok(match self.subprotocol.encoding {
            Encoding::Json => {
                // One allocation for typical envelopes instead of a doubling
                // series (the codec benchmark's publish frame is ~220 bytes).
                let mut out = Vec::with_capacity(256);
                // Payloads are transcoded into `out` from their MessagePack
                // bytes (`wire::json_frame`), not through serde.
                crate::wire::json_frame::to_writer(&mut out, envelope)
                    .map_err(|e| ser(e.to_string()))?;
                Bytes::from(out)
            }
            Encoding::MsgPack => {
                let mut out = Vec::with_capacity(256);
                let mut ser_ = rmp_serde::Serializer::new(&mut out).with_struct_map();
                serde::Serialize::serialize(envelope, &mut ser_).map_err(|e| ser(e.to_string()))?;
                Bytes::from(out)
            }
            // Sized exactly by `encoded_len`: one allocation, no growth.
            Encoding::Protobuf => Bytes::from(envelope.encode_to_vec()),
        })
    }

    /// Decodes one frame. `text` says whether it arrived as a text frame
    /// (pass `None` when the transport has no frame kinds).
    pub fn decode_frame<E: WireEnvelope + VersionCompat>(
        &self,
        frame: &[u8],
        text: Option<bool>,
    ) -> Result<E, DecodeError> {
        self.check_kind(text)?;
        self.decode(frame)
    }

    /// [`Codec::decode_frame`] for a frame the transport already holds as
    /// [`Bytes`]: Protobuf payloads become slices of it instead of copies.
    pub fn decode_frame_bytes<E: WireEnvelope + VersionCompat>(
        &self,
        frame: Bytes,
        text: Option<bool>,
    ) -> Result<E, DecodeError> {
        self.check_kind(text)?;
        self.decode_bytes(frame)
    }

    fn check_kind(&self, text: Option<bool>) -> Result<(), DecodeError> {
        match text {
            Some(text) if text != self.subprotocol.encoding.is_text() => {
                Err(DecodeError::WrongFrameKind {
                    encoding: self.subprotocol.encoding,
                })
            }
            _ => Ok(()),
        }
    }

    /// Decodes one frame's bytes.
    pub fn decode<E: WireEnvelope + VersionCompat>(&self, frame: &[u8]) -> Result<E, DecodeError> {
        self.check_size(frame.len())?;
        match self.subprotocol.encoding {
            Encoding::Protobuf => self.decode_protobuf(frame),
            _ => self.decode_map(frame),
        }
    }

    /// Decodes one frame held as [`Bytes`]. In Protobuf, `bytes` fields (the
    /// payloads) are zero-copy slices of `frame`; JSON and MessagePack
    /// payloads are re-encoded anyway, so this is [`Codec::decode`] for them.
    ///
    /// # Examples
    ///
    /// ```
    /// use courier_protocol::{v2, wire, Codec, Subprotocol};
    ///
    /// let codec = Codec::new("courier.v2.proto".parse::<Subprotocol>().unwrap());
    /// let publish = v2::Envelope {
    ///     body: Some(v2::envelope::Body::Publish(v2::Publish {
    ///         id: "p-1".into(),
    ///         channel: "chat".into(),
    ///         payload: wire::to_payload(&"hi").unwrap(),
    ///     })),
    /// };
    /// let frame = codec.encode(&publish).unwrap();
    /// assert_eq!(codec.decode_bytes::<v2::Envelope>(frame).unwrap(), publish);
    /// ```
    pub fn decode_bytes<E: WireEnvelope + VersionCompat>(
        &self,
        frame: Bytes,
    ) -> Result<E, DecodeError> {
        self.check_size(frame.len())?;
        match self.subprotocol.encoding {
            Encoding::Protobuf => self.decode_protobuf(frame),
            _ => self.decode_map(&frame),
        }
    }

    fn check_size(&self, size: usize) -> Result<(), DecodeError> {
        if size > self.max_message_bytes {
            return Err(DecodeError::TooLarge {
                size,
                limit: self.max_message_bytes,
            });
        }
        Ok(())
    }

    fn malformed(&self, detail: String) -> DecodeError {
        if let Some(t) = detail.strip_prefix(UNKNOWN_TYPE_PREFIX) {
            let t = t.split('`').nth(1).unwrap_or_default();
            return DecodeError::UnknownType(t.to_string());
        }
        DecodeError::Malformed {
            encoding: self.subprotocol.encoding,
            detail,
        }
    }

    fn decode_protobuf<E: WireEnvelope + VersionCompat, B: bytes::Buf>(
        &self,
        frame: B,
    ) -> Result<E, DecodeError> {
        // Decoded and checked in place: the envelope moves once, on return.
        let mut env = E::default();
        if let Err(e) = env.merge(frame) {
            return Err(self.malformed(e.to_string()));
        }
        crate::wire::Validate::validate(&env)?;
        if env.type_name().is_none() {
            // ENC-UNKNOWN-TYPE: prost skips unknown fields, so an unknown
            // body arrives as no body at all.
            return Err(DecodeError::UnknownType(String::new()));
        }
        env.check_version(self.subprotocol.version)?;
        Ok(env)
    }

    /// JSON and MessagePack: both are the same map data model.
    fn decode_map<E: WireEnvelope + VersionCompat>(&self, frame: &[u8]) -> Result<E, DecodeError> {
        let malformed = |e: String| self.malformed(e);
        let tagged = match self.subprotocol.encoding {
            Encoding::Json => {
                let mut de = serde_json::Deserializer::from_slice(frame);
                let t = E::deserialize_tagged(UniqueKeys(&mut de))
                    .map_err(|e| malformed(e.to_string()))?;
                de.end().map_err(|e| malformed(e.to_string()))?;
                t
            }
            _ => {
                let mut rest = frame;
                crate::wire::msgpack::skip(&mut rest).map_err(|e| malformed(e.to_string()))?;
                if !rest.is_empty() {
                    return Err(malformed("trailing bytes after the envelope".into()));
                }
                let mut de = rmp_serde::Deserializer::from_read_ref(frame);
                de.set_max_depth(MAX_MSGPACK_DEPTH);
                E::deserialize_tagged(UniqueKeys(&mut de)).map_err(|e| malformed(e.to_string()))?
            }
        };
        let mut env = match tagged {
            Tagged::Known(e) => e,
            Tagged::Unknown(t) => return Err(DecodeError::UnknownType(t)),
            Tagged::Missing => return Err(DecodeError::UnknownType(String::new())),
        };
        env.check_version(self.subprotocol.version)?;
        Ok(env)
    }
}
