//! One envelope shown in every encoding: the JSON text frame, and the
//! MessagePack and Protobuf binary frames as hex, all produced by the real
//! `courier_protocol::Codec` so the reference shows exactly what goes on
//! the wire.

use courier_protocol::{v2, Codec, EncodeError, Encoding, Subprotocol, Version};
use serde::Serialize;

/// An envelope as it travels in each encoding.
#[derive(Debug, Clone, Serialize)]
pub struct Encoded {
    /// The JSON text frame, exactly as sent.
    pub json: String,
    /// The same, indented for reading.
    pub json_pretty: String,
    pub json_len: usize,
    /// The MessagePack frame as hex, 16 bytes per line.
    pub msgpack_hex: String,
    pub msgpack_len: usize,
    /// The Protobuf frame as hex, 16 bytes per line.
    pub protobuf_hex: String,
    pub protobuf_len: usize,
}

/// Encodes `envelope` in the three encodings of `version`.
pub fn encode(version: Version, envelope: &v2::Envelope) -> Result<Encoded, EncodeError> {
    let frame = |encoding| Codec::new(Subprotocol::new(version, encoding)).encode(envelope);
    let json = frame(Encoding::Json)?;
    let msgpack = frame(Encoding::MsgPack)?;
    let protobuf = frame(Encoding::Protobuf)?;
    let json = String::from_utf8_lossy(&json).into_owned();
    Ok(Encoded {
        json_pretty: indent_json(&json),
        json_len: json.len(),
        json,
        msgpack_hex: hex_lines(&msgpack),
        msgpack_len: msgpack.len(),
        protobuf_hex: hex_lines(&protobuf),
        protobuf_len: protobuf.len(),
    })
}

/// Indents compact JSON text without re-parsing it, so members keep the
/// order the encoder wrote (`type` first) whatever map type serde_json uses.
pub fn indent_json(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    let mut chars = compact.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                if matches!(chars.peek(), Some('}' | ']')) {
                    out.push(chars.next().unwrap_or(' '));
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// `0a 05 ...`, 16 bytes per line, so long frames stay readable on a phone.
pub fn hex_lines(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|chunk| {
            chunk
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_is_shown_in_all_three_encodings() {
        let ping = v2::Envelope {
            body: Some(v2::envelope::Body::Ping(v2::Ping { ts: 7 })),
        };
        let e = encode(Version::V2, &ping).unwrap();
        assert_eq!(e.json, r#"{"type":"ping","ts":7}"#);
        // MessagePack: a 2-entry map, "type" first (ENC-TYPE-FIRST).
        assert!(
            e.msgpack_hex.starts_with("82 a4 74 79 70 65"),
            "{}",
            e.msgpack_hex
        );
        // Protobuf: Envelope field 19 (ping), length-delimited.
        assert!(e.protobuf_hex.starts_with("9a 01"), "{}", e.protobuf_hex);
        assert_eq!(hex_lines(&[0u8; 17]).lines().count(), 2);
        assert_eq!(
            indent_json(r#"{"type":"x","a":{},"b":[1,"s,:{"]}"#),
            "{\n  \"type\": \"x\",\n  \"a\": {},\n  \"b\": [\n    1,\n    \"s,:{\"\n  ]\n}"
        );
    }
}
