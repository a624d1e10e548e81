//! The Redis engine's key layout and connections.
//!
//! # Key layout (Redis Cluster ready)
//!
//! Every key of channel `C` under prefix `P` starts with the hash tag
//! `{P:C}`, so all of them live in one hash slot and one script may touch
//! them all on a Redis Cluster. Suffixes contain no `}`, so two channels
//! never share a key even when a name contains braces.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P:C}:meta` | hash | `e` epoch, `s` last seq |
//! | `{P:C}:history` | stream | entry `<seq>-0`: `i` id, `t` ts, `p` publisher, `d` payload |
//! | `{P:C}:dedupe` | hash | dedupe key → `"<epoch> <seq> <numbered at, ms>"`; `#` counts insertions |
//! | `{P:C}:dedupe-order` | zset | dedupe key → insertion number (oldest first) |
//! | `{P:C}:members` | hash | session id → join order, user, info |
//! | `{P:C}:members-exp` | zset | session id → expires at (ms) |
//! | `{P:C}:members-meta` | hash | `n` join counter, `v` membership version |
//!
//! The pub/sub topic of the channel is `{P:C}` itself.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{IntoConnectionInfo, ProtocolVersion, PushInfo};
use tokio::sync::mpsc::UnboundedSender;

use crate::config::EngineConfig;
use crate::engine::EngineError;

/// The keys and topic of one channel.
pub(super) struct Keys {
    tag: String,
}

impl Keys {
    pub(super) fn new(prefix: &str, channel: &str) -> Self {
        Keys {
            tag: format!("{{{prefix}:{channel}}}"),
        }
    }

    /// The pub/sub topic (`{P:C}`).
    pub(super) fn topic(&self) -> &str {
        &self.tag
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.tag)
    }

    pub(super) fn meta(&self) -> String {
        self.key("meta")
    }

    pub(super) fn history(&self) -> String {
        self.key("history")
    }

    pub(super) fn dedupe(&self) -> String {
        self.key("dedupe")
    }

    pub(super) fn dedupe_order(&self) -> String {
        self.key("dedupe-order")
    }

    /// The three presence keys, in the scripts' KEYS order.
    pub(super) fn presence(&self) -> [String; 3] {
        [
            self.key("members"),
            self.key("members-exp"),
            self.key("members-meta"),
        ]
    }
}

/// The channel named by pub/sub topic `topic` under `prefix`.
pub(super) fn channel_of_topic<'a>(prefix: &str, topic: &'a str) -> Option<&'a str> {
    topic
        .strip_prefix('{')?
        .strip_prefix(prefix)?
        .strip_prefix(':')?
        .strip_suffix('}')
}

/// A client for `config.url` speaking RESP3 (pub/sub on a connection that
/// also answers commands, and disconnect notices).
fn client(config: &EngineConfig) -> Result<redis::Client, EngineError> {
    let info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|e| EngineError::Backend(format!("invalid engine url: {e}")))?;
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(ProtocolVersion::RESP3);
    // TCP_NODELAY, as Redis sets on its side: commands of concurrent
    // requests share a connection, and Nagle would hold a small command
    // back until the previous one is acknowledged.
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    let info = info.set_redis_settings(settings).set_tcp_settings(tcp);
    let client = match &config.tls_ca_file {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                EngineError::Backend(format!("cannot read tls_ca_file {}: {e}", path.display()))
            })?;
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem),
            };
            redis::Client::build_with_tls(info, certs)
        }
        None => redis::Client::open(info),
    };
    client.map_err(|e| EngineError::Backend(format!("invalid engine url: {e}")))
}

/// Reconnection: a few quick attempts, then the next command (or the
/// listener's keepalive) starts over. Commands never wait for more than
/// `command_timeout_ms` anyway (see `Inner::run`).
fn manager_config(config: &EngineConfig) -> ConnectionManagerConfig {
    let timeout = Duration::from_millis(config.command_timeout_ms);
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(config.connect_timeout_ms)))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

/// `pool_size` lazy command connections (they connect on first use, so a
/// node starts while Redis is still down).
pub(super) fn command_pool(config: &EngineConfig) -> Result<Vec<ConnectionManager>, EngineError> {
    let client = client(config)?;
    (0..config.pool_size.max(1))
        .map(|_| {
            ConnectionManager::new_lazy_with_config(client.clone(), manager_config(config))
                .map_err(|e| EngineError::Backend(e.to_string()))
        })
        .collect()
}

/// The pub/sub connection: its pushes (messages, disconnects) go to
/// `pushes`; it resubscribes to every topic after reconnecting.
pub(super) fn pubsub(
    config: &EngineConfig,
    pushes: UnboundedSender<PushInfo>,
) -> Result<ConnectionManager, EngineError> {
    let settings = manager_config(config)
        .set_push_sender(pushes)
        .set_automatic_resubscription();
    ConnectionManager::new_lazy_with_config(client(config)?, settings)
        .map_err(|e| EngineError::Backend(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_a_channel_share_one_hash_tag() {
        let k = Keys::new("courier", "chat.room-1");
        assert_eq!(k.meta(), "{courier:chat.room-1}:meta");
        assert_eq!(k.history(), "{courier:chat.room-1}:history");
        assert_eq!(k.presence()[2], "{courier:chat.room-1}:members-meta");
        assert_eq!(k.topic(), "{courier:chat.room-1}");
        assert_eq!(
            channel_of_topic("courier", "{courier:a}b}"),
            Some("a}b"),
            "braces in names survive the round trip"
        );
        assert_eq!(channel_of_topic("courier", "{other:a}"), None);
    }
}
