//! Runs the __NAME__ server: `cargo run -- [--config courier.toml] [--listen 127.0.0.1:8080]`.
//! `COURIER_*` environment variables override the configuration file (see Courier's
//! docs/server.md). Stops gracefully on Ctrl-C or SIGTERM (clients reconnect and resume).

use std::path::PathBuf;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config_file = Some(PathBuf::from("courier.toml")).filter(|p| p.exists());
    let mut listen = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--config", Some(v)) => config_file = Some(PathBuf::from(v)),
            ("--listen", Some(v)) => listen = Some(v),
            _ => {
                return Err(
                    format!("usage: __NAME__ [--config FILE] [--listen ADDR] (got {arg})").into(),
                )
            }
        }
    }
    let mut config = courier_server::ServerConfig::load(config_file.as_deref(), std::env::vars())?;
    if let Some(addr) = listen {
        config.listen = addr.parse()?;
    }
    let mut builder = __CRATE__::server(config);
    let server = builder.start().await?;
    println!("__NAME__: listening on {}", server.ws_url());
    shutdown_signal().await?;
    server.shutdown().await;
    Ok(())
}

async fn shutdown_signal() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await
}
