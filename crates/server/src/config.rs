//! Runtime configuration of the server: a TOML file plus `COURIER_*`
//! environment overrides. Every field states its default and why; the
//! defaults are the spec's reference values (docs/spec/limits.md §9).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// Server configuration. `ServerConfig::default()` is a safe local setup:
/// loopback only, spec-default limits, anonymous sessions, every channel open.
///
/// # Examples
///
/// ```
/// let config = courier_server::ServerConfig::from_toml_str(r#"
///     listen = "127.0.0.1:0"
///     heartbeat_interval_ms = 10000
///     [auth]
///     hs256_secret = "dev-secret"
///     [[channels]]
///     pattern = "private.*"
///     subscribe = "private:read"
/// "#).unwrap();
/// assert_eq!(config.heartbeat_interval_ms, 10000);
/// assert_eq!(config.channels.len(), 1);
/// ```
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to bind. Default `127.0.0.1:8080`: loopback, so a server
    /// started without configuration is never reachable from the network.
    /// Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Subprotocols served, any of `courier.v{1,2}.{json,msgpack,proto}`.
    /// Default: all six, so every client version and encoding connects.
    pub subprotocols: Vec<String>,
    /// Optional features offered (`presence`, `ephemeral`, `rpc`, `batch`,
    /// `reauth`). Default: all five; a session gets those its `hello` asks for.
    pub features: Vec<String>,
    /// `welcome.server`. Default `courier/<crate version>`, for client logs.
    pub server_name: String,
    /// Interval between server pings (HB-SERVER-PING). Default 25 000 ms:
    /// under the 30–60 s idle timeouts of common proxies and load balancers.
    pub heartbeat_interval_ms: u64,
    /// Extra wait past the interval before a silent session is closed with
    /// 4200 (HB-DEADLINE). Default 10 000 ms: absorbs a slow mobile round trip.
    pub heartbeat_grace_ms: u64,
    /// First-message deadline (HELLO-DEADLINE, close 4005). Default 5 000 ms:
    /// long enough for a slow TLS client, short enough to shed idle sockets.
    pub hello_timeout_ms: u64,
    /// How long publish ids are remembered (DEDUP-WINDOW). Default 120 000 ms:
    /// covers a client's reconnect backoff (capped at 30 s) several times over.
    pub dedupe_window_ms: u64,
    /// Most publish ids remembered per channel (DEDUP-MAX), advertised in
    /// `welcome.dedupe_max_per_channel` (v2). A channel that numbers more
    /// within `dedupe_window_ms` forgets its oldest ids early, so its
    /// effective window shrinks (counted in
    /// `courier_dedupe_evicted_early_total`). Default 100 000: the whole
    /// 120 s window up to 833 publishes/s on one channel, 2 s even at
    /// 50 000/s, and at most ~6.5 MB per channel (24-byte ring entries and
    /// 25-byte index slots, 131 072 of each at the maximum; `courier_dedupe_bytes`
    /// reports it live) instead of memory growing with the publish rate.
    /// At least 1.
    pub dedupe_max_per_channel: u32,
    /// Messages kept per channel for resume (LIMIT-HISTORY). Default 300:
    /// a few minutes of a busy chat channel; 0 keeps no history.
    pub history_size: u32,
    /// How long a message stays resumable. Default 300 000 ms (5 min):
    /// covers network switches and short sleeps of mobile clients.
    pub history_ttl_ms: u64,
    /// Largest inbound frame in bytes (CLOSE-OVERSIZE, 1009). Default 65 536:
    /// big enough for chat and RPC payloads, small enough to bound memory.
    pub max_message_bytes: u32,
    /// Sustained inbound envelopes per second (LIMIT-RATE, 4101). Default 100.
    pub max_messages_per_second: u32,
    /// Token-bucket size for inbound bursts. Default 200: a reconnecting
    /// client resubscribes and flushes its offline queue without tripping it.
    pub max_burst: u32,
    /// Outbound frames queued per connection before it is closed as a slow
    /// consumer (LIMIT-SLOW-CONSUMER, 4100). Default 1024: bounds memory per
    /// connection while absorbing bursts.
    pub send_queue_frames: u32,
    /// Subscriptions per session (LIMIT-SUBSCRIPTIONS). Default 128.
    pub max_subscriptions: u32,
    /// Largest batch a v2 peer may send or receive (BATCH-MAX). Default 64.
    pub max_batch: u32,
    /// Coalesce queued deliveries into `batch` frames for v2 sessions that
    /// enabled `batch`. Default true: fewer frames under load, no change at rest.
    pub batch_deliveries: bool,
    /// Concurrent RPC calls per session; more get `ERROR_CODE_INTERNAL` with
    /// a retry hint. Default 64: bounds the tasks one client can start.
    pub max_rpc_in_flight: u32,
    /// Register the built-in RPC methods `echo` and `sleep` (see
    /// docs/server.md). Default true, so clients and the conformance suite
    /// can exercise RPC against a stock server.
    pub rpc_builtins: bool,
    /// Total WebSocket and SSE sessions; beyond it new sessions are closed
    /// with 4102. Default 100 000: protects the process, not a tuning knob.
    pub max_connections: u32,
    /// TCP connections per client IP; a WebSocket beyond it is closed with
    /// 4102. Default 4096: generous for NAT and load tests, still stops one
    /// host from exhausting file descriptors.
    pub max_connections_per_ip: u32,
    /// Allowed `Origin` values on WebSocket and SSE requests (exact match,
    /// `*` allows all). Empty (default) accepts any origin, as non-browser
    /// clients send none; set it in production to stop cross-site WebSocket
    /// hijacking. A refused origin gets HTTP 403.
    pub allowed_origins: Vec<String>,
    /// Bytes one WebSocket read takes from the socket at most, 256 to
    /// 16 384. Default 4 096. The reads go to a buffer on the stack of each
    /// read, so the setting costs no memory per connection: a connection
    /// holds read storage only for a frame that has not fully arrived
    /// (docs/benchmarks.md). Larger reads mean fewer system calls for
    /// clients that send many or large frames.
    pub ws_read_buffer_bytes: u32,
    /// How long shutdown waits for clients to drain after the 1001 close
    /// before dropping them. Default 5 000 ms.
    pub shutdown_grace_ms: u64,
    /// How long a connection closed as a slow consumer (4100) may take to
    /// accept its `disconnect` and close frame before it is dropped: its
    /// socket is full, so they wait behind the bytes in transit. Default
    /// 5 000 ms: a client that resumes reading within it learns why it was
    /// closed (docs/spec/limits.md).
    pub slow_consumer_grace_ms: u64,
    /// How long `POST /publish` waits for its whole body after the request
    /// head (408 when it does not arrive). Default 10 000 ms: like the head's
    /// own 10 s limit, it stops a client from holding a request open forever.
    pub http_body_timeout_ms: u64,
    /// Serve `GET /sse` and `POST /publish`. Default true.
    pub sse: bool,
    /// Authentication.
    pub auth: AuthConfig,
    /// Per-channel rules, first match wins. Default none: every channel open.
    pub channels: Vec<ChannelRule>,
    /// TLS (wss:// and https://); absent (default) serves plain TCP.
    pub tls: Option<TlsConfig>,
    /// Where channel state lives (`[engine]`): in this process (default) or
    /// in Redis, shared by several nodes (docs/deploy.md).
    pub engine: EngineConfig,
    /// Fault injection for the conformance suite's mutants (feature `faults`).
    #[cfg(feature = "faults")]
    #[serde(
        with = "crate::faults::opt_serde",
        skip_serializing_if = "Option::is_none"
    )]
    pub fault: Option<crate::faults::Fault>,
}

/// Authentication settings (AUTH-*).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HS256 shared secret. Default none.
    pub hs256_secret: Option<String>,
    /// RS256 public key, PEM text. Default none.
    pub rs256_public_key_pem: Option<String>,
    /// RS256 public key, path of a PEM file. Default none.
    pub rs256_public_key_file: Option<PathBuf>,
    /// Required `aud` claim. Default none: the audience is not checked.
    pub audience: Option<String>,
    /// Required `iss` claim. Default none.
    pub issuer: Option<String>,
    /// Allow sessions with an empty token. Default: true only when no key
    /// is configured (a development server), false otherwise.
    pub allow_anonymous: Option<bool>,
    /// Clock-skew allowance for `exp`/`nbf`, in seconds. Default 0: expiry
    /// is enforced to the second; raise it if issuers' clocks drift.
    pub leeway_secs: u64,
    /// Send `reauth_request` (v2, feature `reauth`) this long after each
    /// successful authentication. Default none: never.
    pub reauth_after_ms: Option<u64>,
    /// `reauth_request.deadline_ms`; no refresh in time closes with 4301.
    /// Default 30 000 ms: time for an app to fetch a token.
    pub reauth_deadline_ms: u64,
}

/// An authorization and history rule for channels matching `pattern`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRule {
    /// Glob over channel names; `*` matches any run of characters and
    /// `{sub}` the session's user (`inbox.{sub}`).
    pub pattern: String,
    /// Scope needed to subscribe: absent = anyone, `""` = any authenticated
    /// session, otherwise a scope of the token's `scope` claim.
    pub subscribe: Option<String>,
    /// Scope needed to publish (and send ephemerals); same forms.
    pub publish: Option<String>,
    /// History size for these channels, overriding `history_size`.
    pub history_size: Option<u32>,
    /// History TTL for these channels, overriding `history_ttl_ms`.
    pub history_ttl_ms: Option<u64>,
}

/// The engine holding channel state: numbering, history, dedupe, presence
/// and the stream of messages between nodes (`[engine]`, docs/deploy.md).
///
/// # Examples
///
/// ```
/// let config = courier_server::ServerConfig::from_toml_str(r#"
///     [engine]
///     kind = "redis"
///     url = "redis://10.0.0.5:6379/0"
///     key_prefix = "chat-prod"
/// "#).unwrap();
/// assert_eq!(config.engine.kind, courier_server::EngineKind::Redis);
/// ```
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// `memory` (default): state in this process, for a single node, lost
    /// on restart (clients' resumes then fail with
    /// `RECOVERY_REASON_EPOCH_CHANGED`). `redis`: state in Redis, shared by
    /// every node pointing at the same `url` and `key_prefix`, kept across
    /// restarts of the nodes.
    pub kind: EngineKind,
    /// Redis URL, `redis://[[user]:password@]host[:port][/db]`, or
    /// `rediss://` for TLS. Default `redis://127.0.0.1:6379/0`: a Redis on
    /// the same machine. Redis 6 or later (RESP3); Valkey and other RESP3
    /// servers work alike.
    pub url: String,
    /// With a `rediss://` URL: PEM file of the CA certificates to trust
    /// instead of the public web roots (a Redis with a private CA).
    /// Default none: the public roots, as for a managed Redis.
    pub tls_ca_file: Option<PathBuf>,
    /// Prefix of every Redis key and pub/sub channel. Default `courier`:
    /// several deployments can share one Redis with different prefixes.
    pub key_prefix: String,
    /// How long connecting to Redis may take. Default 2 000 ms: a healthy
    /// Redis on the same network answers in well under a millisecond, so
    /// anything longer is an outage.
    pub connect_timeout_ms: u64,
    /// How long one Redis operation (a publish, a resume, a presence
    /// query) may take before the request fails with the retryable error of
    /// ERR-ENGINE-UNAVAILABLE. Default 2 000 ms: far above a normal round
    /// trip, short enough that a client learns of an outage quickly.
    pub command_timeout_ms: u64,
    /// Multiplexed connections for commands (pub/sub has one more of its
    /// own). Default 2: each connection pipelines every concurrent command,
    /// so one is enough for throughput; a second keeps a large reply (a
    /// long replay) from delaying small ones.
    pub pool_size: u32,
    /// How long a presence member stays listed after its node stopped
    /// refreshing it (a node killed without leaving). Each node refreshes
    /// its members every third of this. Default 15 000 ms: a dead node's
    /// members disappear within seconds, while a node stalled by a long GC
    /// or a Redis failover does not flap its members.
    pub presence_ttl_ms: u64,
}

/// Which engine holds channel state (`[engine] kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// In this process (the default; one node).
    #[default]
    Memory,
    /// In Redis, shared by the nodes of a deployment.
    Redis,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Memory,
            url: "redis://127.0.0.1:6379/0".to_string(),
            tls_ca_file: None,
            key_prefix: "courier".to_string(),
            connect_timeout_ms: 2_000,
            command_timeout_ms: 2_000,
            pool_size: 2,
            presence_ttl_ms: 15_000,
        }
    }
}

/// TLS certificate and key (PEM files).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert_file: PathBuf,
    /// Private key (PKCS#8, PKCS#1 or SEC1), PEM.
    pub key_file: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            subprotocols: courier_protocol::Subprotocol::ALL
                .iter()
                .map(|p| p.name().to_string())
                .collect(),
            features: crate::features::default_names(),
            server_name: concat!("courier/", env!("CARGO_PKG_VERSION")).to_string(),
            heartbeat_interval_ms: 25_000,
            heartbeat_grace_ms: 10_000,
            hello_timeout_ms: 5_000,
            dedupe_window_ms: 120_000,
            dedupe_max_per_channel: 100_000,
            history_size: 300,
            history_ttl_ms: 300_000,
            max_message_bytes: 65_536,
            max_messages_per_second: 100,
            max_burst: 200,
            send_queue_frames: 1024,
            max_subscriptions: 128,
            max_batch: 64,
            batch_deliveries: true,
            max_rpc_in_flight: 64,
            rpc_builtins: true,
            max_connections: 100_000,
            max_connections_per_ip: 4096,
            allowed_origins: Vec::new(),
            ws_read_buffer_bytes: 4096,
            shutdown_grace_ms: 5_000,
            http_body_timeout_ms: 10_000,
            slow_consumer_grace_ms: 5_000,
            sse: true,
            auth: AuthConfig {
                reauth_deadline_ms: 30_000,
                ..AuthConfig::default()
            },
            channels: Vec::new(),
            tls: None,
            engine: EngineConfig::default(),
            #[cfg(feature = "faults")]
            fault: None,
        }
    }
}

/// How an environment value is read: verbatim, or as a TOML value.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Toml,
}

/// Overridable keys: `COURIER_<KEY>` for top-level keys,
/// `COURIER_AUTH_<KEY>`, `COURIER_TLS_<KEY>` and `COURIER_ENGINE_<KEY>`
/// for the sections.
const TOP_KEYS: &[(&str, Kind)] = &[
    ("listen", Kind::Str),
    ("subprotocols", Kind::Toml),
    ("features", Kind::Toml),
    ("server_name", Kind::Str),
    ("heartbeat_interval_ms", Kind::Toml),
    ("heartbeat_grace_ms", Kind::Toml),
    ("hello_timeout_ms", Kind::Toml),
    ("dedupe_window_ms", Kind::Toml),
    ("dedupe_max_per_channel", Kind::Toml),
    ("history_size", Kind::Toml),
    ("history_ttl_ms", Kind::Toml),
    ("http_body_timeout_ms", Kind::Toml),
    ("slow_consumer_grace_ms", Kind::Toml),
    ("max_message_bytes", Kind::Toml),
    ("max_messages_per_second", Kind::Toml),
    ("max_burst", Kind::Toml),
    ("send_queue_frames", Kind::Toml),
    ("max_subscriptions", Kind::Toml),
    ("max_batch", Kind::Toml),
    ("batch_deliveries", Kind::Toml),
    ("max_rpc_in_flight", Kind::Toml),
    ("rpc_builtins", Kind::Toml),
    ("max_connections", Kind::Toml),
    ("max_connections_per_ip", Kind::Toml),
    ("allowed_origins", Kind::Toml),
    ("ws_read_buffer_bytes", Kind::Toml),
    ("shutdown_grace_ms", Kind::Toml),
    ("sse", Kind::Toml),
    #[cfg(feature = "faults")]
    ("fault", Kind::Str),
];
const AUTH_KEYS: &[(&str, Kind)] = &[
    ("hs256_secret", Kind::Str),
    ("rs256_public_key_pem", Kind::Str),
    ("rs256_public_key_file", Kind::Str),
    ("audience", Kind::Str),
    ("issuer", Kind::Str),
    ("allow_anonymous", Kind::Toml),
    ("leeway_secs", Kind::Toml),
    ("reauth_after_ms", Kind::Toml),
    ("reauth_deadline_ms", Kind::Toml),
];
const TLS_KEYS: &[(&str, Kind)] = &[("cert_file", Kind::Str), ("key_file", Kind::Str)];
const ENGINE_KEYS: &[(&str, Kind)] = &[
    ("kind", Kind::Str),
    ("url", Kind::Str),
    ("tls_ca_file", Kind::Str),
    ("key_prefix", Kind::Str),
    ("connect_timeout_ms", Kind::Toml),
    ("command_timeout_ms", Kind::Toml),
    ("pool_size", Kind::Toml),
    ("presence_ttl_ms", Kind::Toml),
];

impl ServerConfig {
    /// Parses a TOML document; missing keys take their defaults.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        Self::from_table(toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?)
    }

    /// Reads `file` (when given) and applies `COURIER_*` overrides from
    /// `env` (pass `std::env::vars()`); unknown `COURIER_*` names are ignored.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                    path: path.to_path_buf(),
                    error: e.to_string(),
                })?;
                toml::from_str::<toml::Table>(&text)
                    .map_err(|e| ConfigError::Toml(e.to_string()))?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("COURIER_") else {
                continue;
            };
            let key = rest.to_ascii_lowercase();
            let (section, keys, key) = if let Some(k) = key.strip_prefix("auth_") {
                (Some("auth"), AUTH_KEYS, k.to_string())
            } else if let Some(k) = key.strip_prefix("tls_") {
                (Some("tls"), TLS_KEYS, k.to_string())
            } else if let Some(k) = key.strip_prefix("engine_") {
                (Some("engine"), ENGINE_KEYS, k.to_string())
            } else {
                (None, TOP_KEYS, key)
            };
            let Some(&(_, kind)) = keys.iter().find(|(k, _)| *k == key) else {
                continue;
            };
            let value = env_value(&name, &value, kind)?;
            let target = match section {
                None => &mut table,
                Some(s) => table
                    .entry(s)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| ConfigError::Toml(format!("`{s}` must be a table")))?,
            };
            target.insert(key, value);
        }
        Self::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<Self, ConfigError> {
        let config: ServerConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Toml(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, why: &str| {
            Err(ConfigError::Invalid {
                field,
                why: why.to_string(),
            })
        };
        for p in &self.subprotocols {
            if p.parse::<courier_protocol::Subprotocol>().is_err() {
                return invalid(
                    "subprotocols",
                    &format!("`{p}` is not a Courier subprotocol"),
                );
            }
        }
        if self.subprotocols.is_empty() {
            return invalid("subprotocols", "at least one subprotocol is needed");
        }
        if let Err(f) =
            crate::features::Features::from_names(self.features.iter().map(String::as_str))
        {
            return invalid("features", &format!("unknown feature `{f}`"));
        }
        if self.heartbeat_interval_ms == 0 {
            return invalid(
                "heartbeat_interval_ms",
                "must be greater than 0 (WELCOME-FIELDS)",
            );
        }
        if self.max_message_bytes < 256 {
            return invalid("max_message_bytes", "must be at least 256");
        }
        if self.send_queue_frames == 0 || self.max_burst == 0 || self.max_messages_per_second == 0 {
            return invalid(
                "limits",
                "send_queue_frames, max_burst and max_messages_per_second must be > 0 (LIMIT-ALL-ENFORCED)",
            );
        }
        if self.dedupe_max_per_channel == 0 {
            return invalid(
                "dedupe_max_per_channel",
                "must be at least 1 (DEDUP-MAX: the record is always bounded)",
            );
        }
        if self.max_batch == 0 {
            return invalid("max_batch", "must be greater than 0");
        }
        if self.max_subscriptions == 0 {
            return invalid(
                "max_subscriptions",
                "must be greater than 0 (LIMIT-ALL-ENFORCED)",
            );
        }
        if !(256..=16_384).contains(&self.ws_read_buffer_bytes) {
            return invalid("ws_read_buffer_bytes", "must be from 256 to 16384");
        }
        self.engine.validate()
    }
}

impl EngineConfig {
    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &'static str, why: &str| {
            Err(ConfigError::Invalid {
                field,
                why: why.to_string(),
            })
        };
        if self.kind == EngineKind::Redis
            && !["redis://", "rediss://", "redis+unix://"]
                .iter()
                .any(|scheme| self.url.starts_with(scheme))
        {
            return invalid(
                "engine.url",
                "must be a redis://, rediss:// or redis+unix:// URL",
            );
        }
        // Hash tags and key suffixes stay readable and unambiguous.
        if self.key_prefix.is_empty()
            || self
                .key_prefix
                .chars()
                .any(|c| matches!(c, '{' | '}') || c.is_whitespace() || c.is_control())
        {
            return invalid(
                "engine.key_prefix",
                "must be non-empty, without braces, spaces or control characters",
            );
        }
        if self.connect_timeout_ms == 0 || self.command_timeout_ms == 0 {
            return invalid(
                "engine.command_timeout_ms",
                "connect_timeout_ms and command_timeout_ms must be greater than 0",
            );
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            return invalid("engine.pool_size", "must be between 1 and 64");
        }
        if self.presence_ttl_ms < 300 {
            return invalid("engine.presence_ttl_ms", "must be at least 300");
        }
        Ok(())
    }
}

fn env_value(name: &str, value: &str, kind: Kind) -> Result<toml::Value, ConfigError> {
    match kind {
        Kind::Str => Ok(toml::Value::String(value.to_string())),
        Kind::Toml => {
            let doc: toml::Table =
                toml::from_str(&format!("v = {value}")).map_err(|e| ConfigError::Env {
                    name: name.to_string(),
                    error: e.to_string(),
                })?;
            Ok(doc
                .get("v")
                .cloned()
                .unwrap_or(toml::Value::String(value.to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn environment_overrides_the_file() {
        let path = std::env::temp_dir().join(format!("courier-config-{}.toml", std::process::id()));
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nhistory_size = 10\n[auth]\naudience = \"file\"\n",
        )
        .unwrap();
        let c = ServerConfig::load(
            Some(&path),
            env(&[
                ("COURIER_LISTEN", "127.0.0.1:9100"),
                ("COURIER_AUTH_HS256_SECRET", "12345"),
                ("COURIER_AUTH_ALLOW_ANONYMOUS", "true"),
                ("COURIER_ALLOWED_ORIGINS", "[\"https://a.example\"]"),
                ("COURIER_HEARTBEAT_INTERVAL_MS", "1000"),
                ("COURIER_TLS_CERT_FILE", "c.pem"),
                ("COURIER_TLS_KEY_FILE", "k.pem"),
                ("COURIER_LOG", "debug"),
                ("COURIER_ENGINE_KIND", "redis"),
                ("COURIER_ENGINE_POOL_SIZE", "4"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        std::fs::remove_file(&path).ok();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(c.history_size, 10);
        assert_eq!(c.auth.audience.as_deref(), Some("file"));
        assert_eq!(
            c.auth.hs256_secret.as_deref(),
            Some("12345"),
            "string keys are verbatim"
        );
        assert_eq!(c.auth.allow_anonymous, Some(true));
        assert_eq!(c.allowed_origins, vec!["https://a.example".to_string()]);
        assert_eq!(c.heartbeat_interval_ms, 1000);
        assert_eq!(c.tls.unwrap().key_file, PathBuf::from("k.pem"));
        assert_eq!(c.engine.kind, EngineKind::Redis);
        assert_eq!(c.engine.pool_size, 4);
        assert_eq!(c.engine.key_prefix, "courier", "section defaults kept");
        assert_eq!(
            c.dedupe_window_ms, 120_000,
            "untouched keys keep their defaults"
        );
    }

    #[test]
    fn invalid_values_are_typed_errors() {
        assert!(matches!(
            ServerConfig::from_toml_str("no_such_key = 1"),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            ServerConfig::from_toml_str("subprotocols = [\"courier.v3.json\"]"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml_str("heartbeat_interval_ms = 0"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            ServerConfig::load(None, env(&[("COURIER_MAX_BURST", "lots")])),
            Err(ConfigError::Env { .. })
        ));
        assert!(matches!(
            ServerConfig::load(Some(Path::new("/nonexistent/courier.toml")), env(&[])),
            Err(ConfigError::Read { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml_str("[engine]\nkind = \"redis\"\nurl = \"http://x\""),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            ServerConfig::from_toml_str("[engine]\nkind = \"postgres\""),
            Err(ConfigError::Toml(_))
        ));
        assert!(matches!(
            ServerConfig::from_toml_str("[engine]\nkey_prefix = \"a{b}\""),
            Err(ConfigError::Invalid { .. })
        ));
        let defaults = ServerConfig::from_toml_str("").unwrap();
        assert_eq!(defaults.engine.kind, EngineKind::Memory);
        assert_eq!(defaults.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(
            (
                defaults.heartbeat_interval_ms,
                defaults.max_message_bytes,
                defaults.max_batch
            ),
            (25_000, 65_536, 64)
        );
    }
}
