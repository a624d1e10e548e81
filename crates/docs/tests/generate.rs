//! Generates the reference into a real directory and checks the files.

use std::path::PathBuf;

fn out_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn generate_writes_site_markdown_and_asyncapi() {
    let dir = out_dir("docs-generate");
    let mut config = courier_docs::Config::new();
    config.out_dir(&dir).transcripts(false);
    let summary = config.generate().unwrap();
    assert!(summary.files > 50, "{}", summary.files);
    for path in [
        "index.html",
        "messages/publish.html",
        "types.html",
        "close-codes.html",
        "requirements.html",
        "history.html",
        "spec/index.html",
        "markdown/README.md",
        "asyncapi.yaml",
        "assets/style.css",
    ] {
        assert!(dir.join(path).is_file(), "{path} missing");
    }
}
