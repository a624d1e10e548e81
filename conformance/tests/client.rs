//! The client mode proves itself against the Rust client: its conformance
//! driver (`crates/client/examples/conform_driver.rs`, built here with the
//! client's `faults` feature) passes every client case, and with each fault
//! of `trace::CLIENT_MUTANTS` that the Rust client has, every case listed
//! for it fails (or warns, for a SHOULD requirement's case).

use std::path::PathBuf;
use std::process::Command;

use courier_conformance::client::ClientTarget;
use courier_conformance::expect::glob_match;
use courier_conformance::trace::CLIENT_MUTANTS;
use courier_conformance::{Outcome, RunConfig};

/// Builds the driver (a nested cargo: the example lives in courier-client)
/// and returns its path.
fn driver() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "-p",
            "courier-client",
            "--example",
            "conform_driver",
            "--features",
            "faults",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building the Rust conformance driver failed"
    );
    // target/debug/deps/client-<hash> → target/debug/examples/conform_driver
    let exe = std::env::current_exe().expect("test binary path");
    let debug = exe.parent().and_then(|d| d.parent()).expect("target/debug");
    let path = debug.join("examples").join("conform_driver");
    assert!(path.exists(), "{} missing after the build", path.display());
    path
}

fn target(driver: &std::path::Path, fault: Option<&str>) -> ClientTarget {
    let mut t = ClientTarget::new(vec![driver.display().to_string()]);
    if let Some(f) = fault {
        t.env.push(("COURIER_CLIENT_FAULT".into(), f.into()));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_client_passes_and_every_fault_is_caught() {
    let driver = driver();
    let report = RunConfig::new().run_client(target(&driver, None)).await;
    assert!(
        report.passed() && report.count(Outcome::Pass) == report.results.len(),
        "the Rust client does not pass the client suite:\n{}",
        report.summary_text()
    );
    let mut missed = Vec::new();
    for m in CLIENT_MUTANTS
        .iter()
        .filter(|m| m.clients.contains(&"rust"))
    {
        let mut config = RunConfig::new();
        for p in m.caught_by {
            config.only(p);
        }
        let report = config.run_client(target(&driver, Some(m.name))).await;
        for p in m.caught_by {
            let caught = report
                .results
                .iter()
                // A SHOULD case reports a broken requirement as a warning.
                .any(|r| {
                    glob_match(p, &r.id) && matches!(r.outcome, Outcome::Fail | Outcome::Warn)
                });
            if !caught {
                missed.push(format!(
                    "{} ({}): no instance of `{p}` failed\n{}",
                    m.name,
                    m.breaks,
                    report.summary_text()
                ));
            }
        }
    }
    assert!(
        missed.is_empty(),
        "client mutants not caught:\n{}",
        missed.join("\n")
    );
}
