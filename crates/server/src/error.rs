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

/// An engine operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The engine's backend could not be reached or failed; nothing was
    /// changed, so the request may be retried with the same id: the session
    /// replies `ERROR_CODE_INTERNAL`.
    #[error("engine unavailable: {0}")]
    Unavailable(String),
}
