//! Error types of the server library, split by concern: configuration,
//! start-up, authentication and the engine.

use std::path::PathBuf;

/// The configuration could not be read or makes no sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file could not be read: check the path and permissions.
    #[error("cannot read {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: String,
    },
    /// The TOML is malformed or names an unknown key: fix the file.
    #[error("invalid configuration: {0}")]
    Toml(String),
    /// A `COURIER_*` environment value does not parse: fix the variable.
    #[error("environment variable {name}: {error}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        error: String,
    },
    /// A value parses but cannot work: change `field`.
    #[error("invalid `{field}`: {why}")]
    Invalid {
        /// The offending key.
        field: &'static str,
        /// Why.
        why: String,
    },
}

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The configuration is invalid: fix it (see [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address could not be bound: pick another address or free the port.
    #[error("cannot bind {addr}: {error}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The engine could not be set up (an invalid `[engine] url`): fix the
    /// configuration. An unreachable Redis is not an error at start.
    #[error("cannot set up the engine: {0}")]
    Engine(EngineError),
    /// A key or certificate could not be loaded: check the file and its format.
    #[error("cannot load {what}: {error}")]
    Key {
        /// Which key or certificate.
        what: &'static str,
        /// What went wrong.
        error: String,
    },
}

/// Credentials were rejected. The variant picks the close code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Bad signature, wrong audience, malformed token or missing token
    /// (AUTH-FAILED): the client must not retry with the same credentials.
    #[error("invalid credentials: {0}")]
    Invalid(String),
    /// Valid but expired (AUTH-EXPIRED-AT-HELLO): the client refreshes them.
    #[error("credentials expired")]
    Expired,
}

impl AuthError {
    /// The short, stable text clients see (close reason, `error.message`):
    /// the detail of [`AuthError::Invalid`] comes from the JWT library and
    /// is logged instead, so it neither leaks nor changes between versions.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Invalid(_) => "invalid credentials",
            AuthError::Expired => "credentials expired",
        }
    }

    /// The close code for a `hello` failing with this error.
    pub fn close_code(&self) -> u16 {
        match self {
            AuthError::Invalid(_) => courier_protocol::close::AUTH_FAILED,
            AuthError::Expired => courier_protocol::close::TOKEN_EXPIRED,
        }
    }
}

/// An engine operation failed. Sessions stay open whatever the variant
/// (ERR-SESSION-CONTINUES): the request is answered with an `error` of
/// code `ERROR_CODE_INTERNAL`, and with `retry_after_ms` when
/// [`EngineError::retry_after_ms`] gives one (ERR-ENGINE-UNAVAILABLE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine's backend cannot be reached (connection refused or
    /// dropped, still loading, shutting down). A request sent just before
    /// the connection dropped may or may not have been applied: retry it
    /// with the same id after a moment (dedupe makes the retry safe).
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// The backend did not answer within the configured timeout; the
    /// request may or may not have been applied: retry it with the same id.
    #[error("engine timed out after {after_ms} ms ({op})")]
    TimedOut {
        /// The operation (`publish`, `recover`, ...).
        op: &'static str,
        /// The timeout that elapsed, in milliseconds.
        after_ms: u64,
    },
    /// The backend answered with an error (out of memory, a read-only
    /// replica, a failing script): nothing was applied. Retrying may
    /// succeed once an operator fixed the backend; the detail is logged.
    #[error("engine backend error: {0}")]
    Backend(String),
    /// The backend returned data this engine cannot read (another program
    /// writes under the key prefix, or a different layout): fix the
    /// deployment (`[engine] key_prefix`); retrying does not help.
    #[error("engine data unreadable: {0}")]
    Corrupt(String),
}

/// The hint given to clients when the engine is unreachable: about the time
/// a dropped Redis connection takes to be re-established, so a retry is
/// likely to land on a working connection without hammering a dead one.
const RETRY_AFTER_UNAVAILABLE_MS: u64 = 1000;

impl EngineError {
    /// ERR-ENGINE-UNAVAILABLE: how long a client should wait before
    /// retrying a request that failed with this error, when a retry is
    /// expected to succeed by itself (`None` when it needs an operator).
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            EngineError::Unavailable(_) | EngineError::TimedOut { .. } => {
                Some(RETRY_AFTER_UNAVAILABLE_MS)
            }
            EngineError::Backend(_) | EngineError::Corrupt(_) => None,
        }
    }
}
