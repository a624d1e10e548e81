//! Courier reference server: WebSocket (tokio-tungstenite over hyper 1,
//! optional rustls TLS) and SSE transports, channels with gap-free
//! per-channel numbering, history and resume, publisher dedupe, presence,
//! ephemeral messages, RPC, heartbeats, limits, JWT auth and per-channel
//! authorization, Prometheus metrics and graceful shutdown.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() -> Result<(), courier_server::ServerError> {
//! let mut config = courier_server::ServerConfig::default();
//! config.listen = "127.0.0.1:0".parse().unwrap();
//! let server = courier_server::start(config).await?;
//! println!("clients connect to {}", server.ws_url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! See `docs/server.md` for every configuration option and endpoint.

//! # Layers
//!
//! transport (`transport`: HTTP, WebSocket, SSE) → session core (`session`)
//! → hub (`hub`: this node's subscriptions and delivery) → engine
//! (`engine`: numbering, history, dedupe, presence, shared by the nodes of
//! a deployment). Each layer imports only the ones below it and the leaf
//! modules (`config`, `error`, `features`, `frame`, `metrics`, `pattern`,
//! `auth`, `rpc`); see ARCHITECTURE.md.

mod auth;
mod config;
pub mod engine;
mod error;
#[cfg(feature = "faults")]
mod faults;
mod features;
mod frame;
#[doc(hidden)]
pub mod fuzz;
mod hub;
mod metrics;
mod pattern;
pub mod rpc;
mod server;
mod session;
mod transport;

pub use auth::{Identity, Operation};
pub use config::{AuthConfig, ChannelRule, EngineConfig, EngineKind, ServerConfig, TlsConfig};
pub use error::{AuthError, ConfigError, EngineError, ServerError};
#[cfg(feature = "faults")]
pub use faults::{Fault, UnknownFault};
pub use features::{Feature, Features, FEATURES};
pub use frame::{SharedFrame, Wire};
pub use server::{start, RunningServer, ServerBuilder};

/// Milliseconds since the Unix epoch (message `ts`, token expiry).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Base-36 digits of `n` (compact ids and epochs).
pub(crate) fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}
