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

#[test]
fn payload_definitions_get_their_own_page() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/chat/proto");
    let proto = root.join("chat/v1/chat.proto");
    let mut config = courier_docs::Config::new();
    config.transcripts(false).payloads(&[&proto], &[&root]);
    let files = config.render().unwrap();
    let page = &files
        .iter()
        .find(|f| f.path == "payloads.html")
        .expect("payloads.html")
        .contents;
    let (fds, _) = courier_codegen::load(&[&proto], &[&root]).unwrap();
    let chat = fds.file.iter().find(|f| f.package() == "chat.v1").unwrap();
    assert!(!chat.message_type.is_empty());
    for m in &chat.message_type {
        assert!(
            page.contains(&format!("id=\"type-{}\"", m.name())),
            "{} missing",
            m.name()
        );
    }
    // Every link into the page itself lands on an element of the page; a
    // Courier type a payload uses (`courier.v2.StreamPosition`) links to
    // Courier's types page, which defines it.
    for link in page.split("href=\"payloads.html#").skip(1) {
        let anchor = &link[..link.find('"').unwrap()];
        assert!(
            page.contains(&format!("id=\"{anchor}\"")),
            "broken link #{anchor}"
        );
    }
    assert!(page.contains("href=\"types.html#type-StreamPosition\""));
    let types = &files
        .iter()
        .find(|f| f.path == "types.html")
        .unwrap()
        .contents;
    assert!(types.contains("id=\"type-StreamPosition\""));
    let index = &files
        .iter()
        .find(|f| f.path == "index.html")
        .unwrap()
        .contents;
    assert!(index.contains("payloads.html"));
}
