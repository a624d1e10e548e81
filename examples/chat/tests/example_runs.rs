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
