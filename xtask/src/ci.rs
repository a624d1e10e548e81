//! `cargo xtask ci`: every check, in the order that fails fastest. What
//! `.ci/run` runs and what a person runs before pushing.

use anyhow::Result;

use crate::{root, run_in};

pub fn run(_args: &[String]) -> Result<()> {
    let root = root();
    run_in(&root, "cargo", &["fmt", "--all", "--", "--check"])?;
    // Builds the `courier` binary the TypeScript and docs checks use.
    run_in(&root, "cargo", &["build", "-p", "courier-cli"])?;
    run_in(&root, "cargo", &["test", "--workspace", "--no-fail-fast"])?;
    for dir in ["bindings/typescript", "tools"] {
        let dir = root.join(dir);
        if dir.join("package.json").exists() {
            run_in(&dir, "npm", &["ci", "--no-audit", "--no-fund"])?;
            run_in(&dir, "npm", &["test"])?;
        }
    }
    Ok(())
}
