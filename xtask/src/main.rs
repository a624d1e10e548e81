//! Courier's dev tasks, one entry point for people and CI alike:
//! `cargo xtask ci` runs every check; `cargo xtask codegen` rewrites the
//! checked-in generated files (schemas, vectors, bindings, snapshots).

mod ci;
mod cmd;
mod fuzz;
mod guide;
mod init_smoke;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("guide-check") => guide::run(),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("init-smoke") => init_smoke::run(),
        // The generator is its own binary (xtask/codegen) so that this one
        // compiles in seconds: see xtask/Cargo.toml.
        Some("codegen") => {
            let mut cargo = vec!["run", "--package", "xtask-codegen", "--"];
            cargo.extend(args[1..].iter().map(String::as_str));
            cmd::Cmd::new("cargo", &cargo).run(&root())
        }
        _ => bail!(
            "usage: cargo xtask <task>\n\n  ci [--list] [--from N]   run every check (what .ci/run runs)\n  codegen [--check]        regenerate checked-in generated files\n  fuzz [--seconds N] [--only a,b] [--jobs J]\n                           seed, build and run the fuzz targets (docs/testing.md)\n  guide-check              build docs/client.md's example from its Cargo.toml lines\n  init-smoke               `courier init` a project, run its tests and `courier conform`"
        ),
    }
}

/// The workspace root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is one level down")
        .to_path_buf()
}
