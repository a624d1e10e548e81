//! Courier's dev tasks, one entry point for people and CI alike:
//! `cargo xtask ci` runs every check; `cargo xtask codegen` rewrites the
//! checked-in generated files (schemas, vectors, bindings, snapshots).

mod ci;
mod codegen;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci::run(&args[1..]),
        Some("codegen") => codegen::run(&args[1..]),
        _ => bail!(
            "usage: cargo xtask <task>\n\n  ci        run every check (what .ci/run runs)\n  codegen   regenerate checked-in generated files"
        ),
    }
}

/// The workspace root.
pub fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a command in `dir`, failing with its status.
pub fn run_in(dir: &std::path::Path, program: &str, args: &[&str]) -> Result<()> {
    eprintln!("$ (cd {}) {program} {}", dir.display(), args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    Ok(())
}
