//! Frames as they go on the wire: a session's [`Wire`] (how its envelopes
//! become bytes: a WebSocket subprotocol, or an SSE event stream), frames
//! shared between sessions (an envelope encoded at most once per wire form
//! and handed to every recipient as refcounted `Bytes`), and `batch` frames
//! assembled from already-encoded envelopes without re-encoding them.
//! No I/O and no locks: the hub and the sessions both build on it.

use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Codec, EncodeError, Encoding, Subprotocol, Version, WireEnvelope};

/// How one session's envelopes become bytes on its transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// One envelope per WebSocket message in the negotiated subprotocol.
    WebSocket(Subprotocol),
    /// One Server-Sent Event per envelope, JSON data (SSE-STREAM).
    Sse(Version),
}

/// Number of distinct [`Wire`] forms (six subprotocols, two SSE versions).
pub(crate) const WIRE_FORMS: usize = 8;

impl Wire {
    /// The subprotocol whose codec encodes this wire's envelopes.
    pub fn subprotocol(self) -> Subprotocol {
        match self {
            Wire::WebSocket(sp) => sp,
            Wire::Sse(v) => Subprotocol::new(v, Encoding::Json),
        }
    }

    /// A dense index of this form, below [`WIRE_FORMS`].
    pub(crate) fn slot(self) -> usize {
        let sp = self.subprotocol();
        let v = match sp.version {
            Version::V1 => 0,
            Version::V2 => 1,
        };
        match self {
            Wire::WebSocket(_) => {
                v * 3
                    + match sp.encoding {
                        Encoding::Json => 0,
                        Encoding::MsgPack => 1,
                        Encoding::Protobuf => 2,
                    }
            }
            Wire::Sse(_) => 6 + v,
        }
    }

    /// The bytes of `envelope` on this wire.
    pub fn encode(self, envelope: &v2::Envelope) -> Result<Bytes, EncodeError> {
        let bytes = Codec::new(self.subprotocol()).encode(envelope)?;
        Ok(match self {
            Wire::WebSocket(_) => bytes,
            Wire::Sse(_) => sse_event(
                envelope.type_name().unwrap_or("message"),
                sse_event_id(envelope).as_deref(),
                &bytes,
            ),
        })
    }
}

/// SSE-EVENT-ID: `<channel>:<epoch>:<seq>` on message events only.
pub(crate) fn sse_event_id(env: &v2::Envelope) -> Option<String> {
    match &env.body {
        Some(Body::Message(m)) => Some(format!("{}:{}:{}", m.channel, m.epoch, m.seq)),
        _ => None,
    }
}

/// SSE-STREAM: one event per envelope, its type as `event:`, one `data:` line.
pub(crate) fn sse_event(ty: &str, id: Option<&str>, json: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(json.len() + ty.len() + 32);
    out.put_slice(b"event: ");
    out.put_slice(ty.as_bytes());
    out.put_u8(b'\n');
    if let Some(id) = id {
        out.put_slice(b"id: ");
        // An id must not contain line breaks; channel names exclude control characters.
        out.put_slice(id.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"data: ");
    out.put_slice(json);
    out.put_slice(b"\n\n");
    out.freeze()
}

/// An envelope delivered to many sessions (`message`, `presence_event`,
/// `ephemeral`). Each wire form's bytes are produced once, by
/// `SharedFrame::prepare` before the hub takes a channel lock or by the
/// first session that needs them, and shared by the rest.
#[derive(Debug)]
pub struct SharedFrame {
    envelope: v2::Envelope,
    encoded: [OnceLock<Bytes>; WIRE_FORMS],
}

impl SharedFrame {
    /// Wraps an envelope for sharing.
    pub fn new(envelope: v2::Envelope) -> Arc<Self> {
        Arc::new(SharedFrame {
            envelope,
            encoded: Default::default(),
        })
    }

    /// The envelope.
    pub fn envelope(&self) -> &v2::Envelope {
        &self.envelope
    }

    /// The envelope's bytes on `wire`, encoding them on first use.
    pub fn bytes(&self, wire: Wire) -> Result<Bytes, EncodeError> {
        let slot = &self.encoded[wire.slot()];
        if let Some(b) = slot.get() {
            return Ok(b.clone());
        }
        let b = wire.encode(&self.envelope)?;
        Ok(slot.get_or_init(|| b).clone())
    }

    /// Encodes the forms whose bits are set in `mask` (bit = [`Wire::slot`]),
    /// so that delivering under a lock only clones bytes.
    pub(crate) fn prepare(&self, mask: u8, wires: &[Wire; WIRE_FORMS]) {
        for (i, wire) in wires.iter().enumerate() {
            if mask & (1 << i) != 0 {
                let _ = self.bytes(*wire);
            }
        }
    }
}

/// Every wire form, indexed by [`Wire::slot`].
pub(crate) const ALL_WIRES: [Wire; WIRE_FORMS] = {
    use Encoding::*;
    use Version::*;
    [
        Wire::WebSocket(Subprotocol::new(V1, Json)),
        Wire::WebSocket(Subprotocol::new(V1, MsgPack)),
        Wire::WebSocket(Subprotocol::new(V1, Protobuf)),
        Wire::WebSocket(Subprotocol::new(V2, Json)),
        Wire::WebSocket(Subprotocol::new(V2, MsgPack)),
        Wire::WebSocket(Subprotocol::new(V2, Protobuf)),
        Wire::Sse(V1),
        Wire::Sse(V2),
    ]
};

/// Assembles a `batch` envelope from encoded envelopes of one encoding.
/// The result equals what `Codec::encode` gives for the same batch.
pub(crate) fn assemble_batch(encoding: Encoding, frames: &[Bytes]) -> Bytes {
    let body: usize = frames.iter().map(|f| f.len() + 6).sum();
    let mut out = BytesMut::with_capacity(body + 32);
    match encoding {
        Encoding::Json => {
            out.put_slice(br#"{"type":"batch","envelopes":["#);
            for (i, f) in frames.iter().enumerate() {
                if i > 0 {
                    out.put_u8(b',');
                }
                out.put_slice(f);
            }
            out.put_slice(b"]}");
        }
        Encoding::MsgPack => {
            out.put_u8(0x82);
            out.put_slice(b"\xa4type\xa5batch\xa9envelopes");
            let n = frames.len();
            if n < 16 {
                out.put_u8(0x90 | n as u8);
            } else if n <= u16::MAX as usize {
                out.put_u8(0xdc);
                out.put_u16(n as u16);
            } else {
                out.put_u8(0xdd);
                out.put_u32(n as u32);
            }
            for f in frames {
                out.put_slice(f);
            }
        }
        Encoding::Protobuf => {
            // Envelope.batch = 23 (length-delimited) holding Batch.envelopes = 1.
            let inner: usize = frames
                .iter()
                .map(|f| 1 + varint_len(f.len() as u64) + f.len())
                .sum();
            put_varint(&mut out, (23 << 3) | 2);
            put_varint(&mut out, inner as u64);
            for f in frames {
                out.put_u8((1 << 3) | 2);
                put_varint(&mut out, f.len() as u64);
                out.put_slice(f);
            }
        }
    }
    out.freeze()
}

/// Bytes a batch of `frames` adds around them, at most (for size checks).
pub(crate) const BATCH_OVERHEAD: usize = 32;
/// Bytes each entry adds inside a batch, at most.
pub(crate) const BATCH_ENTRY_OVERHEAD: usize = 11;

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use courier_protocol::wire;

    fn msg(seq: u64) -> v2::Envelope {
        v2::Envelope {
            body: Some(v2::envelope::Body::Message(v2::Message {
                channel: "chat".into(),
                epoch: "e1".into(),
                seq,
                id: format!("p-{seq}"),
                ts: 1_700_000_000_000 + seq,
                payload: wire::payload::from_json(
                    &serde_json::json!({"text": "hi", "n": [1, 2.5, null]}),
                )
                .unwrap(),
                publisher: "s_1".into(),
            })),
        }
    }

    #[test]
    fn assembled_batches_equal_codec_output() {
        for n in [0usize, 1, 3, 20] {
            let envs: Vec<v2::Envelope> = (1..=n as u64).map(msg).collect();
            let batch = v2::Envelope {
                body: Some(v2::envelope::Body::Batch(v2::Batch {
                    envelopes: envs.clone(),
                })),
            };
            for encoding in Encoding::ALL {
                let codec = Codec::new(Subprotocol::new(Version::V2, encoding));
                let frames: Vec<Bytes> = envs.iter().map(|e| codec.encode(e).unwrap()).collect();
                let assembled = assemble_batch(encoding, &frames);
                let decoded: v2::Envelope = codec.decode(&assembled).unwrap();
                assert_eq!(decoded, batch, "{encoding} n={n}");
                assert!(
                    assembled.len()
                        <= frames
                            .iter()
                            .map(|f| f.len() + BATCH_ENTRY_OVERHEAD)
                            .sum::<usize>()
                            + BATCH_OVERHEAD
                );
            }
        }
    }

    #[test]
    fn shared_frame_encodes_once_per_subprotocol() {
        let f = SharedFrame::new(msg(1));
        for (i, wire) in ALL_WIRES.iter().enumerate() {
            assert_eq!(wire.slot(), i);
            let a = f.bytes(*wire).unwrap();
            let b = f.bytes(*wire).unwrap();
            assert_eq!(a.as_ptr(), b.as_ptr(), "{wire:?} re-encoded");
            if let Wire::WebSocket(p) = wire {
                assert_eq!(Codec::new(*p).decode::<v2::Envelope>(&a).unwrap(), msg(1));
            }
        }
        let sse = f.bytes(Wire::Sse(Version::V2)).unwrap();
        assert!(sse.starts_with(b"event: message\nid: chat:e1:1\ndata: {"));
    }
}
