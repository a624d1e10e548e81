//! `courier conform`: runs the conformance suite against a server given by
//! URL and profile, or, with no URL, against the embedded reference server;
//! prints live progress and a summary, writes JSON / JUnit / HTML reports,
//! and exits 1 when a MUST requirement fails. A target that cannot be tested
//! at all (bad URL, nothing listening, credentials refused) is found by one
//! check before any case and exits 2 with one line saying why.

use std::path::PathBuf;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use courier_conformance::report::term::TermProgress;
use courier_conformance::{CommandControl, ExpectedFailures, Profile, RunConfig, Target};

/// Arguments of `courier conform`.
#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConformArgs {
    /// `client`: check a client instead of a server.
    #[command(subcommand)]
    pub mode: Option<ConformMode>,
    /// WebSocket URL of the server under test (ws:// or wss://). Several
    /// URLs are the endpoints of one deployment (nodes sharing an engine):
    /// each case spreads its sessions over them in turn. Without a URL the
    /// embedded reference server is started and tested.
    pub url: Vec<String>,
    /// Profile file (TOML): tokens, channels, versions, encodings, features,
    /// restart command; or `builtin:courier-serve` for a `courier serve`
    /// without configuration. See docs/conformance.md.
    #[arg(long)]
    pub profile: Option<String>,
    /// SSE endpoint URL (overrides the profile's `sse_url`).
    #[arg(long)]
    pub sse_url: Option<String>,
    /// Seed of the randomized history schedule (printed on failure).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The options shared with `courier conform client`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// What `courier conform` checks besides a server.
#[derive(clap::Subcommand, Debug)]
pub enum ConformMode {
    /// Check a client: the suite plays a scripted server and drives the
    /// client through its driver process (docs/conformance-client.md), e.g.
    /// `courier conform client -- node conform-driver.mjs`.
    Client(Box<crate::conform_client::ClientArgs>),
}

/// Case selection, verdict policy, timing and reports: the options both
/// modes share.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Run only case IDs matching this glob (`*` wildcard); repeatable.
    #[arg(long)]
    pub only: Vec<String>,
    /// Skip case IDs matching this glob; repeatable.
    #[arg(long)]
    pub skip: Vec<String>,
    /// Treat SHOULD failures as failures.
    #[arg(long)]
    pub strict: bool,
    /// Expected-failures file: one glob per line, `#` comments.
    #[arg(long)]
    pub expected_failures: Option<PathBuf>,
    /// Write the JSON report (schema_version 1) here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
    /// Write a JUnit XML report here (for CI systems).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// Per-case timeout in seconds (before time scaling).
    #[arg(long, default_value_t = 20.0)]
    pub timeout: f64,
    /// How many cases run at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Multiply every wait and tolerance (e.g. 3 for a slow server or CI box).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// List the case instances that would run, and exit.
    #[arg(long)]
    pub list: bool,
    /// Print every case as it finishes, not only failures.
    #[arg(short, long)]
    pub verbose: bool,
}

impl RunArgs {
    /// The run configuration these options describe.
    pub fn config(&self) -> anyhow::Result<RunConfig> {
        if self.time_scale <= 0.0 || self.timeout <= 0.0 {
            bail!("--time-scale and --timeout must be positive");
        }
        let mut config = RunConfig::new();
        for p in &self.only {
            config.only(p);
        }
        for p in &self.skip {
            config.skip(p);
        }
        config
            .strict(self.strict)
            .parallel(self.parallel)
            .case_timeout(Duration::from_secs_f64(self.timeout));
        if let Some(path) = &self.expected_failures {
            let ef = ExpectedFailures::from_file(path)
                .with_context(|| format!("reading {}", path.display()))?;
            config.expected_failures(ef);
        }
        Ok(config)
    }

    /// Writes the reports asked for and prints the summary.
    pub fn write_reports(&self, report: &courier_conformance::Report) -> anyhow::Result<()> {
        if let Some(p) = &self.report_json {
            std::fs::write(p, report.to_json())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if let Some(p) = &self.junit {
            std::fs::write(p, report.to_junit())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        if let Some(p) = &self.html {
            std::fs::write(p, report.to_html())
                .with_context(|| format!("writing {}", p.display()))?;
        }
        print!("{}", report.summary_text());
        Ok(())
    }
}

/// Exit code when the suite could not run (arguments, profile, unreachable target).
pub const EXIT_COULD_NOT_RUN: i32 = 2;

/// Runs the command; returns the process exit code: 0 passed, 1 failed,
/// 2 could not run (the error is printed here).
pub fn run(args: ConformArgs) -> anyhow::Result<i32> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = match args.mode {
        Some(ConformMode::Client(client)) => rt.block_on(crate::conform_client::run_async(*client)),
        None => rt.block_on(run_async(args)),
    };
    match outcome {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("courier conform: error: {e:#}");
            Ok(EXIT_COULD_NOT_RUN)
        }
    }
}

async fn run_async(args: ConformArgs) -> anyhow::Result<i32> {
    let mut config = args.run.config()?;
    let mut profile = match &args.profile {
        Some(p) => Some(Profile::load(p)?),
        None => None,
    };
    // URLs on the command line replace the profile's `url` and `endpoints`.
    let urls = if args.url.is_empty() {
        profile
            .as_ref()
            .and_then(|p| p.url.clone())
            .map(|u| {
                let more = profile.as_ref().map(|p| p.endpoints.clone());
                std::iter::once(u).chain(more.unwrap_or_default()).collect()
            })
            .unwrap_or_default()
    } else {
        args.url.clone()
    };
    let mut embedded = None;
    let mut hint = None;
    let mut target = match urls.first().cloned() {
        Some(url) => {
            for u in &urls {
                courier_conformance::preflight::valid_url(u)?;
            }
            let mut profile = match profile.take() {
                Some(p) => p,
                None => {
                    hint = Some(format!("courier conform: no --profile: testing {url} as a server with anonymous sessions and no optional features (their cases are `unsupported`); for a default `courier serve` use --profile builtin:courier-serve, for others see docs/conformance.md"));
                    Profile::for_url(&url)
                }
            };
            if let Some(sse) = &args.sse_url {
                profile.sse_url = Some(sse.clone());
            }
            let control = profile.restart_command.clone().map(|c| {
                Arc::new(CommandControl(c)) as Arc<dyn courier_conformance::ServerControl>
            });
            let mut t = Target::with_endpoints(urls, profile);
            t.control = control;
            t
        }
        None => {
            if profile.is_some() {
                bail!("--profile describes an external server: also give its URL");
            }
            let server = courier_conformance::embedded::Embedded::start(
                &courier_conformance::embedded::config_toml(None),
            )
            .await
            .context("starting the embedded reference server")?;
            eprintln!(
                "courier conform: embedded reference server at {}",
                server.ws_url()
            );
            let t = server.target();
            embedded = Some(server);
            t
        }
    };
    target.time_scale = args.run.time_scale;
    if embedded.is_none() && !args.run.list {
        let welcome = courier_conformance::preflight::check(&target).await?;
        if let Some(hint) = hint {
            eprintln!("{hint}");
        }
        let undeclared: Vec<&str> = welcome
            .features
            .iter()
            .map(String::as_str)
            .filter(|f| !target.profile.has_feature(f))
            // Enabling `reauth` says nothing about when the server sends
            // `reauth_request`: that case needs `[reauth]` in the profile.
            .filter(|f| *f != "reauth")
            .collect();
        if !undeclared.is_empty() {
            eprintln!(
                "courier conform: the server enables {}, which the profile does not declare: their cases will be `unsupported` (add them to `features`)",
                undeclared.join(", ")
            );
        }
    }
    if let Some(seed) = args.seed {
        target.seed = seed;
    }
    if args.run.list {
        for id in config.selected_ids(&target) {
            println!("{id}");
        }
        return Ok(0);
    }
    config.progress(Arc::new(TermProgress::new(args.run.verbose)));
    let against = target
        .endpoints
        .iter()
        .map(|e| e.ws_url.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!(
        "courier conform: {} case instances against {against} (seed {})",
        config.selected_ids(&target).len(),
        target.seed
    );
    let report = config.run(target).await;
    if let Some(server) = embedded {
        server.shutdown().await;
    }
    args.run.write_reports(&report)?;
    Ok(report.exit_code())
}
