//! Child processes of xtask: echoed before they run, and started with the
//! environment of the shell that ran `cargo xtask`, not the one `cargo run`
//! gave xtask.
//!
//! `cargo run` adds `CARGO_MANIFEST_DIR`, `CARGO_PKG_*`, `LD_LIBRARY_PATH`
//! entries and more to xtask's environment. Passed on to an inner `cargo`,
//! they change the fingerprint of build scripts that watch them (ring's
//! watches `CARGO_MANIFEST_DIR`), so `cargo xtask ci` and a plain `cargo
//! build` rebuilt ring, rustls and every Courier crate above them each time
//! one followed the other.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Variables `cargo run` sets for the program it runs (cargo's
/// "environment variables Cargo sets for crates", as seen at run time).
const SET_BY_CARGO_RUN: &[&str] = &[
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_MANIFEST_LINKS",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "OUT_DIR",
];

/// One command line: program, arguments and extra environment.
pub struct Cmd {
    program: String,
    args: Vec<String>,
    env: Vec<(String, OsString)>,
}

impl Cmd {
    pub fn new(program: &str, args: &[&str]) -> Self {
        Cmd {
            program: program.to_string(),
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// One more argument (a path, not necessarily UTF-8).
    pub fn arg(mut self, arg: impl AsRef<std::path::Path>) -> Self {
        self.args.push(arg.as_ref().display().to_string());
        self
    }

    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The command as a person would type it.
    pub fn display(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.env {
            s.push_str(&format!("{k}={} ", v.to_string_lossy()));
        }
        s.push_str(&self.program);
        for a in &self.args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs in `dir`, failing with the exit status.
    pub fn run(&self, dir: &Path) -> Result<()> {
        eprintln!("$ (cd {}) {}", dir.display(), self.display());
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args).current_dir(dir);
        clean_env(&mut command);
        for (k, v) in &self.env {
            command.env(k, v);
        }
        let status = command
            .status()
            .with_context(|| format!("starting `{}` (is it installed?)", self.program))?;
        if !status.success() {
            bail!("`{}` failed with {status}", self.display());
        }
        Ok(())
    }

    /// Runs in `dir` and returns its standard output.
    pub fn output(&self, dir: &Path) -> Result<String> {
        let mut command = std::process::Command::new(&self.program);
        command.args(&self.args).current_dir(dir);
        clean_env(&mut command);
        let out = command
            .output()
            .with_context(|| format!("starting `{}`", self.program))?;
        if !out.status.success() {
            bail!(
                "`{}` failed with {}: {}",
                self.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// Removes what `cargo run` added to this process's environment.
pub fn clean_env(command: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if SET_BY_CARGO_RUN.contains(&key) || key.starts_with("CARGO_PKG_") {
            command.env_remove(key);
        }
    }
    // `cargo run` prepends the target directory and the toolchain's
    // libraries to LD_LIBRARY_PATH; keep only what the shell had.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        let toolchain = std::env::var_os("CARGO")
            .map(PathBuf::from)
            .and_then(|cargo| Some(cargo.parent()?.parent()?.to_path_buf()));
        let target = crate::root().join("target");
        let kept: Vec<PathBuf> = std::env::split_paths(&paths)
            .filter(|p| {
                !p.starts_with(&target)
                    && !toolchain.as_ref().is_some_and(|t| p.starts_with(t))
                    && !p.ends_with("debug")
                    && !p.ends_with("debug/deps")
            })
            .collect();
        if kept.is_empty() {
            command.env_remove("LD_LIBRARY_PATH");
        } else if let Ok(joined) = std::env::join_paths(kept) {
            command.env("LD_LIBRARY_PATH", joined);
        }
    }
}
