//! `cargo xtask guide-check`: docs/client.md as a reader uses it. A fresh
//! cargo project outside the workspace gets the guide's `Cargo.toml` lines
//! (the `path` pointed at this checkout) and its complete example as
//! `src/main.rs` (rustdoc's hidden `# ` lines included), and `cargo check`
//! must pass: the dependencies and features the guide lists are enough.
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

pub fn run() -> Result<()> {
    let root = root();
    let guide = std::fs::read_to_string(root.join("docs/client.md"))?;
    let (manifest, main) = project(&guide, &root)?;
    let dir = std::env::temp_dir().join(format!("courier-guide-check-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::write(dir.join("Cargo.toml"), &manifest)?;
    std::fs::write(dir.join("src/main.rs"), &main)?;
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    eprintln!(
        "guide-check: docs/client.md's Cargo.toml lines and example in {}",
        dir.display()
    );
    let result = Cmd::new("cargo", &["check", "--quiet"])
        .env("CARGO_TARGET_DIR", root.join("target/guide-check"))
        .run(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(e) = result {
        bail!("docs/client.md's example does not build with its Cargo.toml lines: {e:#}");
    }
    Ok(())
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
}
