//! `cargo xtask ci`: every check, in the order that fails fastest. What
//! `.ci/run` runs and what a person runs before pushing.
//!
//! The checks are a list of [`Step`]s (see [`steps`]): to add one, push it
//! where it belongs. Each step prints a `==> [i/n] name` line before it
//! starts and its time when it ends; a summary of the times closes the run.
//! `--list` prints the steps, `--from N` starts at step N (after a fix).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cmd::Cmd;
use crate::root;

/// One check: a name people recognise in the log, and the commands it runs
/// (one after another, each in its directory).
pub struct Step {
    pub name: &'static str,
    pub commands: Vec<(PathBuf, Cmd)>,
}

impl Step {
    fn new(name: &'static str) -> Self {
        Step {
            name,
            commands: Vec::new(),
        }
    }

    fn run(mut self, dir: impl Into<PathBuf>, cmd: Cmd) -> Self {
        self.commands.push((dir.into(), cmd));
        self
    }
}

/// Every CI step, in order.
fn steps() -> Result<Vec<Step>> {
    let root = root();
    let target = target_dir()?;
    let courier = target.join("debug").join("courier");
    let installed = target.join("install-check");
    let ts = root.join("bindings/typescript");
    let tools = root.join("tools");
    let npm_ci = || Cmd::new("npm", &["ci", "--no-audit", "--no-fund"]);
    Ok(vec![
        Step::new("rustfmt").run(&root, Cmd::new("cargo", &["fmt", "--all", "--", "--check"])),
        // Lints of `[workspace.lints]` and clippy's defaults, warnings denied.
        Step::new("clippy").run(
            &root,
            Cmd::new(
                "cargo",
                &[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ],
            ),
        ),
        // Every crate's API docs build without a warning (broken links included).
        Step::new("rustdoc").run(
            &root,
            Cmd::new("cargo", &["doc", "--workspace", "--no-deps"])
                .env("RUSTDOCFLAGS", "-D warnings"),
        ),
        // The `courier` binary the TypeScript and docs checks run.
        Step::new("build courier").run(&root, Cmd::new("cargo", &["build", "-p", "courier-cli"])),
        // The README's `cargo install --path crates/cli --locked` (debug and
        // into the target directory, so it reuses the build above: seconds).
        Step::new("courier installed as the README says")
            .run(
                &root,
                Cmd::new(
                    "cargo",
                    &[
                        "install",
                        "--path",
                        "crates/cli",
                        "--locked",
                        "--debug",
                        "--force",
                        "--root",
                    ],
                )
                .arg(&installed)
                .env("CARGO_TARGET_DIR", &target),
            )
            .run(
                &root,
                Cmd::new(
                    installed.join("bin/courier").to_str().unwrap_or("courier"),
                    &["--version"],
                ),
            ),
        // `courier conform client` as a user runs it, against the Rust
        // client's driver (about 10 s; the mutant proof is in cargo test).
        Step::new("client conformance: Rust client")
            .run(
                &root,
                Cmd::new(
                    "cargo",
                    &[
                        "build",
                        "-p",
                        "courier-client",
                        "--example",
                        "conform_driver",
                    ],
                ),
            )
            .run(
                &root,
                Cmd::new(
                    courier.to_str().unwrap_or("courier"),
                    &[
                        "conform",
                        "client",
                        "--",
                        target
                            .join("debug/examples/conform_driver")
                            .to_str()
                            .unwrap_or("conform_driver"),
                    ],
                ),
            ),
        Step::new("cargo test").run(
            &root,
            Cmd::new("cargo", &["test", "--workspace", "--no-fail-fast"]),
        ),
        // The fuzz targets of fuzz/, built with coverage instrumentation
        // (stable toolchain, no cargo-fuzz: xtask/src/fuzz.rs), seeded
        // from conformance/vectors, 10 s each; a crash fails the step and
        // names the input to keep in fuzz/regressions/.
        Step::new("fuzz (6 targets, 10 s each)").run(
            &root,
            Cmd::new("cargo", &["xtask", "fuzz", "--seconds", "10"]),
        ),
        // docs/client.md and docs/codegen.md as a reader uses them: their
        // Cargo.toml lines and code in fresh projects outside the workspace
        // (xtask/src/guide.rs).
        Step::new("Rust guides (client, codegen) in fresh projects")
            .run(&root, Cmd::new("cargo", &["xtask", "guide-check"])),
        // The README's Python path: examples/python/chat.py against `courier serve`.
        Step::new("Python example").run(
            root.join("examples/python"),
            Cmd::new("bash", &["test.sh"]).env("COURIER_BIN", &courier),
        ),
        Step::new("TypeScript package")
            .run(&ts, npm_ci())
            .run(&ts, Cmd::new("npm", &["test"]).env("COURIER_BIN", &courier)),
        // The package as users install it: `npm pack`, installed into a
        // fresh `npm init` project, README example run (docs/typescript.md).
        Step::new("TypeScript package, installed from its tarball").run(
            &ts,
            Cmd::new("node", &["scripts/install-test.mjs"]).env("COURIER_BIN", &courier),
        ),
        // The TypeScript client passes the client conformance suite, driven
        // under Node by its driver over the package built above
        // (docs/conformance-client.md). Time scale 2: every case starts a
        // Node process, eight at a time on two cores. `npm test` holds the
        // proof that each of the client's faults is caught.
        Step::new("TypeScript client conformance").run(
            &ts,
            Cmd::new(
                courier.to_str().unwrap_or("courier"),
                &[
                    "conform",
                    "client",
                    "--time-scale",
                    "2",
                    "--",
                    "node",
                    "scripts/conform-driver.mjs",
                ],
            ),
        ),
        // A project made by `courier init` builds, passes its own tests and
        // conforms (xtask/src/init_smoke.rs; needs the package built above).
        Step::new("courier init project").run(&root, Cmd::new("cargo", &["xtask", "init-smoke"])),
        Step::new("tools (buf lint, AsyncAPI parser, docs site in Chromium)")
            .run(&tools, npm_ci())
            .run(
                &tools,
                Cmd::new("npm", &["test"]).env("COURIER_BIN", &courier),
            ),
    ])
}

/// The target directory, as cargo uses it (`CARGO_TARGET_DIR`,
/// `build.target-dir`, else `target/`): where `cargo build -p courier-cli`
/// puts the `courier` the npm steps run.
pub fn target_dir() -> Result<PathBuf> {
    let meta = Cmd::new(
        "cargo",
        &[
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ],
    )
    .output(&root())?;
    let meta: serde_json::Value = serde_json::from_str(&meta).context("cargo metadata")?;
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata: no target_directory")?;
    Ok(PathBuf::from(target))
}

pub fn run(args: &[String]) -> Result<()> {
    let steps = steps()?;
    let total = steps.len();
    if args.iter().any(|a| a == "--list") {
        for (i, step) in steps.iter().enumerate() {
            println!("{:>2}. {}", i + 1, step.name);
        }
        return Ok(());
    }
    let from = match args.iter().position(|a| a == "--from") {
        Some(i) => match args.get(i + 1).and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if (1..=total).contains(&n) => n,
            _ => bail!("--from takes a step number 1..={total} (see --list)"),
        },
        None => 1,
    };
    let started = Instant::now();
    let mut times: Vec<(&str, Duration)> = Vec::new();
    for (i, step) in steps.into_iter().enumerate().skip(from - 1) {
        eprintln!("\n==> [{}/{total}] {}", i + 1, step.name);
        let t = Instant::now();
        for (dir, cmd) in &step.commands {
            if let Err(e) = cmd.run(dir) {
                summary(&times, started.elapsed());
                bail!(
                    "step {}/{total} ({}) failed: {e:#}\n(re-run from here: cargo xtask ci --from {})",
                    i + 1,
                    step.name,
                    i + 1
                );
            }
        }
        eprintln!(
            "<== [{}/{total}] {} ({})",
            i + 1,
            step.name,
            mmss(t.elapsed())
        );
        times.push((step.name, t.elapsed()));
    }
    summary(&times, started.elapsed());
    Ok(())
}

fn summary(times: &[(&str, Duration)], total: Duration) {
    eprintln!("\nci: step times");
    for (name, d) in times {
        eprintln!("  {:>6}  {name}", mmss(*d));
    }
    eprintln!("  {:>6}  total", mmss(total));
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}", s / 60, s % 60)
}
