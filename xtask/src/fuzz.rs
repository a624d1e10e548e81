//! `cargo xtask fuzz`: seeds, builds and runs the libFuzzer targets of
//! `fuzz/` on the stable toolchain, without cargo-fuzz. cargo-fuzz is a
//! thin driver (it sets coverage flags and runs the binary); installing it
//! costs minutes of compiling on every fresh CI machine, so this does the
//! same with the flags cargo-fuzz passes, minus `-Zsanitizer=address`
//! (nightly only; the targets are safe Rust over safe-Rust decoders, and
//! libFuzzer still catches panics, aborts, timeouts and memory blow-ups).
//!
//! ```text
//! cargo xtask fuzz [--seconds N] [--only a,b] [--jobs J]
//! ```
//!
//! Corpora: `target/fuzz/corpus/<target>/`, seeded from
//! `conformance/vectors/` every run (the seeds are files named `seed-*`;
//! what libFuzzer adds stays). Crashes: `target/fuzz/artifacts/<target>/`;
//! a crash is kept as a regression test by copying the file to
//! `fuzz/regressions/<target>/` (replayed by `cargo test -p courier-server
//! --test fuzz_regressions`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::ci::target_dir;
use crate::cmd::Cmd;
use crate::root;

/// Every target, in the order they run.
pub const TARGETS: &[&str] = &["json", "msgpack", "proto", "payload", "session", "http"];

/// The coverage instrumentation cargo-fuzz asks rustc for (sanitizer aside).
const RUSTFLAGS: &[&str] = &[
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
    "-Cllvm-args=-simplifycfg-branch-fold-threshold=0",
    "-Cforce-frame-pointers",
    "--cfg",
    "fuzzing",
];

pub fn run(args: &[String]) -> Result<()> {
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let seconds: u64 = match value("--seconds") {
        Some(s) => s.parse().context("--seconds takes a number")?,
        None => 10,
    };
    let jobs: u32 = match value("--jobs") {
        Some(s) => s.parse().context("--jobs takes a number")?,
        None => 1,
    };
    let only: Vec<&str> = match value("--only") {
        Some(list) => list.split(',').collect(),
        None => TARGETS.to_vec(),
    };
    for t in &only {
        if !TARGETS.contains(t) {
            bail!("no fuzz target `{t}` (targets: {})", TARGETS.join(", "));
        }
    }
    let work = target_dir()?.join("fuzz");
    let bins = build(&work)?;
    for target in only {
        let corpus = work.join("corpus").join(target);
        let n = seed(target, &corpus)?;
        let artifacts = work.join("artifacts").join(target);
        std::fs::create_dir_all(&artifacts)?;
        eprintln!("fuzz {target}: {n} seeds, {seconds} s, {jobs} job(s)");
        let started = Instant::now();
        let mut cmd = Cmd::new(bins.join(target).to_str().context("utf-8 path")?, &[])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-max_len=16384")
            .arg("-print_final_stats=1")
            .arg(format!("-artifact_prefix={}/", artifacts.display()));
        if jobs > 1 {
            cmd = cmd.arg(format!("-fork={jobs}")).arg("-ignore_crashes=0");
        }
        let result = cmd.arg(&corpus).run(&root());
        if let Err(e) = result {
            bail!(
                "fuzz target `{target}` failed after {:.0} s: {e:#}\nThe input is in {}; \
                 reproduce with `{} <file>`, then copy it to fuzz/regressions/{target}/ \
                 so `cargo test -p courier-server --test fuzz_regressions` keeps it fixed.",
                started.elapsed().as_secs_f64(),
                artifacts.display(),
                bins.join(target).display()
            );
        }
    }
    Ok(())
}

/// Builds every target with coverage instrumentation; returns the folder
/// of the binaries.
fn build(work: &Path) -> Result<PathBuf> {
    let root = root();
    let fuzz = root.join("fuzz");
    // The workspace's versions for every shared dependency.
    std::fs::copy(root.join("Cargo.lock"), fuzz.join("Cargo.lock"))
        .context("copying Cargo.lock into fuzz/")?;
    let host = host_triple()?;
    let build_dir = work.join("build");
    Cmd::new(
        "cargo",
        &[
            "build",
            "--release",
            "--bins",
            "--target",
            &host,
            "--manifest-path",
        ],
    )
    .arg(fuzz.join("Cargo.toml"))
    .env("CARGO_TARGET_DIR", &build_dir)
    // Only the target's code is instrumented (`--target` keeps build
    // scripts and proc macros out of RUSTFLAGS).
    .env("RUSTFLAGS", RUSTFLAGS.join(" "))
    .run(&fuzz)?;
    Ok(build_dir.join(host).join("release"))
}

fn host_triple() -> Result<String> {
    let out = Cmd::new("rustc", &["-vV"]).output(&root())?;
    out.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(str::to_string)
        .context("rustc -vV: no host line")
}

/// Writes the seeds of `target` into `corpus`; returns how many.
fn seed(target: &str, corpus: &Path) -> Result<usize> {
    std::fs::create_dir_all(corpus)?;
    let seeds = seeds(target)?;
    for (name, bytes) in &seeds {
        std::fs::write(corpus.join(format!("seed-{name}")), bytes)?;
    }
    Ok(seeds.len())
}

/// One frame of a vector file: (name, subprotocol encoding, bytes, text?).
type Frame = (String, &'static str, Vec<u8>, bool);

/// Every frame in `conformance/vectors/v{1,2}/*.json`: the valid vectors in
/// all three encodings, the decode and the invalid inputs.
fn vector_frames() -> Result<Vec<(u32, Frame)>> {
    let mut out = Vec::new();
    for version in [1u32, 2] {
        let dir = root().join(format!("conformance/vectors/v{version}"));
        for file in ["valid", "decode", "invalid"] {
            let path = dir.join(format!("{file}.json"));
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let doc: Value = serde_json::from_str(&text)?;
            for v in doc["vectors"].as_array().into_iter().flatten() {
                let name = format!("v{version}-{file}-{}", v["name"].as_str().unwrap_or("x"));
                if file == "valid" {
                    if let Some(json) = v["json"].as_str() {
                        out.push((
                            version,
                            (name.clone(), "json", json.as_bytes().to_vec(), true),
                        ));
                    }
                    for (field, enc) in [("msgpack", "msgpack"), ("protobuf", "proto")] {
                        if let Some(bytes) = v[field].as_str().and_then(unhex) {
                            out.push((version, (name.clone(), enc, bytes, false)));
                        }
                    }
                } else if let Some(bytes) = v["input"].as_str().and_then(unhex) {
                    let enc = match v["encoding"].as_str() {
                        Some("protobuf") => "proto",
                        Some("msgpack") => "msgpack",
                        _ => "json",
                    };
                    let text = v["frame"].as_str().map_or(enc == "json", |f| f == "text");
                    out.push((version, (name, enc, bytes, text)));
                }
            }
        }
    }
    Ok(out)
}

/// The seeds of one target.
fn seeds(target: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let frames = vector_frames()?;
    let mut out = Vec::new();
    match target {
        "json" | "msgpack" | "proto" => {
            for (_, (name, enc, bytes, _)) in frames {
                if enc == target {
                    out.push((name, bytes));
                }
            }
        }
        "payload" => {
            // The payloads of the valid MessagePack vectors are inside the
            // envelopes; the canonical forms of small values do as seeds.
            for (name, bytes) in [
                ("nil", vec![0xc0]),
                ("map", vec![0x81, 0xa1, b'a', 0x01]),
                (
                    "array",
                    vec![0x92, 0xc3, 0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0],
                ),
                ("str", vec![0xa3, b'a', b'b', b'c']),
                ("bin", vec![0xc4, 0x02, 0x00, 0xff]),
                (
                    "int",
                    vec![0xd3, 0, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
                ),
            ] {
                out.push((name.to_string(), bytes));
            }
            for (_, (name, enc, bytes, _)) in frames {
                if enc == "msgpack" {
                    out.push((name, bytes));
                }
            }
        }
        "session" => {
            // A hello in the vector's own subprotocol, then the vector's frame.
            let hello: Vec<&(u32, Frame)> = frames
                .iter()
                .filter(|(_, (name, ..))| name.ends_with("-valid-hello"))
                .collect();
            for (version, (name, enc, bytes, text)) in &frames {
                let Some((_, (_, _, h, htext))) = hello
                    .iter()
                    .find(|(v, (_, e, ..))| v == version && e == enc)
                else {
                    continue;
                };
                let index = subprotocol_index(*version, enc);
                let input = session_input(index, &[(h, *htext), (bytes, *text)]);
                out.push((format!("{name}-{enc}"), input));
            }
        }
        "http" => {
            let publish = r#"{"channel":"a","id":"p-1","payload":{"text":"hi"}}"#;
            let ws_key = "dGhlIHNhbXBsZSBub25jZQ==";
            for (name, request) in [
                ("healthz", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
                ("metrics", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
                ("not-found", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
                ("publish", format!("POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{publish}", publish.len())),
                ("publish-chunked", format!("POST /publish HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{publish}\r\n0\r\n\r\n", publish.len())),
                ("sse", "GET /sse?v=2&channel=a&channel=b&since=a:k3x9:4 HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nLast-Event-ID: a:k3x9:7\r\n\r\n".to_string()),
                ("sse-v1", "GET /sse?v=1&channel=a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abc\r\n\r\n".to_string()),
                ("ws", format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {ws_key}\r\nSec-WebSocket-Protocol: courier.v2.json\r\n\r\n")),
                ("pipelined", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".to_string()),
            ] {
                out.push((name.to_string(), request.into_bytes()));
            }
            // A WebSocket session after the upgrade: a masked text hello.
            let mut ws = out
                .iter()
                .find(|(n, _)| n == "ws")
                .expect("ws seed")
                .1
                .clone();
            let upgrade = ws.clone();
            ws.extend(masked(0x81, br#"{"type":"hello"}"#));
            out.push(("ws-hello".to_string(), ws));
            // The server's own RFC 6455 reader: a hello in two fragments
            // with a ping between them, a pong, then a close with a reason.
            let mut control = upgrade;
            control.extend(masked(0x01, br#"{"type":"#));
            control.extend(masked(0x89, b"ping"));
            control.extend(masked(0x80, br#""hello"}"#));
            control.extend(masked(0x8a, b""));
            control.extend(masked(0x88, b"\x03\xe8bye"));
            out.push(("ws-fragments-control".to_string(), control));
            for (_, (name, enc, bytes, _)) in frames {
                if enc == "json" && name.contains("publish") {
                    let body = String::from_utf8_lossy(&bytes).into_owned();
                    let request = format!(
                        "POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    out.push((format!("publish-{name}"), request.into_bytes()));
                }
            }
        }
        _ => bail!("no fuzz target `{target}`"),
    }
    Ok(out)
}

/// The index of `courier.v{version}.{enc}` in `Subprotocol::ALL`, which
/// lists v2 before v1 and json, msgpack, proto within each.
fn subprotocol_index(version: u32, enc: &str) -> u8 {
    let e = match enc {
        "json" => 0,
        "msgpack" => 1,
        _ => 2,
    };
    if version == 2 {
        e
    } else {
        3 + e
    }
}

/// The session target's input format (`courier_server::fuzz::targets::session_frames`):
/// the subprotocol index, then frames with a 2-byte little-endian header
/// (length in the low 15 bits, the high bit set for a text frame).
fn session_input(index: u8, frames: &[(&Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = vec![index];
    for (bytes, text) in frames {
        let len = bytes.len().min(0x7fff);
        let header = len as u16 | if *text { 0x8000 } else { 0 };
        out.extend_from_slice(&header.to_le_bytes());
        out.extend_from_slice(&bytes[..len]);
    }
    out
}

/// A client frame (first byte `first`: FIN and opcode) of at most 125
/// bytes, masked with a zero key so its payload reads as is.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    out.extend_from_slice(payload);
    out
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}
