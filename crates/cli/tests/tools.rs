//! The offline subcommands as a user runs them: `courier demo`,
//! `courier gen ts` (with and without a payload proto of one's own, and a
//! missing proto) and `courier docs`, checked through the files they write.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("courier runs")
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "exit {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "courier-cli-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }

    fn arg(&self, rel: &str) -> String {
        self.path(rel).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn demo_round_trips_every_subprotocol() {
    let stdout = ok(&courier(&["demo"]));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for v in ["v1", "v2"] {
        for enc in ["json", "msgpack", "proto"] {
            let name = format!("courier.{v}.{enc}");
            let line = lines
                .iter()
                .find(|l| l.split_whitespace().next() == Some(name.as_str()))
                .unwrap_or_else(|| panic!("{name} missing:\n{stdout}"));
            let size: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!(size > 0 && line.ends_with(" bytes"), "{line}");
        }
    }
}

#[test]
fn gen_ts_writes_the_listed_files_including_user_payloads() {
    let dir = Scratch::new("gen");
    let stdout = ok(&courier(&["gen", "ts", "--out", &dir.arg("plain")]));
    let listed: Vec<PathBuf> = stdout.lines().map(PathBuf::from).collect();
    assert!(!listed.is_empty(), "{stdout}");
    for path in &listed {
        assert!(path.is_file(), "{} listed but missing", path.display());
        assert!(
            path.extension().is_some_and(|e| e == "ts"),
            "{}",
            path.display()
        );
    }
    let mut written = files(&dir.path("plain"));
    written.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(
        written, listed_sorted,
        "stdout lists exactly what was written"
    );
    let all: String = written
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(
        all.contains("Envelope"),
        "the v2 envelope union is generated"
    );

    // A payload proto of the user's own, next to the protocol's types.
    std::fs::write(
        dir.path("chat.proto"),
        "syntax = \"proto3\";\npackage chat.v1;\nmessage ChatMessage {\n  string text = 1;\n  uint64 sent_at = 2;\n}\n",
    )
    .unwrap();
    let stdout = ok(&courier(&[
        "gen",
        "ts",
        "--out",
        &dir.arg("custom"),
        "--proto",
        &dir.arg("chat.proto"),
    ]));
    let user: Vec<&str> = stdout
        .lines()
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("ChatMessage"))
        .collect();
    assert!(!user.is_empty(), "no file defines ChatMessage:\n{stdout}");
    let text = std::fs::read_to_string(user[0]).unwrap();
    assert!(
        text.contains("sentAt") || text.contains("sent_at"),
        "{text}"
    );

    // A missing proto: an error naming it, non-zero exit, nothing claimed.
    let out = courier(&[
        "gen",
        "ts",
        "--out",
        &dir.arg("none"),
        "--proto",
        &dir.arg("absent.proto"),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("absent.proto"), "{stderr}");
}

#[test]
fn docs_writes_the_site_markdown_and_asyncapi() {
    let dir = Scratch::new("docs");
    let out_dir = dir.arg("site");
    let stdout = ok(&courier(&["docs", "--out", &out_dir]));
    assert!(stdout.contains("courier docs: wrote"), "{stdout}");

    let index = std::fs::read_to_string(dir.path("site/index.html")).unwrap();
    assert!(
        index.to_ascii_lowercase().starts_with("<!doctype html"),
        "{}",
        index.chars().take(80).collect::<String>()
    );
    let markdown = files(&dir.path("site/markdown"));
    assert!(
        markdown
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "md")),
        "{markdown:?}"
    );
    let asyncapi = std::fs::read_to_string(dir.path("site/asyncapi.yaml")).unwrap();
    let version = asyncapi
        .lines()
        .find_map(|l| l.strip_prefix("asyncapi:"))
        .map(|v| v.trim().trim_matches('"'))
        .unwrap_or_else(|| panic!("no asyncapi key"));
    assert!(version.starts_with("3."), "AsyncAPI 3, got {version}");
    assert!(asyncapi.contains("\nchannels:"), "channels section");
    // The summary's file count is what is on disk.
    let count: usize = stdout
        .split("wrote ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(count, files(&dir.path("site")).len(), "{stdout}");
}
