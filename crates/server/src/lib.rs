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

mod auth;
pub mod broker;
mod config;
mod error;
#[cfg_attr(not(feature = "faults"), allow(dead_code))]
mod faults;
mod frame;
mod http;
mod metrics;
mod outbox;
pub mod rpc;
mod server;
mod session;
mod sse;
mod tls;
mod ws;

pub use auth::{Identity, Operation};
pub use config::{AuthConfig, ChannelRule, ServerConfig, TlsConfig};
pub use error::{AuthError, BrokerError, ConfigError, ServerError};
#[cfg(feature = "faults")]
pub use faults::{Fault, UnknownFault};
pub use frame::SharedFrame;
pub use server::{start, RunningServer, ServerBuilder};
pub use session::FEATURES;

/// Milliseconds since the Unix epoch (message `ts`, token expiry).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
