//! The example binary runs to completion and prints one section per
//! subprotocol with each frame and the typed value read back.

use std::process::Command;

#[test]
fn example_prints_every_encoding() {
    let out = Command::new(env!("CARGO_BIN_EXE_courier-example-chat"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in ["courier.v2.json", "courier.v2.msgpack", "courier.v2.proto"] {
        assert!(
            stdout.contains(&format!("== {name}\n")),
            "{name} missing:\n{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("-> ChatMessage m-1 by Ada").count(),
        3,
        "{stdout}"
    );
    assert!(stdout.contains(r#""kind":"MESSAGE_KIND_USER""#), "{stdout}");
}

#[test]
fn build_script_asks_cargo_to_watch_every_proto() {
    // Cargo keeps a build script's stdout beside its OUT_DIR.
    let output = std::path::Path::new(env!("OUT_DIR")).with_file_name("output");
    let lines = std::fs::read_to_string(&output).unwrap();
    for proto in [
        "proto/chat/v1/chat.proto",
        "proto/chat/moderation/v1/moderation.proto",
    ] {
        let want = format!("cargo:rerun-if-changed={proto}");
        assert!(
            lines.lines().any(|l| l
                .replace('\\', "/")
                .ends_with(&want[want.find('=').unwrap() + 1..])
                && l.starts_with("cargo:rerun-if-changed=")),
            "{want} missing in {lines}"
        );
    }
    // Courier's own definitions are embedded in courier-codegen, not files to watch.
    assert!(!lines.contains("courier/v2/"), "{lines}");
}
