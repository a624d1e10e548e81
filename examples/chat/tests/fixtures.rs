//! The cross-language fixtures (`examples/chat/fixtures/payloads.json`) are
//! what the Rust codec produces today; the TypeScript bindings test reads them.

use std::path::Path;

use courier_example_chat::fixtures;

#[test]
fn checked_in_fixtures_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let current = std::fs::read_to_string(root.join(fixtures::PATH)).unwrap_or_default();
    assert!(
        current == fixtures::file(),
        "stale: run `cargo xtask codegen` ({})",
        fixtures::PATH
    );
}
