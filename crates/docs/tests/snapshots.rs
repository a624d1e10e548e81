//! Snapshots of the Markdown reference and the AsyncAPI documents for the
//! Courier definitions. Transcripts are left out (a live run has fresh
//! session ids and timestamps); `tests/transcripts.rs` checks them by
//! structure instead.

#[test]
fn markdown_and_asyncapi_snapshots() {
    let mut config = courier_docs::Config::new();
    config.transcripts(false);
    let files = config.render().unwrap();
    let mut checked = 0;
    for f in &files {
        // The spec copies are the spec itself; the requirement and case
        // tables follow the conformance suite, which grows independently,
        // and are checked by structure in tests/coverage.rs.
        let snapshot_worthy = (f.path.starts_with("markdown/")
            && !f.path.starts_with("markdown/spec/")
            && f.path != "markdown/requirements.md"
            && f.path != "markdown/conformance.md")
            || f.path.starts_with("asyncapi");
        if !snapshot_worthy {
            continue;
        }
        let name = f.path.replace('/', "__");
        insta::assert_snapshot!(name, &f.contents);
        checked += 1;
    }
    assert!(checked > 25, "only {checked} files snapshotted");
}
