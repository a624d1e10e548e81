//! The check `courier conform` makes once before any case: that the URL is
//! a WebSocket URL, that a server answers there, that it speaks Courier in
//! one of the profile's subprotocols, and that it accepts the profile's
//! `valid` credentials; with several endpoints, each of them, and that
//! they are configured alike (same features and limits in `welcome`). A target failing it could not be tested at all, so
//! the run stops with one clear error (exit code 2) instead of failing
//! every case with the same cause.

use std::time::Duration;

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use crate::case::{hello, CaseError, Target};
use crate::conn::{Conn, Event, Transcript};
use crate::profile::TokenKind;
use crate::tokens;

/// Why the suite cannot run against a target.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// Not a `ws://` or `wss://` URL with a host: fix the URL.
    #[error("`{0}` is not a WebSocket URL: give ws://host:port/path or wss://host:port/path")]
    BadUrl(String),
    /// Nothing answered, or the handshake failed: start the server or fix the URL.
    #[error("cannot reach {url}: {detail}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The upgrade selected none of the profile's subprotocols: fix the
    /// profile's `versions` and `encodings`, or the URL's path.
    #[error("{url} offered {offered} and the server selected none ({detail}): check the path and the profile's versions and encodings")]
    NoSubprotocol {
        /// The URL.
        url: String,
        /// The subprotocols offered.
        offered: String,
        /// The close that followed, if any.
        detail: String,
    },
    /// The profile cannot provide a `valid` token: fix `[tokens]`.
    #[error("the profile's token source cannot provide a `valid` token: {0}")]
    Token(String),
    /// The server refused the profile's `valid` credentials: fix `[tokens]`
    /// (secret, audience) or the server's auth settings.
    #[error("{url} refused the profile's `valid` credentials: {detail}; check [tokens] in the profile (docs/conformance.md, Tokens)")]
    Refused {
        /// The URL.
        url: String,
        /// The close code and reason, or what arrived instead of `welcome`.
        detail: String,
    },
    /// Two endpoints of one deployment announce different features or
    /// limits: configure every node alike (or test them separately).
    #[error("{url} and {first} are given as one deployment but differ: {detail}")]
    Inconsistent {
        /// The endpoint that differs.
        url: String,
        /// The first endpoint.
        first: String,
        /// What differs.
        detail: String,
    },
}

/// Connects once to each endpoint with the profile's subprotocols and
/// `valid` token, asking for every feature; returns the first endpoint's
/// `welcome` after checking that the others announce the same features
/// and limits.
pub async fn check(target: &Target) -> Result<v2::Welcome, PreflightError> {
    let mut first: Option<v2::Welcome> = None;
    for endpoint in &target.endpoints {
        let w = check_one(target, &endpoint.ws_url).await?;
        match &first {
            None => first = Some(w),
            Some(f) => {
                let detail = if f.features != w.features {
                    Some(format!("features {:?} and {:?}", w.features, f.features))
                } else if f.limits != w.limits {
                    Some(format!("limits {:?} and {:?}", w.limits, f.limits))
                } else {
                    None
                };
                if let Some(detail) = detail {
                    return Err(PreflightError::Inconsistent {
                        url: endpoint.ws_url.clone(),
                        first: target.url.clone(),
                        detail,
                    });
                }
            }
        }
    }
    Ok(first.expect("a target has at least one endpoint"))
}

async fn check_one(target: &Target, url: &str) -> Result<v2::Welcome, PreflightError> {
    valid_url(url)?;
    let sps = target.profile.subprotocols();
    let offers: Vec<&str> = sps.iter().map(|sp| sp.name()).collect();
    let step = Duration::from_secs_f64(5.0 * target.time_scale.max(0.2));
    let options = crate::conn::ConnectOptions {
        tls_ca_file: target.profile.tls_ca_file.clone(),
        ..Default::default()
    };
    let message = |e: CaseError| match e {
        CaseError::Fail(m) | CaseError::Unsupported(m) | CaseError::Skipped(m) => m,
    };
    let mut c = Conn::connect_with(url, &offers, "preflight", Transcript::new(), step, &options)
        .await
        .map_err(|e| PreflightError::Unreachable {
            url: url.into(),
            detail: message(e),
        })?;
    if c.selected.is_none() {
        let detail = match c.next_event(step).await {
            Ok(Some(Event::Closed(cl))) => format!("closed {} {:?}", cl.code_text(), cl.reason),
            _ => format!("Sec-WebSocket-Protocol: {:?}", c.selected_header),
        };
        return Err(PreflightError::NoSubprotocol {
            url: url.into(),
            offered: offers.join(", "),
            detail,
        });
    }
    let token = tokens::fetch(&target.profile.tokens, TokenKind::Valid)
        .await
        .map_err(|e| PreflightError::Token(e.to_string()))?;
    let all = ["presence", "ephemeral", "rpc", "batch", "reauth"];
    c.send_body(hello(&token, &all))
        .await
        .map_err(|e| PreflightError::Unreachable {
            url: url.into(),
            detail: message(e),
        })?;
    let refused = |detail: String| PreflightError::Refused {
        url: url.into(),
        detail,
    };
    loop {
        match c.next_event(step).await {
            Ok(Some(Event::Env(env))) => match env.body {
                Some(Body::Welcome(w)) => {
                    c.close(1000).await;
                    return Ok(w);
                }
                Some(Body::Disconnect(_)) => continue,
                other => {
                    return Err(refused(format!(
                        "answered hello with {:?} instead of welcome",
                        other.as_ref().map(crate::cases::util::body_name)
                    )))
                }
            },
            Ok(Some(Event::Closed(cl))) => {
                let meaning = cl
                    .code
                    .and_then(crate::transcript::close_meaning)
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default();
                return Err(refused(format!(
                    "closed with {}{meaning} {:?}",
                    cl.code_text(),
                    cl.reason
                )));
            }
            Ok(None) => return Err(refused(format!("no welcome within {step:?}"))),
            Err(e) => return Err(refused(message(e))),
        }
    }
}

/// Checks the URL's form before connecting.
pub fn valid_url(url: &str) -> Result<(), PreflightError> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))
        .ok_or_else(|| PreflightError::BadUrl(url.into()))?;
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
            if p.parse::<u16>().is_err() && !authority.starts_with('[') {
                return Err(PreflightError::BadUrl(url.into()));
            }
            h
        }
        _ => authority,
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(PreflightError::BadUrl(url.into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_before_connecting() {
        for ok in [
            "ws://127.0.0.1:8080/ws",
            "wss://example.com/ws",
            "ws://localhost:9",
        ] {
            assert!(valid_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "not-a-url",
            "http://127.0.0.1:8080/ws",
            "ws://",
            "ws://:80/ws",
            "ws://host:port/ws",
        ] {
            assert!(
                matches!(valid_url(bad), Err(PreflightError::BadUrl(_))),
                "{bad}"
            );
        }
    }
}
