//! `courier conform` as a user runs it: the embedded reference server,
//! selection, the three report files, `--list`, and the exit code when an
//! expected failure unexpectedly passes.

use std::process::Command;

fn courier() -> Command {
    Command::new(env!("CARGO_BIN_EXE_courier"))
}

#[test]
fn conform_against_the_embedded_server_writes_every_report() {
    let dir = std::env::temp_dir().join(format!("courier-conform-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, junit, html) = (dir.join("r.json"), dir.join("r.xml"), dir.join("r.html"));
    let out = courier()
        .args([
            "conform",
            "--only",
            "seq.*",
            "--only",
            "close.oversize/v2/*",
            "--skip",
            "seq.gap-free/v1/*",
        ])
        .arg("--report-json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .arg("--html")
        .arg(&html)
        .output()
        .expect("courier runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("result: PASS"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["schema_version"], 1);
    let ids: Vec<&str> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"seq.gap-free/v2/msgpack") && ids.contains(&"close.oversize/v2/json"),
        "{ids:?}"
    );
    assert!(
        !ids.iter()
            .any(|id| id.starts_with("seq.gap-free/v1/") || id.starts_with("dedupe.")),
        "{ids:?}"
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase ").count(), ids.len());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("seq.gap-free/v2/msgpack"));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn list_prints_the_selected_instances() {
    let out = courier()
        .args(["conform", "--list", "--only", "hb.*"])
        .output()
        .expect("courier runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines.contains(&"hb.server-ping/v2") && lines.contains(&"hb.client-ping/v1/proto"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.starts_with("hb.")), "{lines:?}");
}

#[test]
fn an_unexpected_pass_fails_the_run() {
    let dir = std::env::temp_dir().join(format!("courier-conform-xfail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("expected-failures.txt");
    std::fs::write(
        &file,
        "# believed broken, but it is not\nhb.client-ping/v2/json\n",
    )
    .unwrap();
    let out = courier()
        .args([
            "conform",
            "--only",
            "hb.client-ping/v2/json",
            "--expected-failures",
        ])
        .arg(&file)
        .output()
        .expect("courier runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("XPASS") && stdout.contains("result: FAIL"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_target_that_cannot_be_tested_stops_with_one_line_and_exit_code_2() {
    // A port nothing listens on, and a string that is no URL: one check
    // before any case, one line, exit 2 ("could not run", not "failed").
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    for (url, says) in [
        (format!("ws://127.0.0.1:{port}/ws"), "cannot reach"),
        ("not-a-url".to_string(), "is not a WebSocket URL"),
    ] {
        let out = courier()
            .args(["conform", &url])
            .output()
            .expect("courier runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{url}: {stderr}");
        assert!(
            lines[0].starts_with("courier conform: error: ") && lines[0].contains(says),
            "{stderr}"
        );
        assert!(out.stdout.is_empty(), "no cases ran");
    }
    let out = courier()
        .args([
            "conform",
            "ws://127.0.0.1:1/ws",
            "--profile",
            "builtin:no-such",
        ])
        .output()
        .expect("courier runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("built in: courier-serve"));
}

/// A `courier serve` with no configuration, as a user starts it.
struct Serve(std::process::Child, String);

impl Serve {
    fn start() -> Serve {
        use std::io::BufRead;
        let mut child = courier()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("courier serve starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_string();
        assert!(url.starts_with("ws://"), "{line}");
        Serve(child, url)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_first_run_against_a_default_courier_serve_passes() {
    let serve = Serve::start();
    // Without a profile: passes (cases needing a second user are
    // unsupported, not failed) and says in one line which profile to use.
    let out = courier()
        .args([
            "conform", &serve.1, "--only", "auth.*", "--only", "dedupe.*",
        ])
        .output()
        .expect("courier runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("--profile builtin:courier-serve"),
        "{stderr}"
    );
    assert!(stdout.contains("result: PASS"), "{stdout}");
    // With the shipped profile: the whole suite passes.
    let out = courier()
        .args(["conform", &serve.1, "--profile", "builtin:courier-serve"])
        .output()
        .expect("courier runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert!(
        !stderr.contains("does not declare"),
        "the shipped profile declares what the server enables: {stderr}"
    );
}
