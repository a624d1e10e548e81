//! Courier Rust client: a typed async API over one logical session that
//! survives reconnects.
//!
//! The client offers subprotocols (VER-HIGHEST-COMMON picks one),
//! authenticates with credentials from a [`TokenProvider`] and refreshes
//! them, reconnects with exponential backoff and full jitter as each close
//! code's range requires, detects dead links with the heartbeat deadline,
//! resumes every subscription from its last `(epoch, seq)`, detects gaps,
//! drops duplicates, and queues publishes while disconnected, resending
//! them with their original dedupe ids. See `docs/client.md`.
//!
//! # Examples
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use courier_client::{ClientConfig, SubscriptionEvent};
//! use futures_util::StreamExt;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Chat { text: String }
//!
//! let client = ClientConfig::new("ws://127.0.0.1:8080/ws").token("eyJhbGciOi...").connect().await?;
//! let mut room = client.subscribe("chat").await?.typed::<Chat>();
//! client.publish("chat", &Chat { text: "hi".into() }).await?;
//! if let Some(Ok((message, chat))) = room.next().await {
//!     println!("#{} {}", message.seq, chat.text);
//! }
//! client.close().await;
//! # Ok(()) }
//! ```

/// Whether the named fault of [`faults`] is on: always `false` without the
/// `faults` feature, so a normal build has no fault code.
macro_rules! fault {
    ($name:ident) => {{
        #[cfg(feature = "faults")]
        {
            $crate::faults::active($crate::faults::Fault::$name)
        }
        #[cfg(not(feature = "faults"))]
        {
            false
        }
    }};
}

mod client;
mod close_codes;
mod config;
mod connect;
mod driver;
mod error;
mod event;
#[cfg(feature = "faults")]
pub mod faults;
pub mod handshake;
pub mod raw;
pub mod reconnect;
mod session;
pub mod sse;
mod tls;
pub mod tracker;

pub use client::{Client, Events, Subscription, Typed};
pub use config::{ClientConfig, StaticToken, TokenError, TokenFuture, TokenProvider, TokenReason};
pub use courier_protocol::v2::{ErrorCode, RecoveryReason};
pub use courier_protocol::Subprotocol;
pub use error::{ClientError, PublishError, RequestError, SubscribeError};
pub use event::{
    ConnectionEvent, Message, Position, PresenceMember, PublishAck, Recovery, SubscriptionEvent,
};
/// The rustls this crate uses, for [`ClientConfig::tls`] and
/// [`ClientConfig::root_certificates`] (`rustls::pki_types::CertificateDer`).
pub use rustls;

// The examples in docs/client.md compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/client.md")]
struct ClientGuideExamples;
