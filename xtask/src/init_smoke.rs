//! `cargo xtask init-smoke` (a step of `ci`, after the TypeScript package's
//! tests built it): `courier init` a project into a scratch directory, then
//! do what its README says: `cargo test`, `npm install && npm test` in `web/`
//! (the browser client's smoke test against `cargo run`), its page in
//! headless Chromium against its running server (two tabs, a line sent from
//! one arrives in the other: `bindings/typescript/scripts/page-check.mjs`),
//! and `courier conform` with its profile against that server.
//!
//! `@courier/client` is installed as users install a package: from the
//! tarball `npm pack` makes. The project builds into the workspace's target
//! directory with a copy of the workspace's `Cargo.lock`, so third-party
//! crates are mostly reused (the Courier crates and the TLS stack compile
//! again with the project's features): 2-5 minutes on 2 cores.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context as _, Result};

use crate::cmd::{clean_env, Cmd};
use crate::root;

pub fn run() -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("courier-init-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let result = smoke(&root(), &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn smoke(root: &Path, scratch: &Path) -> Result<()> {
    let target = crate::ci::target_dir()?;
    let courier = target.join("debug/courier");
    let courier = courier.to_str().context("target path")?;
    let tarball = Cmd::new("npm", &["pack", "--silent", "--pack-destination"])
        .arg(scratch)
        .output(&root.join("bindings/typescript"))?;
    let tarball = tarball
        .lines()
        .last()
        .context("npm pack named no tarball")?
        .trim();
    let project = scratch.join("my-app");
    Cmd::new(courier, &["init"])
        .arg(&project)
        .arg("--courier-path")
        .arg(root)
        .arg("--client-npm")
        .arg(format!("file:{}", scratch.join(tarball).display()))
        .run(scratch)?;
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock"))?;
    let shared = |c: Cmd| c.env("CARGO_TARGET_DIR", &target);
    shared(Cmd::new("cargo", &["test"])).run(&project)?;
    shared(Cmd::new("cargo", &["build"])).run(&project)?;
    let web = project.join("web");
    Cmd::new("npm", &["install", "--no-audit", "--no-fund"]).run(&web)?;
    shared(Cmd::new("npm", &["test"])).run(&web)?;

    // The profile written by init matches the server's configuration.
    let mut command = std::process::Command::new(target.join("debug/my-app"));
    clean_env(&mut command);
    let mut server = command
        .args(["--listen", "127.0.0.1:0"])
        .current_dir(&project)
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the project's server")?;
    let mut line = String::new();
    BufReader::new(server.stdout.take().context("stdout")?).read_line(&mut line)?;
    let result = (|| {
        let Some(url) = line.split_whitespace().find(|w| w.starts_with("ws://")) else {
            bail!("the server printed no URL: {line:?}");
        };
        let sse = url.replace("ws://", "http://").replace("/ws", "/sse");
        // The page in a real browser: two tabs, a line sent through the form.
        Cmd::new("node", &["scripts/page-check.mjs"])
            .arg(&web)
            .arg(url)
            .run(&root.join("bindings/typescript"))?;
        Cmd::new(
            courier,
            &[
                "conform",
                url,
                "--profile",
                "conformance.toml",
                "--sse-url",
                &sse,
            ],
        )
        .run(&project)
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}
