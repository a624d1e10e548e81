//! `courier serve`: runs the reference server until SIGTERM or SIGINT, then
//! shuts down gracefully (disconnect notice and close 1001 to every client).

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use courier_server::ServerConfig;

/// Options of `courier serve`. Everything else comes from the TOML file and
/// `COURIER_*` environment variables (docs/server.md).
#[derive(clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (default: built-in defaults, loopback only).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Listen address; overrides the file and COURIER_LISTEN (`127.0.0.1:0` picks a free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Log filter in `tracing` syntax; default from COURIER_LOG, else `info`.
    #[arg(long)]
    log: Option<String>,
    /// Log line format: `text` for people, `json` (one object per line) for
    /// log shippers; default from COURIER_LOG_FORMAT, else `text`.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

/// How `courier serve` writes its log lines (stderr).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal and
    /// `NO_COLOR` is unset or empty (<https://no-color.org>).
    Text,
    /// One JSON object per line (`timestamp`, `level`, `fields`, `target`),
    /// never coloured.
    Json,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let filter = args
        .log
        .or_else(|| std::env::var("COURIER_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let format = match args.log_format {
        Some(f) => f,
        None => match std::env::var("COURIER_LOG_FORMAT").ok().as_deref() {
            None | Some("") | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => anyhow::bail!("COURIER_LOG_FORMAT={other}: expected `text` or `json`"),
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&filter).context("invalid --log filter")?;
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs
            .with_ansi(colour(std::io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
    let mut config = ServerConfig::load(args.config.as_deref(), std::env::vars())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // Handlers go in before the line below: a supervisor may send
        // SIGTERM as soon as it reads it, and must not kill us outright.
        let signal = shutdown_signal()?;
        let server = courier_server::start(config).await?;
        // Tests and the TypeScript suite wait for this exact line.
        println!("courier: listening on {}", server.ws_url());
        std::io::stdout().flush()?;
        signal.await;
        tracing::info!("shutting down");
        server.shutdown().await;
        anyhow::Ok(())
    })
}

/// Whether text logs get ANSI colours: only on a terminal, and never when
/// `NO_COLOR` is set to a non-empty value (files, pipes and log collectors
/// get plain text).
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Registers the SIGTERM and SIGINT handlers now; the future resolves on
/// the first of them.
#[cfg(unix)]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
