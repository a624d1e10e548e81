//! The profile: what the suite needs to know about a server under test that
//! the server does not advertise itself (how to get tokens, which channels
//! are open or forbidden, which versions, encodings and optional features it
//! supports, how to restart it). Limits, heartbeat timing and the dedupe
//! window are read from each session's `welcome`, never configured here.

use std::path::Path;

use courier_protocol::{Encoding, Subprotocol, Version};
use serde::Deserialize;

/// A profile, usually read from a TOML file.
///
/// # Examples
///
/// ```
/// let profile = courier_conformance::Profile::from_toml(r#"
///     url = "ws://127.0.0.1:8080/ws"
///     versions = [2, 1]
///     encodings = ["json", "msgpack"]
///     features = ["presence"]
///     [channels]
///     open_prefix = "test."
///     forbidden = "private.conformance"
///     [tokens]
///     source = "hs256"
///     secret = "dev-secret"
///     forbidden_scope = "private"
/// "#).unwrap();
/// assert_eq!(profile.subprotocols().len(), 4);
/// ```
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// WebSocket URL of the server (`ws://` or `wss://`). The command-line
    /// URL wins over it. Default: none (the embedded reference server).
    #[serde(default)]
    pub url: Option<String>,
    /// Further WebSocket URLs of the same deployment: the other nodes of
    /// a cluster sharing one engine, reached directly. The suite spreads a
    /// case's sessions over `url` and these in turn (the publisher on one
    /// node, the subscriber on another, a resume on another node than the
    /// one dropped; docs/conformance.md, Several nodes). URLs given on the
    /// command line replace `url` and these. Default: none (one endpoint).
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// URL of the SSE endpoint (`http://host:port/sse`), if the server has
    /// one; a path (`/sse`) is taken relative to the WebSocket URL's host,
    /// of each endpoint when there are several.
    /// Default: none, and the SSE cases are `unsupported`.
    #[serde(default)]
    pub sse_url: Option<String>,
    /// Protocol versions the server supports. Default: `[2, 1]`.
    #[serde(default = "default_versions")]
    pub versions: Vec<u32>,
    /// Encodings the server supports (`json`, `msgpack`, `proto`).
    /// Default: all three.
    #[serde(default = "default_encodings")]
    pub encodings: Vec<String>,
    /// Optional protocol features the server implements (`presence`,
    /// `ephemeral`, `rpc`, `batch`, `reauth`). Cases for a feature not listed
    /// are `unsupported`. Default: none.
    #[serde(default)]
    pub features: Vec<String>,
    /// A shell command that restarts the server and returns once it
    /// accepts connections again. Enables the shutdown (1001) and
    /// epoch-after-restart cases. Default: none (those cases are `unsupported`).
    #[serde(default)]
    pub restart_command: Option<String>,
    /// The first-message deadline of the server in milliseconds (not
    /// advertised in `welcome`). Default: 5000, the reference server's value.
    #[serde(default = "default_hello_deadline")]
    pub hello_deadline_ms: u64,
    /// Whether the server accepts sessions without a token. Default: false
    /// (then a `hello` without a token must be refused with 4004).
    #[serde(default)]
    pub anonymous: bool,
    /// PEM file of CA certificates to trust for `wss://` besides the public
    /// web roots (for test servers with self-signed certificates). Default: none.
    #[serde(default)]
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// How the server comes to send `reauth_request` (AUTH-REAUTH-REQUEST).
    /// Default: none, and `auth.reauth-timeout` is `unsupported`.
    #[serde(default)]
    pub reauth: Option<ReauthTrigger>,
    /// A method the server has registered (`[rpc]`), so `rpc.correlation`
    /// can check its answers. Default: none, and that case is `unsupported`.
    #[serde(default)]
    pub rpc: Option<RpcMethod>,
    /// Channel names the suite may use.
    #[serde(default)]
    pub channels: ChannelProfile,
    /// How the suite obtains credentials.
    #[serde(default)]
    pub tokens: TokenSource,
}

/// A registered RPC method and a payload it answers with an
/// `rpc_response` (`[rpc]` in the profile).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcMethod {
    /// The method name (`echo` on `courier serve`).
    pub method: String,
    /// A payload the method accepts (any JSON value). Default `null`.
    #[serde(default)]
    pub payload: serde_json::Value,
}

/// How a server under test comes to send `reauth_request` to a session
/// that enabled the `reauth` feature (`[reauth]` in the profile). Give one
/// of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReauthTrigger {
    /// The server sends `reauth_request` by itself within this many
    /// milliseconds of each successful authentication (the reference
    /// server's `auth.reauth_after_ms`). Default: none.
    #[serde(default)]
    pub after_ms: Option<u64>,
    /// A shell command that makes the server send `reauth_request` to one
    /// session, run right after its `welcome`: `{session_id}` and `{user}`
    /// are replaced by the session's `welcome.session_id` and
    /// `welcome.user` (also in `$COURIER_SESSION_ID`, `$COURIER_USER`); a
    /// non-zero exit fails the case. Default: none.
    #[serde(default)]
    pub command: Option<String>,
}

/// Which channels the suite uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelProfile {
    /// Prefix of channels every valid token may subscribe and publish to;
    /// the suite appends a unique suffix per case so runs never share state.
    /// Default: `conformance.`.
    #[serde(default = "default_open_prefix")]
    pub open_prefix: String,
    /// A channel that a `wrong-scope` token may neither subscribe nor
    /// publish to, while a `valid` token may. Default: none (the
    /// authorization cases are `unsupported`).
    #[serde(default)]
    pub forbidden: Option<String>,
}

impl Default for ChannelProfile {
    fn default() -> Self {
        ChannelProfile {
            open_prefix: default_open_prefix(),
            forbidden: None,
        }
    }
}

/// The kinds of credentials cases ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Valid, for the suite's main user, allowed on the forbidden channel.
    Valid,
    /// Valid, for a second user.
    OtherUser,
    /// Valid, main user, without the scope the forbidden channel needs.
    WrongScope,
    /// Correctly signed for the main user but already expired.
    Expired,
    /// Rejected for a reason other than expiry (bad signature, garbage).
    Invalid,
    /// Valid for the main user, expiring after the given milliseconds.
    ShortLived(u64),
}

impl TokenKind {
    /// The name used in commands and URLs (`valid`, `other-user`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Valid => "valid",
            TokenKind::OtherUser => "other-user",
            TokenKind::WrongScope => "wrong-scope",
            TokenKind::Expired => "expired",
            TokenKind::Invalid => "invalid",
            TokenKind::ShortLived(_) => "short-lived",
        }
    }
}

/// The main and second user names of minted tokens.
pub const MAIN_USER: &str = "conformance-a";
/// The second user of minted tokens (`other-user`).
pub const OTHER_USER: &str = "conformance-b";

/// Where tokens come from (`[tokens] source = ...`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TokenSource {
    /// No credentials: every session is anonymous; auth cases are unsupported.
    #[default]
    None,
    /// Fixed tokens; kinds left out make their cases `unsupported`.
    Static {
        /// A valid token (required).
        valid: String,
        /// A valid token of a second user (key `other-user`, the kind's
        /// name; `other_user` is accepted too).
        #[serde(default, rename = "other-user", alias = "other_user")]
        other_user: Option<String>,
        /// A valid token lacking the forbidden channel's scope (key
        /// `wrong-scope`; `wrong_scope` is accepted too).
        #[serde(default, rename = "wrong-scope", alias = "wrong_scope")]
        wrong_scope: Option<String>,
        /// An expired token.
        #[serde(default)]
        expired: Option<String>,
        /// A token the server rejects. Default: `not-a-valid-token`.
        #[serde(default)]
        invalid: Option<String>,
    },
    /// A shell command printing one token on stdout. `{kind}` is replaced by
    /// the kind name and `{ttl_ms}` by the lifetime for `short-lived`; the
    /// same values are in `COURIER_TOKEN_KIND` and `COURIER_TOKEN_TTL_MS`.
    /// A non-zero exit means the kind is not available (`unsupported`).
    Command {
        /// The command, run with `sh -c`.
        command: String,
    },
    /// An `http://` URL answering GET with the token as the body; `{kind}`
    /// and `{ttl_ms}` are substituted. A non-200 status means unsupported.
    Url {
        /// The URL template.
        url: String,
    },
    /// The suite mints HS256 JWTs itself (`sub`, `iat`, `exp`, `scope`, and
    /// `aud`/`iss` when set): see docs/conformance.md, Tokens.
    Hs256 {
        /// The shared secret the server verifies with.
        secret: String,
        /// `aud` claim, when the server checks one.
        #[serde(default)]
        audience: Option<String>,
        /// `iss` claim, when the server checks one.
        #[serde(default)]
        issuer: Option<String>,
        /// Scopes of `valid` tokens (space-separated), which must allow the
        /// forbidden channel. Default: empty.
        #[serde(default)]
        forbidden_scope: String,
    },
}

/// A profile that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file could not be read: check the path.
    #[error("cannot read profile {path}: {source}")]
    Io {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys: fix the file (see docs/conformance.md).
    #[error("invalid profile: {0}")]
    Toml(#[from] toml::de::Error),
    /// A version or encoding is not one Courier defines: use 1, 2 and json, msgpack, proto.
    #[error("invalid profile: {0}")]
    Value(String),
}

impl Profile {
    /// Parses a profile from TOML text.
    pub fn from_toml(text: &str) -> Result<Profile, ProfileError> {
        let p: Profile = toml::from_str(text)?;
        p.validate()?;
        Ok(p)
    }

    /// Reads a profile file.
    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Profile::from_toml(&text)
    }

    /// The profiles built into the suite, by name: `courier-serve` (a
    /// `courier serve` started without configuration).
    pub const BUILTIN: &'static [(&'static str, &'static str)] = &[(
        "courier-serve",
        include_str!("../profiles/courier-serve.toml"),
    )];

    /// A built-in profile by name (see [`Profile::BUILTIN`]).
    pub fn builtin(name: &str) -> Option<Profile> {
        Profile::BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, text)| Profile::from_toml(text).expect("built-in profiles are valid"))
    }

    /// The profile named on the command line: `builtin:NAME` or a file path.
    pub fn load(arg: &str) -> Result<Profile, ProfileError> {
        match arg.strip_prefix("builtin:") {
            Some(name) => Profile::builtin(name).ok_or_else(|| {
                let names: Vec<&str> = Profile::BUILTIN.iter().map(|(n, _)| *n).collect();
                ProfileError::Value(format!(
                    "no built-in profile `{name}` (built in: {})",
                    names.join(", ")
                ))
            }),
            None => Profile::from_file(Path::new(arg)),
        }
    }

    /// Resolves an `sse_url` given as a path (`/sse`) against the
    /// WebSocket URL's host: `ws://h:p/ws` gives `http://h:p/sse`,
    /// `wss://` gives `https://`.
    pub fn resolve_sse_url(&mut self, ws_url: &str) {
        self.sse_url = self.sse_url_for(ws_url);
    }

    /// The SSE URL that goes with the WebSocket URL `ws_url`: the
    /// profile's `sse_url`, resolved against `ws_url`'s host when it is a
    /// path (see [`Profile::resolve_sse_url`]).
    pub fn sse_url_for(&self, ws_url: &str) -> Option<String> {
        let sse = self.sse_url.as_deref()?;
        let Some(path) = Some(sse).filter(|u| u.starts_with('/')) else {
            return Some(sse.to_string());
        };
        let (scheme, rest) = if let Some(r) = ws_url.strip_prefix("wss://") {
            ("https", r)
        } else if let Some(r) = ws_url.strip_prefix("ws://") {
            ("http", r)
        } else {
            return Some(sse.to_string());
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        Some(format!("{scheme}://{authority}{path}"))
    }

    /// A profile for a server that supports everything, with anonymous
    /// sessions and no tokens: the minimum to point the suite at a URL.
    pub fn for_url(url: &str) -> Profile {
        let mut p = Profile::from_toml("").expect("empty profile is valid");
        p.url = Some(url.to_string());
        p
    }

    fn validate(&self) -> Result<(), ProfileError> {
        for v in &self.versions {
            Version::from_number(*v)
                .ok_or_else(|| ProfileError::Value(format!("unknown version {v}")))?;
        }
        for e in &self.encodings {
            parse_encoding(e)
                .ok_or_else(|| ProfileError::Value(format!("unknown encoding `{e}`")))?;
        }
        if let Some(r) = &self.reauth {
            if r.after_ms.is_some() == r.command.is_some() {
                return Err(ProfileError::Value(
                    "[reauth] needs exactly one of `after_ms` and `command`".into(),
                ));
            }
        }
        if self.versions.is_empty() || self.encodings.is_empty() {
            return Err(ProfileError::Value(
                "versions and encodings must not be empty".into(),
            ));
        }
        Ok(())
    }

    /// Every subprotocol the server supports, highest version first.
    pub fn subprotocols(&self) -> Vec<Subprotocol> {
        Subprotocol::ALL
            .into_iter()
            .filter(|sp| self.versions.contains(&sp.version.number()))
            .filter(|sp| {
                self.encodings
                    .iter()
                    .any(|e| parse_encoding(e) == Some(sp.encoding))
            })
            .collect()
    }

    /// Whether the server declares an optional feature.
    pub fn has_feature(&self, name: &str) -> bool {
        self.features.iter().any(|f| f == name)
    }
}

/// `json` / `msgpack` / `proto` (also `protobuf`).
pub fn parse_encoding(s: &str) -> Option<Encoding> {
    match s {
        "json" => Some(Encoding::Json),
        "msgpack" => Some(Encoding::MsgPack),
        "proto" | "protobuf" => Some(Encoding::Protobuf),
        _ => None,
    }
}

fn default_versions() -> Vec<u32> {
    vec![2, 1]
}
fn default_encodings() -> Vec<String> {
    vec!["json".into(), "msgpack".into(), "proto".into()]
}
fn default_hello_deadline() -> u64 {
    5000
}
fn default_open_prefix() -> String {
    "conformance.".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_token_keys_are_the_kind_names() {
        for text in [
            "[tokens]\nsource = \"static\"\nvalid = \"a\"\nother-user = \"b\"\nwrong-scope = \"c\"\n",
            "[tokens]\nsource = \"static\"\nvalid = \"a\"\nother_user = \"b\"\nwrong_scope = \"c\"\n",
        ] {
            let p = Profile::from_toml(text).unwrap();
            match p.tokens {
                TokenSource::Static {
                    other_user,
                    wrong_scope,
                    ..
                } => assert_eq!((other_user.as_deref(), wrong_scope.as_deref()), (Some("b"), Some("c"))),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn reauth_needs_exactly_one_trigger_and_sse_paths_resolve() {
        assert!(Profile::from_toml("[reauth]\nafter_ms = 300\n").is_ok());
        assert!(Profile::from_toml("[reauth]\ncommand = \"true\"\n").is_ok());
        assert!(Profile::from_toml("[reauth]\n").is_err());
        assert!(Profile::from_toml("[reauth]\nafter_ms = 1\ncommand = \"true\"\n").is_err());
        let mut p = Profile::builtin("courier-serve").unwrap();
        p.resolve_sse_url("wss://h.example:8443/ws");
        assert_eq!(p.sse_url.as_deref(), Some("https://h.example:8443/sse"));
    }
}
