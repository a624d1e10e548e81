//! Installing a missing Debian package before a test uses its program.

use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context};

/// One `apt-get` at a time: tests of one binary run on parallel threads.
static APT: Mutex<()> = Mutex::new(());

/// True when `program` is on `PATH`.
fn on_path(program: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes sure `program` is on `PATH`, installing Debian package `package`
/// with `apt-get install -y` when it is not: as root (CI on a fresh
/// machine), else with `sudo`, like the other test installers (see the
/// README's requirements table).
///
/// # Examples
///
/// ```no_run
/// courier_testkit::ensure_command("redis-server", "redis-server").unwrap();
/// ```
pub fn ensure_command(program: &str, package: &str) -> anyhow::Result<()> {
    if on_path(program) {
        return Ok(());
    }
    let _guard = APT.lock().unwrap_or_else(|e| e.into_inner());
    if on_path(program) {
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.arg("apt-get");
            sudo
        };
        let out = command
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .with_context(|| format!("running apt-get {}", args.join(" ")))?;
        if !out.status.success() {
            bail!(
                "apt-get {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    };
    // A fresh machine may have empty package lists: install, and if that
    // fails, update the lists and try once more.
    if run(&["install", "-y", "--no-install-recommends", package]).is_err() {
        run(&["update"])?;
        run(&["install", "-y", "--no-install-recommends", package])?;
    }
    if !on_path(program) {
        bail!("`{program}` is still not on PATH after installing `{package}`");
    }
    Ok(())
}
