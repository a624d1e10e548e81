//! Obtaining credentials of each kind a case needs from the profile's token
//! source: fixed strings, a command, a URL, or HS256 JWTs minted in process.
//! [`mint`] is the workspace's one JWT minter: the suite's `hs256` source
//! and the docs' transcripts (`courier-docs`) both sign with it.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::profile::{TokenKind, TokenSource, MAIN_USER, OTHER_USER};

/// Why a token could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The source cannot provide this kind: the case is `unsupported`.
    #[error("the profile's token source provides no `{0}` token")]
    Unavailable(&'static str),
    /// The command or URL failed: fix the profile.
    #[error("token source failed: {0}")]
    Failed(String),
}

/// Claims of a minted token, as the reference server reads them.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Claims<'a> {
    /// The user.
    pub sub: &'a str,
    /// Issued at (seconds since the epoch).
    pub iat: u64,
    /// Expiry (seconds since the epoch).
    pub exp: u64,
    /// Audience, when the server checks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<&'a str>,
    /// Issuer, when the server checks one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<&'a str>,
    /// Space-separated scopes (channel rules grant by scope).
    pub scope: &'a str,
}

impl<'a> Claims<'a> {
    /// Claims for `sub` with `scope`, issued now and valid for `ttl_s` seconds.
    pub fn new(sub: &'a str, scope: &'a str, ttl_s: u64) -> Claims<'a> {
        let now = now_secs();
        Claims {
            sub,
            iat: now,
            exp: now + ttl_s,
            aud: None,
            iss: None,
            scope,
        }
    }
}

/// Signs `claims` as an HS256 JWT with `secret`.
pub fn mint(secret: &str, claims: &Claims<'_>) -> Result<String, TokenError> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| TokenError::Failed(e.to_string()))
}

/// Gets one token of `kind`. `None` in the result means "send an empty
/// token" (the anonymous source).
pub async fn fetch(source: &TokenSource, kind: TokenKind) -> Result<String, TokenError> {
    let ttl = match kind {
        TokenKind::ShortLived(ms) => ms,
        _ => 0,
    };
    match source {
        // Anonymous sessions share one identity (DEDUP-WINDOW): there is no
        // second user, so cases that need one are `unsupported`.
        TokenSource::None => match kind {
            TokenKind::Valid => Ok(String::new()),
            other => Err(TokenError::Unavailable(other.as_str())),
        },
        TokenSource::Static {
            valid,
            other_user,
            wrong_scope,
            expired,
            invalid,
        } => {
            let pick = match kind {
                TokenKind::Valid => Some(valid.clone()),
                TokenKind::OtherUser => other_user.clone(),
                TokenKind::WrongScope => wrong_scope.clone(),
                TokenKind::Expired => expired.clone(),
                TokenKind::Invalid => Some(
                    invalid
                        .clone()
                        .unwrap_or_else(|| "not-a-valid-token".into()),
                ),
                TokenKind::ShortLived(_) => None,
            };
            pick.ok_or(TokenError::Unavailable(kind.as_str()))
        }
        TokenSource::Command { command } => run_command(command, kind, ttl).await,
        TokenSource::Url { url } => get_url(&substitute(url, kind, ttl), kind).await,
        TokenSource::Hs256 {
            secret,
            audience,
            issuer,
            forbidden_scope,
        } => {
            let now = now_secs();
            let (sub, exp, scope, key) = match kind {
                TokenKind::Valid => (
                    MAIN_USER,
                    now + 3600,
                    forbidden_scope.as_str(),
                    secret.as_str(),
                ),
                TokenKind::OtherUser => (
                    OTHER_USER,
                    now + 3600,
                    forbidden_scope.as_str(),
                    secret.as_str(),
                ),
                TokenKind::WrongScope => (MAIN_USER, now + 3600, "", secret.as_str()),
                // Well past jsonwebtoken's default 60 s leeway.
                TokenKind::Expired => (
                    MAIN_USER,
                    now - 600,
                    forbidden_scope.as_str(),
                    secret.as_str(),
                ),
                TokenKind::Invalid => (
                    MAIN_USER,
                    now + 3600,
                    forbidden_scope.as_str(),
                    "not-the-server-secret",
                ),
                // JWT `exp` has second resolution: round up so the token
                // never expires earlier than asked.
                TokenKind::ShortLived(ms) => (
                    MAIN_USER,
                    now + ms.div_ceil(1000),
                    forbidden_scope.as_str(),
                    secret.as_str(),
                ),
            };
            let claims = Claims {
                sub,
                iat: now.min(exp),
                exp,
                aud: audience.as_deref(),
                iss: issuer.as_deref(),
                scope,
            };
            mint(key, &claims)
        }
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn substitute(template: &str, kind: TokenKind, ttl: u64) -> String {
    template
        .replace("{kind}", kind.as_str())
        .replace("{ttl_ms}", &ttl.to_string())
}

async fn run_command(command: &str, kind: TokenKind, ttl: u64) -> Result<String, TokenError> {
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(substitute(command, kind, ttl))
        .env("COURIER_TOKEN_KIND", kind.as_str())
        .env("COURIER_TOKEN_TTL_MS", ttl.to_string())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| TokenError::Failed(format!("cannot run `{command}`: {e}")))?;
    if !out.status.success() {
        return Err(TokenError::Unavailable(kind.as_str()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A minimal HTTP/1.1 GET (the token endpoint is a test fixture; plain http only).
async fn get_url(url: &str, kind: TokenKind) -> Result<String, TokenError> {
    let fail = |m: String| TokenError::Failed(m);
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail(format!("token URL must be http://, got {url}")))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| fail(format!("{url}: {e}")))?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut buf = Vec::new();
    // Tokens are small: refuse to buffer more than 64 KiB.
    stream
        .take(64 * 1024)
        .read_to_end(&mut buf)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail("malformed HTTP response".into()))?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        return Err(TokenError::Unavailable(kind.as_str()));
    }
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return Err(fail(
            "chunked token responses are not supported; send Content-Length".into(),
        ));
    }
    Ok(body.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn command_source_substitutes_kind_and_reports_unavailable() {
        let src = TokenSource::Command {
            command: "test {kind} != expired && echo tok-{kind}-$COURIER_TOKEN_TTL_MS".into(),
        };
        assert_eq!(fetch(&src, TokenKind::Valid).await.unwrap(), "tok-valid-0");
        assert_eq!(
            fetch(&src, TokenKind::ShortLived(1500)).await.unwrap(),
            "tok-short-lived-1500"
        );
        assert_eq!(
            fetch(&src, TokenKind::Expired).await,
            Err(TokenError::Unavailable("expired"))
        );
    }

    #[tokio::test]
    async fn minted_tokens_carry_the_claims() {
        let src = TokenSource::Hs256 {
            secret: "s3cret".into(),
            audience: Some("aud1".into()),
            issuer: Some("iss1".into()),
            forbidden_scope: "private".into(),
        };
        let tok = fetch(&src, TokenKind::Valid).await.unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["aud1"]);
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &tok,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &v,
        )
        .unwrap();
        assert_eq!(data.claims["sub"], MAIN_USER);
        assert_eq!(data.claims["scope"], "private");
        assert_eq!(data.claims["iss"], "iss1");
        assert!(data.claims["iat"].as_u64().unwrap() < data.claims["exp"].as_u64().unwrap());
        let expired = fetch(&src, TokenKind::Expired).await.unwrap();
        assert!(jsonwebtoken::decode::<serde_json::Value>(
            &expired,
            &jsonwebtoken::DecodingKey::from_secret(b"s3cret"),
            &v
        )
        .is_err());
    }
}
