//! Authentication (JWT HS256/RS256 via `jsonwebtoken`, AUTH-*) and
//! per-channel authorization rules from the configuration (AUTHZ-*).

use std::sync::Arc;

use bytes::Bytes;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::config::{AuthConfig, ChannelRule};
use crate::error::{AuthError, ServerError};
use crate::pattern::pattern_matches;

/// Who a session is, as established by its credentials.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The JWT `sub`; empty for anonymous sessions.
    pub user: Arc<str>,
    /// Scopes from the `scope` claim (space-separated string or array).
    pub scopes: Vec<String>,
    /// `exp` in milliseconds since the Unix epoch; `None` if it never expires.
    pub expires_at_ms: Option<u64>,
    /// Presence `info`: the token's `info` claim as a payload (empty if none).
    pub info: Bytes,
}

impl Identity {
    /// Whether the session presented credentials.
    pub fn is_authenticated(&self) -> bool {
        !self.user.is_empty()
    }
}

/// Checks bearer tokens.
pub(crate) struct Authenticator {
    keys: Vec<(Algorithm, DecodingKey)>,
    validation: Validation,
    allow_anonymous: bool,
    leeway_ms: u64,
    #[cfg(feature = "faults")]
    accept_expired: bool,
}

impl Authenticator {
    pub(crate) fn new(
        cfg: &AuthConfig,
        #[allow(unused)] accept_expired: bool,
    ) -> Result<Self, ServerError> {
        let mut keys = Vec::new();
        if let Some(secret) = &cfg.hs256_secret {
            keys.push((
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        let pem = match (&cfg.rs256_public_key_pem, &cfg.rs256_public_key_file) {
            (Some(pem), _) => Some(pem.clone()),
            (None, Some(path)) => {
                Some(std::fs::read_to_string(path).map_err(|e| ServerError::Key {
                    what: "auth.rs256_public_key_file",
                    error: format!("{}: {e}", path.display()),
                })?)
            }
            (None, None) => None,
        };
        if let Some(pem) = pem {
            let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| ServerError::Key {
                what: "RS256 public key",
                error: e.to_string(),
            })?;
            keys.push((Algorithm::RS256, key));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.algorithms = keys.iter().map(|(a, _)| *a).collect();
        // Expiry is checked here rather than by jsonwebtoken so that an
        // expired token is told apart (4300) and tokens without `exp` work.
        validation.validate_exp = false;
        validation.required_spec_claims.clear();
        validation.leeway = cfg.leeway_secs;
        validation.validate_aud = cfg.audience.is_some();
        // A configured audience or issuer must also be present in the token.
        if let Some(aud) = &cfg.audience {
            validation.set_audience(&[aud]);
            validation.required_spec_claims.insert("aud".into());
        }
        if let Some(iss) = &cfg.issuer {
            validation.set_issuer(&[iss]);
            validation.required_spec_claims.insert("iss".into());
        }
        let allow_anonymous = cfg.allow_anonymous.unwrap_or(keys.is_empty());
        Ok(Authenticator {
            keys,
            validation,
            allow_anonymous,
            leeway_ms: cfg.leeway_secs * 1000,
            #[cfg(feature = "faults")]
            accept_expired,
        })
    }

    /// Checks `token` at `now_ms`; an empty token is an anonymous session.
    pub(crate) fn authenticate(&self, token: &str, now_ms: u64) -> Result<Identity, AuthError> {
        if token.is_empty() {
            return if self.allow_anonymous {
                Ok(Identity::default())
            } else {
                Err(AuthError::Invalid("a token is required".into()))
            };
        }
        if self.keys.is_empty() {
            // A development server without keys cannot verify anything; it
            // treats every session as anonymous rather than trusting claims.
            return if self.allow_anonymous {
                Ok(Identity::default())
            } else {
                Err(AuthError::Invalid("no verification key configured".into()))
            };
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let key = self
            .keys
            .iter()
            .find(|(alg, _)| *alg == header.alg)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                AuthError::Invalid(format!("algorithm {:?} not accepted", header.alg))
            })?;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let user = claims
            .get("sub")
            .and_then(|s| s.as_str())
            .unwrap_or_default();
        if user.is_empty() {
            return Err(AuthError::Invalid("the token has no `sub`".into()));
        }
        let expires_at_ms = match claims.get("exp") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .ok_or_else(|| AuthError::Invalid("`exp` is not a number".into()))?
                    * 1000,
            ),
        };
        if let Some(nbf) = claims.get("nbf").and_then(|v| v.as_u64()) {
            if nbf * 1000 > now_ms + self.leeway_ms {
                return Err(AuthError::Invalid("the token is not valid yet".into()));
            }
        }
        // AUTH-EXPIRED-AT-HELLO: the signature and audience were good, so
        // an expired token is 4300 (refresh), not 4004.
        if let Some(exp) = expires_at_ms {
            #[cfg(feature = "faults")]
            let expired = !self.accept_expired && exp + self.leeway_ms <= now_ms;
            #[cfg(not(feature = "faults"))]
            let expired = exp + self.leeway_ms <= now_ms;
            if expired {
                return Err(AuthError::Expired);
            }
        }
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(serde_json::Value::String(s)) => {
                s.split_whitespace().map(str::to_string).collect()
            }
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let info = match claims.get("info") {
            Some(v) => courier_protocol::wire::payload::from_json(v).unwrap_or_default(),
            None => Bytes::new(),
        };
        Ok(Identity {
            user: user.into(),
            scopes,
            expires_at_ms,
            info,
        })
    }

    /// Whether the session is past its expiry at `now_ms` (AUTH-EXPIRY).
    pub(crate) fn is_expired(&self, identity: &Identity, now_ms: u64) -> bool {
        #[cfg(feature = "faults")]
        if self.accept_expired {
            return false;
        }
        identity
            .expires_at_ms
            .is_some_and(|exp| exp + self.leeway_ms <= now_ms)
    }
}

/// An operation checked against the channel rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `subscribe` (and SSE `channel=`).
    Subscribe,
    /// `publish`, `ephemeral`, `POST /publish`.
    Publish,
}

/// The configured channel rules (AUTHZ-PER-OPERATION).
pub(crate) struct Authorizer {
    rules: Vec<ChannelRule>,
}

impl Authorizer {
    pub(crate) fn new(rules: Vec<ChannelRule>) -> Self {
        Authorizer { rules }
    }

    /// The first rule matching `channel` for `identity`.
    pub(crate) fn rule(&self, channel: &str, identity: Option<&Identity>) -> Option<&ChannelRule> {
        let user = identity.map(|i| &*i.user).unwrap_or_default();
        self.rules
            .iter()
            .find(|r| pattern_matches(&r.pattern, channel, user))
    }

    /// Whether `identity` may perform `op` on `channel`. Checked on every
    /// operation with the session's current credentials, never cached.
    pub(crate) fn allows(&self, op: Operation, channel: &str, identity: &Identity) -> bool {
        let Some(rule) = self.rule(channel, Some(identity)) else {
            return true;
        };
        let needed = match op {
            Operation::Subscribe => &rule.subscribe,
            Operation::Publish => &rule.publish,
        };
        match needed.as_deref() {
            None => true,
            Some("") => identity.is_authenticated(),
            Some(scope) => {
                identity.is_authenticated() && identity.scopes.iter().any(|s| s == scope)
            }
        }
    }
}
