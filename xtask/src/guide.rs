//! `cargo xtask guide-check`: docs/client.md and docs/codegen.md as a
//! reader uses them. For each, a fresh cargo project outside the workspace
//! gets the guide's `Cargo.toml` lines (the `path`s pointed at this
//! checkout) and its code: client.md's complete example as `src/main.rs`
//! (rustdoc's hidden `# ` lines included); codegen.md's `build.rs` and
//! `src/lib.rs` over the chat example's protos. `cargo check` must pass:
//! the dependencies and features the guide lists are enough.
//! The workspace's Cargo.lock is copied in, so the versions are the tested
//! ones and mostly cached; the build goes to `target/guide-check`.

use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::cmd::Cmd;
use crate::root;

/// The fenced blocks of `text` whose info string starts with `lang`.
fn blocks<'a>(text: &'a str, lang: &str) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in text.lines() {
        match current.as_mut() {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    if info.split(',').next() == Some(lang) {
                        current = Some(Vec::new());
                    }
                }
            }
            Some(lines) => {
                if line.starts_with("```") {
                    out.extend(current.take());
                } else {
                    lines.push(line);
                }
            }
        }
    }
    out
}

/// The guide's manifest and example, ready to build against `root`.
fn project(guide: &str, root: &Path) -> Result<(String, String)> {
    let toml = blocks(guide, "toml")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("courier-client")))
        .context("docs/client.md has no ```toml block with courier-client")?;
    let client = root.join("crates/client");
    let mut manifest = String::from(
        "[package]\nname = \"guide-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n",
    );
    for line in toml {
        if line.starts_with("courier-client = { path = ") {
            manifest.push_str(&format!(
                "courier-client = {{ path = {:?} }}\n",
                client.display().to_string()
            ));
        } else {
            manifest.push_str(line);
            manifest.push('\n');
        }
    }
    let example = blocks(guide, "rust")
        .into_iter()
        .find(|b| b.iter().any(|l| l.contains("fn main")))
        .context("docs/client.md has no ```rust block with fn main")?;
    // rustdoc hides `# ` lines from the reader but compiles them.
    let main: String = example
        .iter()
        .map(|l| match l.strip_prefix("# ") {
            Some(hidden) => format!("{hidden}\n"),
            None if *l == "#" => "\n".into(),
            None => format!("{l}\n"),
        })
        .collect();
    Ok((manifest, main))
}

/// docs/codegen.md's manifest (paths pointed at `root`), `build.rs` and `src/lib.rs`.
fn codegen_project(guide: &str, root: &Path) -> Result<(String, String, String)> {
    let toml = blocks(guide, "toml")
        .into_iter()
        .find(|b| b.iter().any(|l| l.starts_with("courier-codegen")))
        .context("docs/codegen.md has no ```toml block with courier-codegen")?;
    let mut manifest = String::from(
        "[package]\nname = \"codegen-guide-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n",
    );
    for line in toml {
        let path = |rel: &str| format!("{{ path = {:?} }}", root.join(rel).display().to_string());
        if line.starts_with("courier-protocol = { path = ") {
            manifest.push_str(&format!("courier-protocol = {}\n", path("crates/protocol")));
        } else if line.starts_with("courier-codegen = { path = ") {
            manifest.push_str(&format!("courier-codegen = {}\n", path("codegen")));
        } else {
            manifest.push_str(line);
            manifest.push('\n');
        }
    }
    let code = |needle: &str, what: &str| -> Result<String> {
        let block = blocks(guide, "rust")
            .into_iter()
            .find(|b| b.iter().any(|l| l.contains(needle)))
            .with_context(|| format!("docs/codegen.md has no ```rust block for {what}"))?;
        Ok(block.iter().map(|l| format!("{l}\n")).collect())
    };
    let build = code("courier_codegen::Config", "build.rs")?;
    let lib = code("pub mod chat", "src/lib.rs")?;
    Ok((manifest, build, lib))
}

/// Copies the directory tree `from` to `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// `cargo check` in `dir` (removed afterwards), sharing one target directory.
fn check(root: &Path, dir: &Path, what: &str) -> Result<()> {
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    eprintln!("guide-check: {what} in {}", dir.display());
    let result = Cmd::new("cargo", &["check", "--quiet"])
        .env("CARGO_TARGET_DIR", root.join("target/guide-check"))
        .run(dir);
    let _ = std::fs::remove_dir_all(dir);
    if let Err(e) = result {
        bail!("{what} does not build: {e:#}");
    }
    Ok(())
}

pub fn run() -> Result<()> {
    let root = root();
    let scratch = |name: &str| {
        std::env::temp_dir().join(format!("courier-{name}-check-{}", std::process::id()))
    };
    let guide = std::fs::read_to_string(root.join("docs/client.md"))?;
    let (manifest, main) = project(&guide, &root)?;
    let dir = scratch("guide");
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), &manifest)?;
    std::fs::write(dir.join("src/main.rs"), &main)?;
    check(&root, &dir, "docs/client.md's Cargo.toml lines and example")?;

    let guide = std::fs::read_to_string(root.join("docs/codegen.md"))?;
    let (manifest, build, lib) = codegen_project(&guide, &root)?;
    let dir = scratch("codegen-guide");
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), &manifest)?;
    std::fs::write(dir.join("build.rs"), &build)?;
    std::fs::write(dir.join("src/lib.rs"), &lib)?;
    // The guide's build.rs names the chat example's protos.
    copy_tree(&root.join("examples/chat/proto"), &dir.join("proto"))?;
    check(
        &root,
        &dir,
        "docs/codegen.md's Cargo.toml lines, build.rs and lib.rs",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_the_manifest_and_the_example_with_hidden_lines() {
        let guide = "x\n```toml\n[dependencies]\ncourier-client = { path = \"../courier/crates/client\" }\ntokio = \"1\"\n```\n```rust,no_run\nfn main() {}\n# fn hidden() {}\n```\n";
        let (manifest, main) = project(guide, Path::new("/repo")).unwrap();
        assert!(
            manifest.contains("courier-client = { path = \"/repo/crates/client\" }"),
            "{manifest}"
        );
        // Outside any workspace, with the guide's other lines as written.
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        assert!(manifest.contains("\ntokio = \"1\"\n"), "{manifest}");
        assert_eq!(main, "fn main() {}\nfn hidden() {}\n");
    }

    #[test]
    fn takes_the_codegen_manifest_build_script_and_lib() {
        let guide = "```toml\n[dependencies]\ncourier-protocol = { path = \"../courier/crates/protocol\" }\n\n[build-dependencies]\ncourier-codegen = { path = \"../courier/codegen\" }\n```\n```rust,ignore\nfn main() { courier_codegen::Config::new(); }\n```\n```rust,ignore\npub mod chat {}\n```\n";
        let (manifest, build, lib) = codegen_project(guide, Path::new("/repo")).unwrap();
        assert!(
            manifest.contains("courier-protocol = { path = \"/repo/crates/protocol\" }"),
            "{manifest}"
        );
        assert!(
            manifest
                .contains("[build-dependencies]\ncourier-codegen = { path = \"/repo/codegen\" }"),
            "{manifest}"
        );
        assert_eq!(build, "fn main() { courier_codegen::Config::new(); }\n");
        assert_eq!(lib, "pub mod chat {}\n");
    }
}
