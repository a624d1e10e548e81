//! The embedded reference server: `courier conform` with no URL starts
//! `courier_server` in process with short test timers, an HS256 secret the
//! suite mints tokens with, and a forbidden channel rule, and runs the suite
//! against it with the matching profile. Restarting it (graceful shutdown,
//! then a new server on the same port) enables the restart cases.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use courier_server::{RunningServer, ServerConfig};
use tokio::sync::Mutex;

use crate::case::{ServerControl, Target};
use crate::profile::Profile;

/// The HS256 secret shared by the embedded server and the suite.
pub const SECRET: &str = "courier-conformance-embedded-secret";

/// The forbidden channel (needs scope `private`).
pub const FORBIDDEN_CHANNEL: &str = "private.conformance";

/// The embedded server sends `reauth_request` this long after each authentication.
pub const REAUTH_AFTER_MS: u64 = 300;

/// How long the embedded server keeps history, in ms: short enough for
/// `resume.history-ttl` to wait it out, long enough for every other case.
pub const HISTORY_TTL_MS: u64 = 2500;

/// First-message deadline of the embedded server, in ms.
pub const HELLO_TIMEOUT_MS: u64 = 1000;

/// The embedded server's configuration as TOML. `fault` (a kebab-case fault
/// name, with courier-server's `faults` feature) injects one defect.
///
/// Timers are short so heartbeat and expiry cases take well under a second
/// each; history, subscription and queue sizes are small so the limit cases
/// are cheap (the queue still holds a case's bursts of replies and
/// messages); rate limits keep the reference defaults.
pub fn config_toml(fault: Option<&str>) -> String {
    let fault = fault
        .map(|f| format!("fault = \"{f}\"\n"))
        .unwrap_or_default();
    format!(
        r#"listen = "127.0.0.1:0"
{fault}features = ["presence", "ephemeral", "rpc", "batch", "reauth"]
heartbeat_interval_ms = 500
heartbeat_grace_ms = 500
hello_timeout_ms = {HELLO_TIMEOUT_MS}
history_size = 20
history_ttl_ms = {HISTORY_TTL_MS}
send_queue_frames = 256
max_subscriptions = 16
shutdown_grace_ms = 200
sse = true

[auth]
hs256_secret = "{SECRET}"
reauth_after_ms = {REAUTH_AFTER_MS}
reauth_deadline_ms = 400

[[channels]]
pattern = "private.*"
subscribe = "private"
publish = "private"
"#
    )
}

/// The profile matching [`config_toml`] as TOML, without `url` or
/// `sse_url`: for a `courier serve --config` run from that configuration
/// (the multi-node tests write it to a file for `courier conform`).
pub fn profile_toml() -> String {
    format!(
        r#"features = ["presence", "ephemeral", "rpc", "batch", "reauth"]
hello_deadline_ms = {HELLO_TIMEOUT_MS}
[reauth]
after_ms = {REAUTH_AFTER_MS}
[rpc]
method = "echo"
payload = {{ n = 1 }}
[channels]
forbidden = "{FORBIDDEN_CHANNEL}"
[tokens]
source = "hs256"
secret = "{SECRET}"
forbidden_scope = "private"
"#
    )
}

/// The profile matching [`config_toml`] for a server at `url`.
pub fn profile(url: &str) -> Profile {
    let mut p = Profile::from_toml(&profile_toml()).expect("embedded profile is valid");
    p.url = Some(url.to_string());
    p.sse_url = url
        .strip_prefix("ws://")
        .and_then(|r| r.strip_suffix("/ws"))
        .map(|host| format!("http://{host}/sse"));
    p
}

/// Why the embedded server could not run.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// The configuration was refused (a fault name this server build does
    /// not know, e.g. without the `faults` feature).
    #[error("embedded server configuration: {0}")]
    Config(String),
    /// The server failed to start (port in use, ...).
    #[error("embedded server failed to start: {0}")]
    Start(String),
}

/// A running embedded server that can be restarted in place.
pub struct Embedded {
    config: ServerConfig,
    addr: SocketAddr,
    server: Mutex<Option<RunningServer>>,
}

impl Embedded {
    /// Starts a server from TOML (see [`config_toml`]).
    pub async fn start(toml: &str) -> Result<Arc<Embedded>, EmbeddedError> {
        let config =
            ServerConfig::from_toml_str(toml).map_err(|e| EmbeddedError::Config(e.to_string()))?;
        Embedded::start_config(config).await
    }

    /// Starts a server from `config` (listen on port 0 for a free one). The
    /// workspace's one in-process server starter: the suite's no-URL run
    /// and the docs' live transcripts (`courier-docs`) both start here.
    pub async fn start_config(config: ServerConfig) -> Result<Arc<Embedded>, EmbeddedError> {
        let server = courier_server::start(config.clone())
            .await
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let addr = server.local_addr();
        Ok(Arc::new(Embedded {
            config,
            addr,
            server: Mutex::new(Some(server)),
        }))
    }

    /// The server's name and version, as `welcome` reports it.
    pub fn server_name(&self) -> &str {
        &self.config.server_name
    }

    /// The WebSocket URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// A target for this server with the matching profile and restart control.
    pub fn target(self: &Arc<Self>) -> Target {
        let url = self.ws_url();
        let mut t = Target::new(url.clone(), profile(&url));
        t.control = Some(self.clone());
        t
    }

    /// Shuts the server down gracefully.
    pub async fn shutdown(&self) {
        if let Some(s) = self.server.lock().await.take() {
            s.shutdown().await;
        }
    }
}

impl ServerControl for Embedded {
    fn restart(&self) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + '_>> {
        Box::pin(async move {
            let mut guard = self.server.lock().await;
            if let Some(s) = guard.take() {
                s.shutdown().await;
            }
            let mut config = self.config.clone();
            config.listen = self.addr;
            // The port was just released; retry briefly in case the OS lags.
            let mut last = String::new();
            for _ in 0..20 {
                match courier_server::start(config.clone()).await {
                    Ok(s) => {
                        *guard = Some(s);
                        return Ok(());
                    }
                    Err(e) => last = e.to_string(),
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(format!("could not restart on {}: {last}", self.addr))
        })
    }
}
