//! `courier decode` as a user runs it: frames given as hex, base64 and
//! JSON text; a capture the test records with tcpdump of real sessions
//! (Rust client against the reference server on loopback, in all three
//! encodings); the pcapng captures checked in under tests/captures/
//! (recorded with dumpcap; one with a fragmented message); and damaged
//! input, which must end in an error line and exit code, never a panic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use courier_client::ClientConfig;
use courier_protocol::Subprotocol;
use serde_json::Value;

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("courier runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn json_lines(out: &Output) -> Vec<Value> {
    stdout(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/captures")
}

#[test]
fn frames_on_the_command_line_in_every_form() {
    // publish {"text":"hi"} on channel chat, id p-1: MessagePack as hex,
    // the same as base64, and the JSON text frame.
    let msgpack = "84a474797065a77075626c697368a26964a3702d31a76368616e6e656ca463686174a77061796c6f616481a474657874a26869";
    let b64 = "hKR0eXBlp3B1Ymxpc2iiaWSjcC0xp2NoYW5uZWykY2hhdKdwYXlsb2FkgaR0ZXh0omhp";
    let json = r#"{"type":"publish","id":"p-1","channel":"chat","payload":{"text":"hi"}}"#;
    let out = courier(&["decode", "--json", msgpack, b64, json]);
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 3);
    for l in &lines {
        assert_eq!(l["envelope"]["type"], "publish", "{l}");
        assert_eq!(l["envelope"]["payload"]["text"], "hi", "{l}");
    }
    assert_eq!(lines[0]["subprotocol"], "courier.v2.msgpack");
    assert_eq!(lines[2]["subprotocol"], "courier.v2.json");

    // Text output, a forced subprotocol, and a frame that is not Courier.
    let out = courier(&[
        "decode",
        "--subprotocol",
        "courier.v1.msgpack",
        msgpack,
        "c0ffee",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains(r#"courier.v1.msgpack   {"type":"publish""#),
        "{text}"
    );
    assert!(
        text.contains("! frame 2: malformed") && text.contains("4000"),
        "{text}"
    );
}

#[test]
fn a_file_of_frames_and_stdin() {
    let dir = std::env::temp_dir().join(format!("courier-decode-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("frames.txt");
    std::fs::write(
        &file,
        "# a ping and a subscribe, as a user pastes them\n\
         {\"type\":\"ping\",\"ts\":5}\n\n\
         {\"type\":\"subscribe\",\"id\":\"s1\",\"channel\":\"chat\"}\n",
    )
    .unwrap();
    let out = courier(&["decode", "--json", "--file", file.to_str().unwrap()]);
    let lines = json_lines(&out);
    assert!(out.status.success());
    assert_eq!(
        lines[0]["envelope"],
        serde_json::json!({"type": "ping", "ts": 5})
    );
    assert_eq!(lines[1]["envelope"]["channel"], "chat");

    let mut child = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["decode", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"type\":\"ping\",\"ts\":7}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(json_lines(&out)[0]["envelope"]["ts"], 7);
    // One binary frame as it was sent (MessagePack {"type":"ping"}).
    let mut child = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(["decode", "--json", "--input", "raw"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"\x81\xa4type\xa4ping")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let lines = json_lines(&out);
    assert_eq!(lines[0]["subprotocol"], "courier.v2.msgpack");
    assert_eq!(lines[0]["envelope"], serde_json::json!({"type": "ping"}));
    let _ = std::fs::remove_dir_all(dir);
}

/// Installs a Debian package when its command is missing (CI runs as root
/// on a fresh machine).
fn ensure_command(command: &str, package: &str) {
    let found = |c: &str| {
        Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if found(command) {
        return;
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", package])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        assert!(install(), "apt-get install {package} failed");
    }
    assert!(
        found(command),
        "{command} missing after installing {package}"
    );
}

/// tcpdump on loopback for one port, writing `file`; ready when it says so.
struct Tcpdump(std::process::Child);

impl Tcpdump {
    fn start(port: u16, file: &Path) -> Tcpdump {
        use std::io::BufRead;
        let mut child = Command::new("tcpdump")
            // A larger kernel buffer (KiB): a loaded CI machine must not drop packets.
            .args([
                "-i",
                "lo",
                "--immediate-mode",
                "-U",
                "-B",
                "16384",
                "-s",
                "0",
                "-w",
            ])
            .arg(file)
            .args(["tcp", "port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump starts");
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("listening on"), "tcpdump: {line}");
        // Keep draining so tcpdump never blocks on its stderr.
        std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
        // "listening on" can come just before the filter is attached on a
        // loaded machine: a short pause keeps the first session's SYN.
        std::thread::sleep(Duration::from_millis(300));
        Tcpdump(child)
    }

    /// SIGINT (tcpdump flushes and exits), bounded wait.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        for _ in 0..50 {
            if self.0.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_tcpdump_capture_of_real_sessions_in_all_three_encodings() {
    ensure_command("tcpdump", "tcpdump");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(courier_server::start(courier_server::ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        }))
        .expect("server starts");
    let port = server.local_addr().port();
    let file = std::env::temp_dir().join(format!("courier-decode-{}.pcap", std::process::id()));
    let dump = Tcpdump::start(port, &file);
    let encodings = ["courier.v2.msgpack", "courier.v2.json", "courier.v1.proto"];
    rt.block_on(async {
        for (i, sp) in encodings.iter().enumerate() {
            let sp: Subprotocol = sp.parse().unwrap();
            let client = tokio::time::timeout(
                Duration::from_secs(10),
                ClientConfig::new(server.ws_url())
                    .subprotocols([sp])
                    .connect(),
            )
            .await
            .expect("connects in time")
            .expect("connects");
            let mut sub = client.subscribe("chat").await.unwrap();
            let text = format!("hi {i} {}", "x".repeat(100));
            client
                .publish("chat", &serde_json::json!({ "text": text, "n": i }))
                .await
                .unwrap();
            let got = tokio::time::timeout(Duration::from_secs(10), sub.next_message())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.channel, "chat");
            client.close().await;
        }
    });
    // An SSE session too, made by `courier tap` (GET /sse, POST /publish).
    let sse_url = format!("{}/sse", server.http_url());
    let dir = std::env::temp_dir().join(format!("courier-decode-sse-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("send.jsonl"),
        r#"{"type":"publish","id":"sse-1","channel":"chat","payload":{"via":"sse"}}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("expect.jsonl"),
        r#"{"type":"message","id":"sse-1"}"#,
    )
    .unwrap();
    let tap = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args([
            "tap",
            &sse_url,
            "-c",
            "chat",
            "-s",
            "courier.v1.json",
            "--send",
        ])
        .arg(dir.join("send.jsonl"))
        .arg("--expect")
        .arg(dir.join("expect.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(tap.status.success(), "{}", stdout(&tap));
    let _ = std::fs::remove_dir_all(dir);
    // Let the last packets reach the capture.
    std::thread::sleep(Duration::from_millis(300));
    dump.stop();
    drop(server);

    let out = courier(&[
        "decode",
        "--json",
        "--port",
        &port.to_string(),
        "--file",
        file.to_str().unwrap(),
    ]);
    let lines = json_lines(&out);
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    let selected: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.get("selected")?.as_str())
        .collect();
    assert_eq!(selected, encodings, "{}", stdout(&out));
    for (i, _) in encodings.iter().enumerate() {
        let n = i as u64 + 1;
        let env = |dir: &str, ty: &str| {
            lines
                .iter()
                .find(|l| l["connection"] == n && l["dir"] == dir && l["envelope"]["type"] == ty)
        };
        assert!(env("client->server", "hello").is_some(), "connection {n}");
        assert!(env("server->client", "welcome").is_some(), "connection {n}");
        assert_eq!(
            env("client->server", "subscribe").unwrap()["envelope"]["channel"],
            "chat"
        );
        let publish = env("client->server", "publish").expect("publish");
        assert_eq!(publish["envelope"]["payload"]["n"], i as u64);
        assert!(publish["envelope"]["payload"]["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("hi {i} xxx")));
        // v2 servers may deliver inside a `batch`.
        let message = lines
            .iter()
            .filter(|l| l["connection"] == n && l["dir"] == "server->client")
            .flat_map(|l| match l["envelope"]["type"].as_str() {
                Some("batch") => l["envelope"]["envelopes"].as_array().unwrap().clone(),
                _ => vec![l["envelope"].clone()],
            })
            .find(|e| e["type"] == "message")
            .expect("message");
        assert_eq!(message["seq"], i as u64 + 1);
        assert!(
            lines
                .iter()
                .any(|l| l["connection"] == n && l.get("close").is_some()),
            "connection {n} closes"
        );
    }
    // The SSE stream (connection 4): events decoded as v1 JSON, with ids.
    let sse: Vec<&Value> = lines
        .iter()
        .filter(|l| l["connection"] == 4 && l.get("envelope").is_some())
        .collect();
    assert_eq!(sse[0]["envelope"]["type"], "welcome");
    assert_eq!(sse[0]["envelope"]["version"], 1);
    let message = sse
        .iter()
        .find(|l| l["envelope"]["type"] == "message")
        .expect("SSE message");
    assert_eq!(message["envelope"]["payload"]["via"], "sse");
    assert!(message["sse_id"].as_str().unwrap().starts_with("chat:"));
    // Text output names each connection and its subprotocol.
    let out = courier(&["decode", "--file", file.to_str().unwrap()]);
    let text = stdout(&out);
    assert!(
        text.contains("-> 101 courier.v2.msgpack") && text.contains(r#"C->S {"type":"hello""#),
        "{text}"
    );
    if std::env::var_os("COURIER_KEEP_CAPTURE").is_none() {
        let _ = std::fs::remove_file(file);
    }
}

#[test]
fn checked_in_pcapng_captures() {
    // session.pcapng: dumpcap on lo during a JSON session (record.py).
    let file = captures().join("session.pcapng");
    let out = courier(&["decode", "--json", "--file", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stdout(&out));
    let lines = json_lines(&out);
    let types: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["envelope"]["type"].as_str())
        .collect();
    for t in [
        "hello",
        "welcome",
        "subscribe",
        "subscribe_ack",
        "publish",
        "publish_ack",
        "message",
    ] {
        assert!(types.contains(&t), "{t} missing from {types:?}");
    }
    // fragmented.pcapng: a masked MessagePack publish split over three
    // frames with a ping between them (record.py, captured by dumpcap).
    let file = captures().join("fragmented.pcapng");
    let out = courier(&["decode", "--json", "--file", file.to_str().unwrap()]);
    let lines = json_lines(&out);
    assert!(out.status.success(), "{}", stdout(&out));
    let publish = lines
        .iter()
        .find(|l| l["envelope"]["type"] == "publish")
        .expect("publish");
    assert_eq!(publish["fragments"], 3);
    assert_eq!(publish["envelope"]["payload"]["text"], "fragmented");
    assert!(lines.iter().any(|l| l.get("ping").is_some()));
}

#[test]
fn damaged_captures_end_in_an_error_not_a_panic() {
    let good = std::fs::read(captures().join("session.pcapng")).unwrap();
    let dir = std::env::temp_dir().join(format!("courier-decode-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.pcapng");
    let run = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        courier(&["decode", "--file", path.to_str().unwrap()])
    };
    // A missing file: exit 2.
    let out = courier(&["decode", "--file", "/nonexistent/capture.pcap"]);
    assert_eq!(out.status.code(), Some(2), "{:?}", out);
    // Cut short: a typed error and exit 2.
    let out = run(&good[..good.len() / 2 + 3]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("truncated"),
        "{:?}",
        out
    );
    // A block claiming 4 GiB: refused before allocating.
    let mut huge = vec![
        0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0,
    ];
    huge.extend_from_slice(&[0xff; 8]);
    huge.extend_from_slice(&[28, 0, 0, 0]);
    huge.extend_from_slice(&[6, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff]);
    let out = run(&huge);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("malformed"),
        "{:?}",
        out
    );
    // Bytes flipped through the file: every run ends with an exit code,
    // none with a panic (101) or a signal.
    let mut state = 0x9e37_79b9_u32;
    for _ in 0..40 {
        let mut bad = good.clone();
        for _ in 0..8 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let i = state as usize % bad.len();
            bad[i] ^= (state >> 8) as u8 | 1;
        }
        let out = run(&bad);
        assert!(matches!(out.status.code(), Some(0..=2)), "{:?}", out);
    }
    let _ = std::fs::remove_dir_all(dir);
}
