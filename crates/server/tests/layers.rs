//! The server's modules import one way: transport → session → hub →
//! engine, each layer only the layers below it and the leaf modules
//! (ARCHITECTURE.md, "courier-server"). This test reads every `use crate::`
//! and `crate::` path in `src/` and fails on an import running back up.

use std::collections::BTreeSet;
use std::path::Path;

/// Layers from the top; a module may import its own layer, lower layers and leaves.
const LAYERS: &[&str] = &["server", "transport", "session", "hub", "engine"];
/// Leaf modules: import only other leaves.
const LEAVES: &[&str] = &[
    "config", "error", "features", "frame", "metrics", "pattern", "auth", "rpc",
];

/// `faults` wraps two layers: its `transport` part (and `phantom`, the
/// requests that transport slips in) belongs to the transport layer, its
/// `engine` part to the engine layer, `mod.rs` is a leaf.
fn layer_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    match parts.as_slice() {
        // `phantom` is part of the faulty transport (requests it slips in).
        [f, sub] if f == "faults" && sub == "phantom" => "transport".to_string(),
        [f, sub] if f == "faults" && sub != "mod" => sub.clone(),
        // `fuzz/` wires every layer like `server` (entry points for fuzz/).
        [f, _] if f == "fuzz" => "server".to_string(),
        // A layer's submodules, at any depth (`engine/redis/publish.rs`).
        [f, _, ..] => f.clone(),
        [f] if f == "lib" => "server".to_string(),
        [f] => f.clone(),
        [] => panic!("unexpected module path {rel:?}"),
    }
}

fn rank(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == module)
}

fn allowed(from: &str, to: &str) -> bool {
    if from == to || to == "faults" && rank(from).is_some() {
        return true;
    }
    match (rank(from), rank(to)) {
        (Some(f), Some(t)) => t >= f,
        (Some(_), None) => LEAVES.contains(&to),
        (None, Some(_)) => false,
        // Leaves may use each other; `faults` (the enum) is a leaf too.
        (None, None) => LEAVES.contains(&to) || to == "faults",
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The first segment after each `crate::` in `text`.
fn crate_imports(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            // `crate::{a, b::c}` names several modules at once.
            let group = match rest.strip_prefix('{') {
                Some(inner) => inner.split('}').next().unwrap_or(""),
                None => rest,
            };
            for item in group.split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // Types and other items of the crate root are not modules.
                if !name.is_empty() && name.chars().next().unwrap().is_lowercase() {
                    out.insert(name);
                }
                if rest.starts_with('{') {
                    continue;
                }
                break;
            }
        }
    }
    out
}

#[test]
fn modules_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let root_fns = ["now_ms", "base36"];
    let mut violations = Vec::new();
    for file in &files {
        let from = layer_of(file, &src);
        let text = std::fs::read_to_string(file).unwrap();
        for to in crate_imports(&text) {
            if root_fns.contains(&to.as_str()) {
                continue;
            }
            if !allowed(&from, &to) {
                violations.push(format!("{} ({from}) imports {to}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports running up the layers:\n{}",
        violations.join("\n")
    );
    // The check sees every layer.
    let seen: BTreeSet<String> = files.iter().map(|f| layer_of(f, &src)).collect();
    for layer in LAYERS {
        assert!(seen.contains(*layer), "no module in layer {layer}");
    }
}

#[test]
fn the_check_catches_an_upward_import() {
    assert!(!allowed("engine", "hub"));
    assert!(!allowed("hub", "session"));
    assert!(!allowed("session", "transport"));
    assert!(!allowed("config", "session"));
    assert!(allowed("transport", "session"));
    assert!(allowed("hub", "engine"));
    assert!(allowed("engine", "pattern"));
    assert_eq!(
        crate_imports("use crate::hub::Outbox; // crate::server\nlet x = crate::now_ms();"),
        ["hub", "now_ms"].map(String::from).into()
    );
    assert_eq!(
        crate_imports("use crate::{base36, session::Env};"),
        ["base36", "session"].map(String::from).into()
    );
}
