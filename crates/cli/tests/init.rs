//! `courier init` as a user runs it: the files it writes, how the project
//! depends on Courier (path, git), and its refusals (bad name, non-empty
//! directory, git without an npm spec) with exit codes. Building the
//! project and running its own tests is `cargo xtask init-smoke` (in CI).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn courier(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_courier"))
        .args(args)
        .output()
        .expect("courier runs")
}

/// A fresh scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!(
            "courier-init-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn arg(&self, rel: &str) -> String {
        self.0.join(rel).to_str().unwrap().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", p.as_ref().display()))
}

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

#[test]
fn writes_a_project_with_path_dependencies() {
    let s = Scratch::new("path");
    let out = courier(&["init", &s.arg("chat-room")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = s.0.join("chat-room");
    for f in [
        "Cargo.toml",
        "build.rs",
        "src/lib.rs",
        "src/main.rs",
        "tests/smoke.rs",
        "proto/chat_room/v1/app.proto",
        "courier.toml",
        "conformance.toml",
        "README.md",
        ".gitignore",
        "web/package.json",
        "web/tsconfig.json",
        "web/index.html",
        "web/src/chat.ts",
        "web/src/main.ts",
        "web/test/smoke.ts",
        "web/src/gen/chat_room/v1/wire.ts",
        "web/src/gen/chat_room/v1/types.ts",
    ] {
        assert!(p.join(f).is_file(), "{f} missing");
    }
    let cargo = read(p.join("Cargo.toml"));
    let root = checkout();
    assert!(cargo.contains("name = \"chat-room\""), "{cargo}");
    for (krate, dir) in [
        ("courier-server", "crates/server"),
        ("courier-protocol", "crates/protocol"),
        ("courier-codegen", "codegen"),
        ("courier-client", "crates/client"),
    ] {
        let line = format!(
            "{krate} = {{ path = {:?} }}",
            root.join(dir).display().to_string()
        );
        assert!(cargo.contains(&line), "{line} not in\n{cargo}");
    }
    // No placeholder is left anywhere.
    for f in [
        "src/lib.rs",
        "src/main.rs",
        "tests/smoke.rs",
        "build.rs",
        "README.md",
        "web/package.json",
        "web/src/chat.ts",
    ] {
        let text = read(p.join(f));
        assert!(!text.contains("__"), "{f} has a placeholder left:\n{text}");
    }
    assert!(read(p.join("src/lib.rs")).contains("/chat_room.v1.rs"));
    // The Rust is as `cargo fmt` leaves it.
    let fmt = Command::new("rustfmt")
        .args([
            "--edition",
            "2021",
            "--check",
            "build.rs",
            "src/lib.rs",
            "src/main.rs",
            "tests/smoke.rs",
        ])
        .current_dir(&p)
        .output()
        .expect("rustfmt runs");
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stdout)
    );
    assert!(read(p.join("tests/smoke.rs")).contains("use chat_room::payloads::v1"));
    let pkg = read(p.join("web/package.json"));
    let spec = format!(
        "\"@courier/client\": \"file:{}\"",
        root.join("bindings/typescript").display()
    );
    assert!(pkg.contains(&spec), "{spec} not in\n{pkg}");
    // The bindings are what `npm run gen` (courier gen ts) writes.
    let fresh = Scratch::new("fresh");
    let out = Command::new(env!("CARGO_BIN_EXE_courier"))
        .args([
            "gen",
            "ts",
            "--out",
            &fresh.arg("gen"),
            "--include",
            "../proto",
            "--proto",
            "../proto/chat_room/v1/app.proto",
        ])
        .current_dir(p.join("web"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for f in ["types.ts", "wire.ts", "proto.ts"] {
        let ours = read(p.join("web/src/gen/chat_room/v1").join(f));
        let first = ours.lines().next().unwrap_or_default();
        assert!(first.contains("(npm run gen)"), "{f}: {first}");
        let theirs = read(fresh.0.join("gen/chat_room/v1").join(f));
        // Both name a generating command in their first line; the code is the same.
        assert_eq!(
            ours.lines().skip(1).collect::<Vec<_>>(),
            theirs.lines().skip(1).collect::<Vec<_>>(),
            "{f}"
        );
    }
}

#[test]
fn git_dependencies_and_name_option() {
    let s = Scratch::new("git");
    let out = courier(&[
        "init",
        &s.arg("dir"),
        "--name",
        "ticker",
        "--courier-git",
        "https://git.example/courier.git",
        "--courier-rev",
        "v0.1.0",
        "--client-npm",
        "file:../courier-client-0.1.0.tgz",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cargo = read(s.0.join("dir/Cargo.toml"));
    assert!(
        cargo.contains(
            "courier-server = { git = \"https://git.example/courier.git\", rev = \"v0.1.0\" }"
        ),
        "{cargo}"
    );
    assert!(cargo.contains("name = \"ticker\""));
    assert!(read(s.0.join("dir/web/package.json"))
        .contains("\"@courier/client\": \"file:../courier-client-0.1.0.tgz\""));
}

#[test]
fn refusals_have_clear_errors_and_exit_codes() {
    let s = Scratch::new("refuse");
    // A bad name is a usage error (2), from the directory or --name.
    let out = courier(&["init", &s.arg("My_App")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a project name"),
        "{out:?}"
    );
    let out = courier(&["init", &s.arg("ok"), "--name", "9lives"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A non-empty directory is never written into (1).
    std::fs::create_dir_all(s.0.join("taken")).unwrap();
    std::fs::write(s.0.join("taken/keep.txt"), "mine").unwrap();
    let out = courier(&["init", &s.arg("taken")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not empty"),
        "{out:?}"
    );
    assert_eq!(read(s.0.join("taken/keep.txt")), "mine");
    assert_eq!(std::fs::read_dir(s.0.join("taken")).unwrap().count(), 1);
    // git dependencies need to know where the npm package comes from.
    let out = courier(&[
        "init",
        &s.arg("g"),
        "--courier-git",
        "https://git.example/c.git",
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--client-npm"),
        "{out:?}"
    );
    // Not a checkout.
    let out = courier(&["init", &s.arg("p"), "--courier-path", &s.arg("taken")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a Courier checkout"),
        "{out:?}"
    );
}
