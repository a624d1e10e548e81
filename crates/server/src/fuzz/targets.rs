//! One function per fuzz target: how its input bytes are read and what
//! must hold for any input (ENC-NO-PANIC and the oracles below). The
//! libFuzzer binaries in `fuzz/fuzz_targets/` call these, and so does the
//! regression test that replays `fuzz/regressions/<target>/*`
//! (`crates/server/tests/fuzz_regressions.rs`), so a crash found once is
//! checked in every `cargo test`.

use bytes::Bytes;
use courier_protocol::wire::payload as wire_payload;
use courier_protocol::{v1, v2, Codec, Encoding, Subprotocol, Version};

use super::FuzzServer;
use crate::ServerConfig;

/// A target's check of one input.
pub type Check = fn(&[u8]);

/// Every target, by the name of its binary and regression folder.
pub const TARGETS: &[(&str, Check)] = &[
    ("json", json),
    ("msgpack", msgpack),
    ("proto", proto),
    ("payload", payload),
    ("session", session),
    ("http", http),
];

/// The decoders of both versions for `encoding`: any input gives an
/// envelope or a typed error, and whatever decodes re-encodes and decodes
/// to the same envelope.
fn decoders(encoding: Encoding, data: &[u8]) {
    for version in [Version::V1, Version::V2] {
        let codec = Codec::new(Subprotocol::new(version, encoding));
        let _ = codec.decode::<v1::Envelope>(data);
        if let Ok(env) = codec.decode::<v2::Envelope>(data) {
            let frame = codec.encode(&env).expect("a decoded envelope encodes");
            let again = codec
                .decode::<v2::Envelope>(&frame)
                .expect("an encoded envelope decodes");
            assert_eq!(again, env);
        }
    }
}

/// A frame for `courier.v1.json` and `courier.v2.json`.
pub fn json(data: &[u8]) {
    decoders(Encoding::Json, data);
}

/// A frame for `courier.v1.msgpack` and `courier.v2.msgpack`.
pub fn msgpack(data: &[u8]) {
    decoders(Encoding::MsgPack, data);
}

/// A frame for `courier.v1.proto` and `courier.v2.proto`.
pub fn proto(data: &[u8]) {
    decoders(Encoding::Protobuf, data);
}

/// Payload bytes (ENC-PAYLOAD-INVALID): validation, the JSON view, and
/// that a valid payload survives JSON and back.
pub fn payload(data: &[u8]) {
    let valid = wire_payload::validate(data).is_ok();
    match wire_payload::to_json(data) {
        Ok(value) => {
            let back = wire_payload::from_json(&value).expect("a JSON view converts back");
            assert!(wire_payload::validate(&back).is_ok());
        }
        Err(_) => assert!(!valid, "a valid payload has a JSON view"),
    }
}

/// The session input: byte 0 picks the subprotocol (index into
/// [`Subprotocol::ALL`], modulo its length); then frames, each a 2-byte
/// little-endian header (low 15 bits: length; high bit: a text frame)
/// and that many bytes (fewer when the input ends). `cargo xtask fuzz`
/// writes the seeds in this format (xtask/src/fuzz.rs).
pub fn session_frames(data: &[u8]) -> Option<(Subprotocol, Vec<(Bytes, bool)>)> {
    let (&first, mut rest) = data.split_first()?;
    let sp = Subprotocol::ALL[first as usize % Subprotocol::ALL.len()];
    let mut frames = Vec::new();
    while rest.len() >= 2 {
        let header = u16::from_le_bytes([rest[0], rest[1]]);
        let len = usize::from(header & 0x7fff).min(rest.len() - 2);
        frames.push((
            Bytes::copy_from_slice(&rest[2..2 + len]),
            header & 0x8000 != 0,
        ));
        rest = &rest[2 + len..];
    }
    Some((sp, frames))
}

/// The server's configuration under fuzzing: the defaults, with the rate
/// limit high enough that inputs reach past it (a separate case).
fn config() -> ServerConfig {
    ServerConfig {
        max_messages_per_second: 10_000,
        max_burst: 10_000,
        ..ServerConfig::default()
    }
}

/// A current-thread runtime: one input runs on one thread, deterministically.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// The frame → session path (see [`session_frames`] for the input): the
/// server answers anything without a panic, and every frame it writes
/// decodes with the session's codec and stays within LIMIT-SERVER-FRAME.
pub fn session(data: &[u8]) {
    let Some((sp, frames)) = session_frames(data) else {
        return;
    };
    let config = config();
    let max_frame = 2 * config.max_message_bytes as usize;
    let out = runtime().block_on(async {
        let server = FuzzServer::new(config)
            .await
            .expect("the fuzz configuration is valid");
        server.session(sp, frames).await
    });
    let codec = Codec::new(sp);
    for frame in out.frames.iter().chain(&out.notice) {
        assert!(
            frame.len() <= max_frame,
            "a {}-byte frame (LIMIT-SERVER-FRAME)",
            frame.len()
        );
        if let Err(e) = codec.decode::<v2::Envelope>(frame) {
            panic!("the server wrote a frame its own codec refuses ({e}): {frame:?}");
        }
    }
}

/// One HTTP/1.1 connection carrying the input: whatever the bytes, no
/// panic, and any answer is an HTTP response (HTTP/1.0 to an HTTP/1.0
/// request, as hyper answers in the request's version).
pub fn http(data: &[u8]) {
    let answer = runtime().block_on(async {
        let server = FuzzServer::new(config())
            .await
            .expect("the fuzz configuration is valid");
        server.http(data).await
    });
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
        "the answer is not an HTTP response: {:?}",
        String::from_utf8_lossy(&answer[..answer.len().min(200)])
    );
}
