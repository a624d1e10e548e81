//! `courier tap` as a script uses it: the real binary against the reference
//! server on loopback (started in the test, with fault injection where a
//! gap or a duplicate is needed): sends in each encoding, `--expect`
//! passing and failing, gap and duplicate flags, heartbeat answers,
//! `wss://` with `--ca`, SSE with `POST /publish`, JWT credentials, lines
//! typed on stdin, and the exit codes for bad input and no server.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use courier_server::{Fault, RunningServer, ServerConfig};

struct Fixture {
    rt: tokio::runtime::Runtime,
    dir: PathBuf,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("courier-tap-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Fixture {
            rt: tokio::runtime::Runtime::new().unwrap(),
            dir,
        }
    }

    fn server(&self, config: ServerConfig) -> RunningServer {
        self.rt
            .block_on(courier_server::start(ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..config
            }))
            .expect("server starts")
    }

    fn file(&self, name: &str, lines: &[&str]) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, lines.join("\n")).unwrap();
        path.to_str().unwrap().to_string()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .arg("tap")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("courier runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const SUBSCRIBE: &str = r#"{"type":"subscribe","id":"s1","channel":"chat"}"#;

#[test]
fn sends_and_expects_in_every_encoding() {
    let f = Fixture::new("expect");
    let send = f.file(
        "send.jsonl",
        &[
            "# subscribe, then publish twice with one id",
            SUBSCRIBE,
            r#"{"type":"publish","id":"p-1","channel":"chat","payload":{"text":"hi","n":[1,2]}}"#,
            r#"{"sleep_ms": 50}"#,
            r#"{"type":"publish","id":"p-1","channel":"chat","payload":{"text":"hi","n":[1,2]}}"#,
        ],
    );
    let expect = f.file(
        "expect.jsonl",
        &[
            r#"{"type":"subscribe_ack","channel":"chat"}"#,
            r#"{"type":"message","channel":"chat","payload":{"text":"hi","n":[1,2]}}"#,
            r#"{"type":"publish_ack","id":"p-1","duplicate":true}"#,
        ],
    );
    // A fresh server per run: the publish ids would be duplicates otherwise.
    for sp in ["courier.v2.msgpack", "courier.v2.proto", "courier.v1.json"] {
        let server = f.server(ServerConfig::default());
        let out = tap(&[
            &server.ws_url(),
            "-s",
            sp,
            "--send",
            &send,
            "--expect",
            &expect,
        ]);
        let t = text(&out);
        assert_eq!(out.status.code(), Some(0), "{sp}: {t}");
        assert!(t.contains(&format!("as {sp}")), "{t}");
        assert!(t.contains(r#"-> {"type":"publish","id":"p-1""#), "{t}");
        assert!(t.contains("every expectation matched"), "{t}");
    }
    // JSON output, one object per line.
    let server = f.server(ServerConfig::default());
    let out = tap(&[
        &server.ws_url(),
        "--json",
        "--send",
        &send,
        "--expect",
        &expect,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines
        .iter()
        .any(|l| l["dir"] == "recv" && l["envelope"]["type"] == "welcome"));
    assert!(lines
        .iter()
        .any(|l| l["dir"] == "send" && l["envelope"]["type"] == "subscribe"));
}

#[test]
fn a_mismatch_exits_one_and_says_which_pattern() {
    let f = Fixture::new("mismatch");
    let server = f.server(ServerConfig::default());
    let send = f.file("send.jsonl", &[SUBSCRIBE]);
    let expect = f.file(
        "expect.jsonl",
        &[
            r#"{"type":"subscribe_ack"}"#,
            r#"{"type":"message","payload":{"text":"never sent"}}"#,
        ],
    );
    let started = std::time::Instant::now();
    let out = tap(&[
        &server.ws_url(),
        "--send",
        &send,
        "--expect",
        &expect,
        "--timeout",
        "0.5",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("expectation 2 not met"), "{t}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn gaps_and_duplicates_are_flagged() {
    let f = Fixture::new("flags");
    let publishes: Vec<String> = (1..=4)
        .map(|i| {
            format!(r#"{{"type":"publish","id":"p-{i}","channel":"chat","payload":{{"n":{i}}}}}"#)
        })
        .collect();
    let mut lines = vec![SUBSCRIBE];
    lines.extend(publishes.iter().map(String::as_str));
    let send = f.file("send.jsonl", &lines);
    let expect = f.file("expect.jsonl", &[r#"{"type":"publish_ack","id":"p-4"}"#]);

    let server = f.server(ServerConfig {
        fault: Some(Fault::SkipSeq),
        ..Default::default()
    });
    let out = tap(&[
        &server.ws_url(),
        "-s",
        "courier.v2.json",
        "--send",
        &send,
        "--expect",
        &expect,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("[GAP: expected seq"), "{t}");
    let server = f.server(ServerConfig {
        fault: Some(Fault::SkipSeq),
        ..Default::default()
    });
    let out = tap(&[
        &server.ws_url(),
        "--strict",
        "--send",
        &send,
        "--expect",
        &expect,
    ]);
    assert_eq!(out.status.code(), Some(1), "--strict: {}", text(&out));

    let server = f.server(ServerConfig {
        fault: Some(Fault::RedeliverDuplicate),
        ..Default::default()
    });
    let send = f.file(
        "dup.jsonl",
        &[
            SUBSCRIBE,
            &publishes[0],
            r#"{"sleep_ms": 50}"#,
            &publishes[0],
        ],
    );
    let expect = f.file(
        "dup-expect.jsonl",
        &[
            r#"{"type":"publish_ack","id":"p-1"}"#,
            r#"{"type":"message","seq":2}"#,
        ],
    );
    let out = tap(&[
        &server.ws_url(),
        "-s",
        "courier.v2.msgpack",
        "--send",
        &send,
        "--expect",
        &expect,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("[DUPLICATE: id p-1 already delivered on chat]"),
        "{t}"
    );
}

#[test]
fn answers_server_pings() {
    let f = Fixture::new("ping");
    let server = f.server(ServerConfig {
        heartbeat_interval_ms: 200,
        heartbeat_grace_ms: 300,
        ..Default::default()
    });
    // 1.5 s is three heartbeat deadlines: a tap that did not answer would
    // be closed by the server (4201) and exit 1.
    let out = tap(&[&server.ws_url(), "--duration", "1.5"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(r#"-> {"type":"pong""#) && t.contains("[auto]"),
        "{t}"
    );
    assert!(!t.contains("server closed"), "{t}");
    let out = tap(&[&server.ws_url(), "--duration", "1.5", "--no-pong"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn wss_with_a_private_ca() {
    let f = Fixture::new("wss");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (f.dir.join("cert.pem"), f.dir.join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let server = f.server(ServerConfig {
        tls: Some(courier_server::TlsConfig {
            cert_file: cert_file.clone(),
            key_file,
        }),
        ..Default::default()
    });
    let url = format!("wss://localhost:{}/ws", server.local_addr().port());
    let expect = f.file("expect.jsonl", &[r#"{"type":"subscribe_ack"}"#]);
    let send = f.file("send.jsonl", &[SUBSCRIBE]);
    let ca = cert_file.to_str().unwrap();
    let out = tap(&[&url, "--ca", ca, "--send", &send, "--expect", &expect]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Without the CA the certificate is not trusted: a connect error.
    let out = tap(&[&url, "--send", &send, "--expect", &expect]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn bad_input_and_no_server_exit_two() {
    let f = Fixture::new("bad");
    let server = f.server(ServerConfig::default());
    let send = f.file("send.jsonl", &[r#"{"type":"no_such_type"}"#]);
    let out = tap(&[&server.ws_url(), "--send", &send]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(
        t.contains("input line 1") && t.contains("no_such_type"),
        "{t}"
    );
    // A v2-only message on a v1 session cannot be sent.
    let send = f.file("batch.jsonl", &[r#"{"type":"batch","envelopes":[]}"#]);
    let out = tap(&[&server.ws_url(), "-s", "courier.v1.json", "--send", &send]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = tap(&[&server.ws_url(), "--send", "/nonexistent/send.jsonl"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let port = server.local_addr().port();
    drop(server);
    let out = tap(&[&format!("ws://127.0.0.1:{port}/ws"), "--duration", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("cannot connect"), "{}", text(&out));
}

#[test]
fn sse_stream_with_publish_and_flags() {
    let f = Fixture::new("sse");
    let server = f.server(ServerConfig {
        fault: Some(Fault::SkipSeq),
        ..Default::default()
    });
    let sse = format!("{}/sse", server.http_url());
    let publishes: Vec<String> = (1..=4)
        .map(|i| {
            format!(r#"{{"type":"publish","id":"p-{i}","channel":"chat","payload":{{"n":{i}}}}}"#)
        })
        .collect();
    let send = f.file(
        "send.jsonl",
        &publishes.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let expect = f.file(
        "expect.jsonl",
        &[
            r#"{"type":"welcome","version":1}"#,
            r#"{"type":"subscribe_ack","channel":"chat"}"#,
            r#"{"type":"publish_ack","id":"p-4"}"#,
            r#"{"type":"message","payload":{"n":4}}"#,
        ],
    );
    let out = tap(&[
        &sse,
        "-c",
        "chat",
        "-s",
        "courier.v1.json",
        "--send",
        &send,
        "--expect",
        &expect,
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains("sse?v=1&channel=chat (SSE)") && t.contains("[POST /publish]"),
        "{t}"
    );
    assert!(t.contains("[GAP: expected seq"), "{t}");
    // Only publish travels over SSE; MessagePack is not an SSE encoding.
    let bad = f.file("bad.jsonl", &[SUBSCRIBE]);
    let out = tap(&[&sse, "-c", "chat", "--send", &bad]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = tap(&[&sse, "-s", "courier.v2.msgpack", "--duration", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

fn jwt(secret: &str, sub: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &serde_json::json!({ "sub": sub, "exp": exp }),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

#[test]
fn credentials_from_the_flag_or_the_environment() {
    let f = Fixture::new("auth");
    let server = f.server(ServerConfig {
        auth: courier_server::AuthConfig {
            hs256_secret: Some("tap-secret".into()),
            ..Default::default()
        },
        ..Default::default()
    });
    let expect = f.file("expect.jsonl", &[r#"{"type":"welcome","user":"alice"}"#]);
    let good = jwt("tap-secret", "alice");
    let out = tap(&[&server.ws_url(), "--token", &good, "--expect", &expect]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["tap", &server.ws_url(), "--expect", &expect])
        .env("COURIER_TOKEN", &good)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // A token signed with another key: refused before welcome (4004).
    let out = tap(&[
        &server.ws_url(),
        "--token",
        &jwt("other", "alice"),
        "--duration",
        "1",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(2), "{t}");
    assert!(t.contains("4004"), "{t}");
    // SSE: the token travels in Authorization (SSE-AUTH).
    let sse = format!("{}/sse", server.http_url());
    let out = tap(&[&sse, "--token", &good, "--expect", &expect]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn lines_typed_on_stdin_are_sent() {
    use std::io::Write;
    let f = Fixture::new("stdin");
    let server = f.server(ServerConfig::default());
    let expect = f.file(
        "expect.jsonl",
        &[r#"{"type":"subscribe_ack","channel":"chat"}"#],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["tap", &server.ws_url(), "--expect", &expect])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{SUBSCRIBE}").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(
        t.contains(r#"-> {"type":"subscribe","id":"s1","channel":"chat"}"#),
        "{t}"
    );
}
