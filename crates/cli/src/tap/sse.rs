//! `courier tap` over SSE (docs/spec/sse.md): `GET /sse` with the
//! channels and version in the query and the token in `Authorization`,
//! every event decoded, tracked and matched like a WebSocket frame; typed
//! `publish` lines go to `POST /publish` and its answer is shown as
//! received. Pings are not answered (SSE-HEARTBEAT: the client does not).

use std::time::Duration;

use courier_client::{sse, ClientConfig};
use courier_protocol::subprotocol::{Encoding, Version};
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{Codec, Subprotocol};
use serde_json::Value;
use tokio::sync::mpsc;

use super::{Input, Tap, TapArgs, EXIT_CONNECT, EXIT_MISMATCH, EXIT_OK};
use crate::decode::to_json;

/// Query-string escaping for channel names.
fn escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn with_query(url: &str, params: &[String]) -> String {
    if params.is_empty() {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", params.join("&"))
}

/// The `POST /publish` URL beside a `GET /sse` URL.
fn publish_url(sse_url: &str, version: Version) -> String {
    let base = sse_url.split('?').next().unwrap_or(sse_url);
    let base = base
        .strip_suffix("/sse")
        .unwrap_or(base.trim_end_matches('/'));
    format!("{base}/publish?{}", sse::version_param(version))
}

pub(super) async fn run(
    args: &TapArgs,
    mut tap: Tap,
    config: &ClientConfig,
    token: Option<String>,
    mut input: mpsc::Receiver<Input>,
) -> anyhow::Result<i32> {
    // VER-SSE: JSON only; the version comes from -s when given.
    let version = match args.subprotocols.first() {
        Some(sp) if sp.encoding != Encoding::Json => {
            eprintln!(
                "error: SSE carries JSON only; {} is not available",
                sp.name()
            );
            return Ok(EXIT_CONNECT);
        }
        Some(sp) => Some(sp.version),
        None => None,
    };
    let mut params: Vec<String> = version.map(sse::version_param).into_iter().collect();
    params.extend(
        args.channels
            .iter()
            .map(|c| format!("channel={}", escape(c))),
    );
    let url = with_query(&args.url, &params);
    let mut stream = match sse::open(config, &url, token.as_deref()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(EXIT_CONNECT);
        }
    };
    tap.note(&format!("connected to {url} (SSE)"));
    let mut json_codec = Codec::new(Subprotocol::new(
        version.unwrap_or(Version::V2),
        Encoding::Json,
    ));
    let timeout = Duration::from_secs_f64(args.timeout.max(0.0));
    let mut deadline = tokio::time::Instant::now() + timeout;
    let end_at = args
        .duration
        .map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    let mut input_open = true;
    let mut paused_until: Option<tokio::time::Instant> = None;
    // Typed input ended (Ctrl-D, a pipe closed) with nothing else to wait
    // for: leave once the server has been quiet for --timeout (as wscat
    // leaves at the end of its input). A --send file is a script: stay.
    let typed = args.send.as_ref().is_none_or(|p| p.as_os_str() == "-");
    let linger_after_input = typed && args.expect.is_none() && args.duration.is_none();
    let mut linger: Option<tokio::time::Instant> = None;
    let mut disconnect: Option<i64> = None;
    // Input waits for the welcome: it says which version to publish with.
    let mut welcomed = false;
    let outcome = loop {
        if !tap.expectations.is_empty() && tap.expectations_done() {
            tap.note("every expectation matched");
            break EXIT_OK;
        }
        let expecting = !tap.expectations_done();
        let before = tap.next_expectation;
        let pause = async {
            match paused_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = stream.next() => match event {
                Ok(Some(ev)) => match json_codec.decode_frame::<v2::Envelope>(ev.data.as_bytes(), Some(true)) {
                    Ok(env) => {
                        if let Some(Body::Welcome(w)) = &env.body {
                            welcomed = true;
                            // The version the server chose (VER-SSE default: its highest).
                            if let Some(v) = Version::from_number(w.version) {
                                tap.version = v;
                                json_codec = Codec::new(Subprotocol::new(v, Encoding::Json));
                            }
                        }
                        if let Some(Body::Disconnect(d)) = &env.body {
                            disconnect = Some(i64::from(d.code));
                        }
                        tap.received(&env);
                        if linger.is_some() {
                            linger = Some(tokio::time::Instant::now() + timeout);
                        }
                    }
                    Err(e) => {
                        tap.flagged += 1;
                        tap.note(&format!("undecodable `{}` event: {e}: {}", ev.event, ev.data));
                    }
                },
                Ok(None) => {
                    tap.note("stream ended");
                    let normal = disconnect.is_none_or(|c| c == 1000 || c == 1001);
                    break if expecting || !normal { EXIT_MISMATCH } else { EXIT_OK };
                }
                Err(e) => {
                    tap.note(&format!("stream lost: {e}"));
                    break EXIT_MISMATCH;
                }
            },
            line = input.recv(), if welcomed && input_open && paused_until.is_none() => match line {
                Some(Input::Line(n, line)) => {
                    let value: Value = match serde_json::from_str(&line) {
                        Ok(v) => v,
                        Err(e) => {
                            eprintln!("error: input line {n}: not JSON: {e}");
                            break EXIT_CONNECT;
                        }
                    };
                    if let Some(ms) = value.get("sleep_ms").and_then(Value::as_u64) {
                        paused_until = Some(tokio::time::Instant::now() + Duration::from_millis(ms));
                        continue;
                    }
                    let env = match json_codec.decode_frame::<v2::Envelope>(line.as_bytes(), Some(true)) {
                        Ok(v2::Envelope { body: Some(Body::Publish(p)) }) => p,
                        Ok(_) => {
                            eprintln!("error: input line {n}: only `publish` can be sent over SSE (POST /publish)");
                            break EXIT_CONNECT;
                        }
                        Err(e) => {
                            eprintln!("error: input line {n}: {e}");
                            break EXIT_CONNECT;
                        }
                    };
                    let sent = v2::Envelope { body: Some(Body::Publish(env)) };
                    let text = to_json(tap.version, &sent);
                    let mut body: Value = serde_json::from_str(&text)?;
                    body.as_object_mut().map(|o| o.remove("type"));
                    tap.print("send", &serde_json::from_str(&text)?, &text, &["POST /publish".into()]);
                    let url = publish_url(&args.url, tap.version);
                    match sse::post_json(config, &url, token.as_deref(), &body.to_string()).await {
                        Ok((status, reply)) => match json_codec.decode_frame::<v2::Envelope>(reply.trim().as_bytes(), Some(true)) {
                            Ok(env) => tap.received(&env),
                            Err(_) => tap.note(&format!("POST /publish: HTTP {status} {reply}")),
                        },
                        Err(e) => tap.note(&format!("POST /publish failed: {e}")),
                    }
                }
                Some(Input::End) | None => {
                    input_open = false;
                    if linger_after_input {
                        linger = Some(tokio::time::Instant::now() + timeout);
                    }
                }
            },
            () = pause => paused_until = None,
            () = async { match linger { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                tap.note(&format!("input ended and nothing arrived for {timeout:?}"));
                break EXIT_OK;
            }
            () = tokio::time::sleep_until(deadline), if expecting => {
                tap.note(&format!(
                    "expectation {} not met within {timeout:?}: {}",
                    tap.next_expectation + 1,
                    tap.expectations[tap.next_expectation]
                ));
                break EXIT_MISMATCH;
            }
            () = async { match end_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                break if expecting { EXIT_MISMATCH } else { EXIT_OK };
            }
            _ = tokio::signal::ctrl_c() => break if expecting { EXIT_MISMATCH } else { EXIT_OK },
        }
        if tap.next_expectation != before {
            deadline = tokio::time::Instant::now() + timeout;
        }
    };
    Ok(tap.exit_code(outcome, args.strict))
}
