//! `courier decode`: frames to readable envelopes. Frames come as hex or
//! base64 (arguments, a file with one per line, or stdin) or inside a
//! pcap/pcapng capture of a session, which `courier-capture` reassembles
//! into WebSocket messages; each is decoded with the session's subprotocol
//! and printed in the Courier JSON form. See docs/decode.md.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use base64::Engine;
use clap::{Args, ValueEnum};
use courier_capture::{Connection, Direction, MessageKind};
use courier_protocol::subprotocol::{Encoding, Version};
use courier_protocol::{v2, Codec, Subprotocol};

/// Largest input read from stdin or a file (a capture larger than this
/// should be filtered by port first).
const MAX_INPUT: u64 = 512 * 1024 * 1024;

/// Largest message decoded (the protocol's default limit is 64 KiB; a
/// capture may show a server configured higher).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

#[derive(Args)]
pub struct DecodeArgs {
    /// Frames to decode, each hex (`82a4...`, spaces allowed), base64, or a
    /// JSON text frame. Without frames or --file, stdin is read (frames one
    /// per line, or a capture).
    frames: Vec<String>,
    /// A file of frames (one per line, `#` comments) or a pcap/pcapng
    /// capture (recognised by its magic number).
    #[arg(long, short)]
    file: Option<PathBuf>,
    /// How frames are written; `auto` tells hex, JSON text and base64 apart
    /// per line; `raw`: the whole file or stdin is one frame's bytes.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    input: InputFormat,
    /// The session's subprotocol (`courier.v2.msgpack`) for frames given
    /// directly; without it each encoding of the newest version is tried.
    /// Captures carry their own (from the HTTP upgrade).
    #[arg(long, short)]
    subprotocol: Option<Subprotocol>,
    /// Captures: only connections to or from this TCP port.
    #[arg(long, short)]
    port: Option<u16>,
    /// Print one JSON object per line instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum InputFormat {
    Auto,
    Hex,
    Base64,
    Text,
    /// The whole file or stdin is one frame, as sent (binary, or JSON text).
    Raw,
}

/// Runs the command; returns the exit code: 0 when everything decoded, 1
/// when some frame or connection could not be, 2 for unusable input.
pub fn run(args: DecodeArgs) -> anyhow::Result<i32> {
    Ok(decode_all(args).unwrap_or_else(|e| {
        eprintln!("error: {e:#}");
        2
    }))
}

fn decode_all(args: DecodeArgs) -> anyhow::Result<i32> {
    let input = match (&args.file, args.frames.is_empty()) {
        (Some(path), true) => Some(read_bounded(
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
        )?),
        (Some(_), false) => anyhow::bail!("give frames as arguments or with --file, not both"),
        (None, true) => Some(read_bounded(std::io::stdin().lock())?),
        (None, false) => None,
    };
    let mut out = Printer {
        json: args.json,
        failures: 0,
    };
    match input {
        Some(bytes) if is_capture(&bytes) => {
            let limits = courier_capture::Limits {
                port: args.port,
                max_message_bytes: MAX_MESSAGE,
                ..Default::default()
            };
            let capture = match courier_capture::read(bytes.as_slice(), &limits) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(2);
                }
            };
            for (link, n) in &capture.unknown_links {
                eprintln!("note: {n} packets of unsupported link type {link} skipped");
            }
            let upgraded = capture
                .connections
                .iter()
                .filter(|c| c.status == Some(101) || c.event_stream.is_some())
                .count();
            if upgraded == 0 {
                eprintln!(
                    "error: no WebSocket upgrade or SSE stream found in {} packets{}",
                    capture.packets,
                    args.port
                        .map(|p| format!(" on port {p}"))
                        .unwrap_or_default()
                );
                return Ok(2);
            }
            for (i, conn) in capture.connections.iter().enumerate() {
                out.connection(i + 1, conn);
            }
        }
        Some(bytes) if matches!(args.input, InputFormat::Raw) => {
            let text = bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            out.frame_bytes(1, &bytes, text, args.subprotocol);
        }
        Some(bytes) => {
            let text = String::from_utf8(bytes)
                .context("the frames file is not UTF-8 text (a binary frame? use --input raw)")?;
            let lines: Vec<&str> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .collect();
            for (i, line) in lines.iter().enumerate() {
                out.frame(i + 1, line, args.input, args.subprotocol);
            }
        }
        None => {
            for (i, frame) in args.frames.iter().enumerate() {
                out.frame(i + 1, frame.trim(), args.input, args.subprotocol);
            }
        }
    }
    Ok(if out.failures > 0 { 1 } else { 0 })
}

fn read_bounded(r: impl Read) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    r.take(MAX_INPUT + 1).read_to_end(&mut buf)?;
    anyhow::ensure!(
        buf.len() as u64 <= MAX_INPUT,
        "input larger than {MAX_INPUT} bytes: filter the capture by port first"
    );
    Ok(buf)
}

fn is_capture(bytes: &[u8]) -> bool {
    let Some(m) = bytes.get(..4) else {
        return false;
    };
    matches!(
        u32::from_le_bytes([m[0], m[1], m[2], m[3]]),
        0xa1b2_c3d4 | 0xd4c3_b2a1 | 0xa1b2_3c4d | 0x4d3c_b2a1 | 0x0A0D_0D0A
    )
}

/// A frame as bytes plus whether it is a text frame.
fn parse_frame(s: &str, format: InputFormat) -> anyhow::Result<(Vec<u8>, bool)> {
    let compact: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let compact = compact.strip_prefix("0x").unwrap_or(&compact);
    let looks_hex =
        compact.len().is_multiple_of(2) && compact.bytes().all(|b| b.is_ascii_hexdigit());
    let format = match format {
        InputFormat::Auto if s.starts_with('{') => InputFormat::Text,
        InputFormat::Auto if looks_hex => InputFormat::Hex,
        InputFormat::Auto => InputFormat::Base64,
        f => f,
    };
    Ok(match format {
        InputFormat::Text | InputFormat::Raw => (s.as_bytes().to_vec(), true),
        InputFormat::Hex => (hex::decode(compact).context("not hex")?, false),
        _ => {
            let b = compact.trim_end_matches('=');
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(b)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(b))
                .context("neither hex nor base64")?;
            (bytes, false)
        }
    })
}

/// Decodes one frame; `text` says which WebSocket frame type carried it.
/// Returns the envelope's canonical JSON form (`type` first).
fn decode(sp: Subprotocol, bytes: &[u8], text: bool) -> Result<String, String> {
    let codec = Codec::new(sp).with_max_message_bytes(MAX_MESSAGE);
    let env: v2::Envelope = codec
        .decode_frame(bytes, Some(text))
        .map_err(|e| format!("{e} (a receiver closes with {})", e.close_code()))?;
    Ok(to_json(sp.version, &env))
}

/// The envelope in the canonical Courier JSON form of its version.
pub(crate) fn to_json(version: Version, env: &v2::Envelope) -> String {
    let encode = |v| Codec::new(Subprotocol::new(v, Encoding::Json)).encode(env);
    match encode(version).or_else(|_| encode(Version::V2)) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        // Not expected for a decoded envelope; shown rather than a panic.
        Err(e) => serde_json::json!({ "type": "?", "unprintable": e.to_string() }).to_string(),
    }
}

fn value(json: &str) -> serde_json::Value {
    serde_json::from_str(json).expect("the JSON codec writes JSON")
}

struct Printer {
    json: bool,
    failures: usize,
}

impl Printer {
    fn frame(&mut self, n: usize, s: &str, format: InputFormat, sp: Option<Subprotocol>) {
        let (bytes, text) = match parse_frame(s, format) {
            Ok(f) => f,
            Err(e) => return self.fail(format!("frame {n}: {e:#}"), None),
        };
        self.frame_bytes(n, &bytes, text, sp);
    }

    fn frame_bytes(&mut self, n: usize, bytes: &[u8], text: bool, sp: Option<Subprotocol>) {
        let result = match sp {
            Some(sp) => decode(sp, bytes, sp.encoding.is_text()).map(|env| (sp, env)),
            None => {
                let tries = if text {
                    vec![Encoding::Json]
                } else {
                    vec![Encoding::MsgPack, Encoding::Protobuf, Encoding::Json]
                };
                let mut last = String::new();
                let mut found = None;
                for enc in tries {
                    let sp = Subprotocol::new(Version::V2, enc);
                    match decode(sp, bytes, enc.is_text()) {
                        Ok(env) => {
                            found = Some((sp, env));
                            break;
                        }
                        Err(e) => last = e,
                    }
                }
                found.ok_or(last)
            }
        };
        match result {
            Ok((sp, env)) if self.json => println!(
                "{}",
                serde_json::json!({"frame": n, "subprotocol": sp.name(), "envelope": value(&env)})
            ),
            Ok((sp, env)) => println!("{:<20} {env}", sp.name()),
            Err(e) => self.fail(format!("frame {n}: {e}"), Some(bytes)),
        }
    }

    fn fail(&mut self, what: String, bytes: Option<&[u8]>) {
        self.failures += 1;
        if self.json {
            println!("{}", serde_json::json!({"error": what}));
        } else {
            let head = bytes.map(|b| format!(" [{}]", hex::encode(&b[..b.len().min(32)])));
            println!("! {what}{}", head.unwrap_or_default());
        }
    }

    fn connection(&mut self, n: usize, conn: &Connection) {
        let sp = conn
            .selected
            .as_deref()
            .and_then(|s| s.parse::<Subprotocol>().ok());
        if self.json {
            println!(
                "{}",
                serde_json::json!({
                    "connection": n, "client": conn.client.to_string(),
                    "server": conn.server.to_string(), "method": conn.method, "path": conn.path,
                    "status": conn.status, "offered": conn.offered, "selected": conn.selected,
                })
            );
        } else {
            println!(
                "# connection {n}: {} -> {} {} {} (offered {}) -> {} {}",
                conn.client,
                conn.server,
                conn.method.as_deref().unwrap_or("?"),
                conn.path.as_deref().unwrap_or("?"),
                conn.offered.join(", "),
                conn.status.map_or("no response".into(), |s| s.to_string()),
                match (&conn.selected, &conn.event_stream) {
                    (Some(s), _) => s.as_str(),
                    (None, Some(_)) => "SSE event stream",
                    (None, None) => "no subprotocol",
                },
            );
        }
        for m in &conn.messages {
            let dir = match m.dir {
                Direction::ClientToServer => "C->S",
                Direction::ServerToClient => "S->C",
            };
            let ts = m.ts_micros.map(clock).unwrap_or_else(|| "-".into());
            let frag = if m.fragments > 1 {
                format!(" ({} fragments)", m.fragments)
            } else {
                String::new()
            };
            let (kind, result) = match &m.kind {
                MessageKind::Text | MessageKind::Binary => {
                    let text = m.kind == MessageKind::Text;
                    let r = match sp {
                        Some(sp) => decode(sp, &m.data, text),
                        None => Err("the server selected no Courier subprotocol".into()),
                    };
                    ("envelope", r)
                }
                MessageKind::Close { code, reason } => (
                    "close",
                    Ok(serde_json::json!({"code": code, "reason": reason}).to_string()),
                ),
                MessageKind::Ping => (
                    "ping",
                    Ok(serde_json::json!({"bytes": m.data.len()}).to_string()),
                ),
                MessageKind::Pong => (
                    "pong",
                    Ok(serde_json::json!({"bytes": m.data.len()}).to_string()),
                ),
            };
            match result {
                Ok(v) if self.json => println!(
                    "{}",
                    serde_json::json!({"connection": n, "ts": ts, "dir": m.dir.to_string(),
                        "fragments": m.fragments, kind: value(&v)})
                ),
                Ok(v) if kind == "envelope" => println!("{ts} {dir} {v}{frag}"),
                Ok(v) => println!("{ts} {dir} [{kind}] {v}"),
                Err(e) => self.fail(
                    format!("{ts} {dir} connection {n}: {e}{frag}"),
                    Some(&m.data),
                ),
            }
        }
        if let Some(body) = &conn.event_stream {
            self.event_stream(n, conn, body);
        }
        for p in &conn.problems {
            self.fail(format!("connection {n}: {p}"), None);
        }
    }
}

impl Printer {
    /// An SSE response body: each event's envelope, decoded as JSON of the
    /// version in the request's `v=` (else the welcome's, else 2).
    fn event_stream(&mut self, n: usize, conn: &Connection, body: &courier_capture::EventStream) {
        let query_version = conn
            .path
            .as_deref()
            .and_then(|p| p.split_once('?'))
            .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("v=")))
            .and_then(|v| v.parse().ok())
            .and_then(Version::from_number);
        let mut version = query_version.unwrap_or(Version::V2);
        let mut parser = courier_client::sse::EventParser::new(body.chunked);
        for (ts, bytes) in &body.parts {
            let ts = ts.map(clock).unwrap_or_else(|| "-".into());
            if let Err(e) = parser.push(bytes) {
                return self.fail(format!("{ts} S->C connection {n}: {e}"), None);
            }
            while let Some(ev) = parser.next_event() {
                let sp = Subprotocol::new(version, Encoding::Json);
                match decode(sp, ev.data.as_bytes(), true) {
                    Ok(env) => {
                        let value = value(&env);
                        if value["type"] == "welcome" && query_version.is_none() {
                            if let Some(v) = value["version"]
                                .as_u64()
                                .and_then(|v| Version::from_number(v as u32))
                            {
                                version = v;
                            }
                        }
                        if self.json {
                            println!(
                                "{}",
                                serde_json::json!({"connection": n, "ts": ts, "dir": "server->client",
                                    "sse_id": ev.id, "envelope": value})
                            );
                        } else {
                            println!("{ts} S->C {env}");
                        }
                    }
                    Err(e) => self.fail(
                        format!("{ts} S->C connection {n}: `{}` event: {e}", ev.event),
                        Some(ev.data.as_bytes()),
                    ),
                }
            }
        }
    }
}

/// `HH:MM:SS.micros` (UTC) of a capture timestamp.
pub(crate) fn clock(micros: u64) -> String {
    let secs = micros / 1_000_000;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60,
        micros % 1_000_000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_input_forms_apart() {
        assert_eq!(
            parse_frame("82 a4", InputFormat::Auto).unwrap(),
            (vec![0x82, 0xa4], false)
        );
        assert_eq!(
            parse_frame("gqQ=", InputFormat::Auto).unwrap(),
            (vec![0x82, 0xa4], false)
        );
        assert_eq!(
            parse_frame("{}", InputFormat::Auto).unwrap(),
            (b"{}".to_vec(), true)
        );
        assert!(parse_frame("!!", InputFormat::Auto).is_err());
        assert_eq!(clock(3_723_000_042), "01:02:03.000042");
    }
}
