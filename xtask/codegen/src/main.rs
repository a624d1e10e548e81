//! `cargo xtask codegen`: rewrites every checked-in generated file. The
//! freshness tests (`cargo test`) regenerate the same content in memory and
//! fail with a pointer to this command when a file is stale. `xtask` runs
//! this binary (`cargo run -p xtask-codegen -- [--check]`) so that its own
//! build stays light.
//!
//! To add a generator, append its (path, contents) pairs in [`files`].

use anyhow::{Context, Result};
use courier_protocol::schema::{envelope_schema, Dialect};
use courier_protocol::Version;

/// Every generated file, as (path relative to the workspace root, contents).
fn files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    // JSON Schema of each version's envelope (test: crates/protocol/tests/schema.rs).
    for version in [Version::V1, Version::V2] {
        let schema = envelope_schema(version, Dialect::Draft2020_12);
        let text = serde_json::to_string_pretty(&schema).expect("a schema is JSON") + "\n";
        out.push((format!("schema/{version}/envelope.schema.json"), text));
        let decoder = courier_protocol::schema::decoder_schema(version);
        let text = serde_json::to_string_pretty(&decoder).expect("a schema is JSON") + "\n";
        out.push((
            format!("schema/{version}/envelope.decoder.schema.json"),
            text,
        ));
    }
    // Cross-language vectors (test: crates/protocol/tests/vectors.rs).
    out.extend(courier_protocol::vectors::files());
    // TypeScript bindings (test: codegen/tests/typescript.rs).
    let ts = courier_codegen::ts::TsConfig::new()
        .runtime_import("../runtime/index.js")
        .generated_by("cargo xtask codegen")
        .generate(&[] as &[&str], &[] as &[&str])
        .expect("the Courier definitions generate");
    out.extend(
        ts.into_iter()
            .map(|f| (format!("bindings/typescript/src/gen/{}", f.path), f.content)),
    );
    // Chat payload fixtures for the TypeScript generator (test: examples/chat/tests/fixtures.rs).
    out.push((
        courier_example_chat::fixtures::PATH.to_string(),
        courier_example_chat::fixtures::file(),
    ));
    // Conformance case list and traceability table (test: conformance/tests/traceability.rs).
    let doc = std::fs::read_to_string(root().join("docs/conformance.md")).unwrap_or_default();
    if let Some(text) = courier_conformance::trace::render_doc(&doc) {
        out.push(("docs/conformance.md".to_string(), text));
    }
    out
}

/// The workspace root (this package lives in `xtask/codegen`).
fn root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .expect("xtask/codegen is two levels down")
        .to_path_buf()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let check = args.iter().any(|a| a == "--check");
    let root = root();
    let mut stale = Vec::new();
    for (path, contents) in files() {
        let full = root.join(&path);
        let current = std::fs::read_to_string(&full).ok();
        if current.as_deref() == Some(contents.as_str()) {
            continue;
        }
        if check {
            stale.push(path);
            continue;
        }
        if let Some(dir) = full.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&full, contents).with_context(|| format!("writing {}", full.display()))?;
        eprintln!("codegen: wrote {path}");
    }
    if !stale.is_empty() {
        anyhow::bail!("stale: run `cargo xtask codegen` ({})", stale.join(", "));
    }
    Ok(())
}
