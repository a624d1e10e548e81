//! A minimal HTTP/1.1 client for the SSE transport cases: a streaming
//! `GET /sse` that yields events (de-chunking the body when needed) and a
//! one-shot `POST /publish`. Plain `http://` only; every read is bounded.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use courier_client::sse::EventParser;

use crate::case::{fail, CaseError};
use crate::conn::Transcript;

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field.
    pub event: String,
    /// The `id:` field, if present.
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// The data parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value, CaseError> {
        serde_json::from_str(&self.data)
            .map_err(|e| fail(format!("SSE data is not JSON ({e}): {}", self.data)))
    }
}

/// Splits `http://host:port/path?query` into (host:port, path?query).
fn split(url: &str) -> Result<(String, String), CaseError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail(format!("SSE URL must be http://, got {url}")))?;
    Ok(match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    })
}

/// An open event stream.
pub struct SseStream {
    reader: BufReader<TcpStream>,
    /// De-chunking and event parsing: courier-client's bounded parser.
    parser: EventParser,
    /// Response status.
    pub status: u16,
    /// Response headers (lower-case names).
    pub headers: Vec<(String, String)>,
    ended: bool,
    transcript: std::sync::Arc<Transcript>,
}

async fn read_head(
    reader: &mut BufReader<TcpStream>,
) -> Result<(u16, Vec<(String, String)>), CaseError> {
    let mut status = 0;
    let mut headers = Vec::new();
    let mut first = true;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .await
            .map_err(|e| fail(format!("reading the HTTP response: {e}")))?;
        if n == 0 || line.len() > 8192 {
            return Err(fail("HTTP response head ended early or is too long"));
        }
        let line = line.trim_end();
        if first {
            status = line
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            first = false;
        } else if line.is_empty() {
            return Ok((status, headers));
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        if headers.len() > 100 {
            return Err(fail("too many HTTP headers"));
        }
    }
}

impl SseStream {
    /// Opens `GET url` with extra headers (e.g. `Authorization`).
    pub async fn open(
        url: &str,
        headers: &[(&str, String)],
        transcript: std::sync::Arc<Transcript>,
    ) -> Result<SseStream, CaseError> {
        let (host, path) = split(url)?;
        let mut tcp = TcpStream::connect(&host)
            .await
            .map_err(|e| fail(format!("cannot connect to {host}: {e}")))?;
        let mut req =
            format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        transcript.record("sse", "send", "handshake", format!("GET {path}"));
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let mut reader = BufReader::new(tcp);
        let (status, headers) = read_head(&mut reader).await?;
        transcript.record(
            "sse",
            "recv",
            "handshake",
            format!("HTTP {status} {headers:?}"),
        );
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
        Ok(SseStream {
            reader,
            parser: EventParser::new(chunked),
            status,
            headers,
            ended: false,
            transcript,
        })
    }

    /// A response header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event from the parser, reading more of the body as needed;
    /// `None` at the end of the body.
    async fn next_event(&mut self) -> Result<Option<SseEvent>, CaseError> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(SseEvent {
                    event: ev.event,
                    id: ev.id,
                    data: ev.data,
                }));
            }
            if self.parser.ended {
                return Ok(None);
            }
            let mut buf = [0u8; 8192];
            let n = self
                .reader
                .read(&mut buf)
                .await
                .map_err(|e| fail(format!("reading the event stream: {e}")))?;
            if n == 0 {
                return Ok(None);
            }
            self.parser
                .push(&buf[..n])
                .map_err(|e| fail(format!("reading the event stream: {e}")))?;
        }
    }

    /// The next event within `wait`; `Ok(None)` when the stream ended.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<SseEvent>, CaseError> {
        if self.ended {
            return Ok(None);
        }
        let read = async {
            let r = self.next_event().await;
            if matches!(r, Ok(None)) {
                self.ended = true;
            }
            r
        };
        match tokio::time::timeout(wait, read).await {
            Ok(r) => {
                match &r {
                    Ok(Some(e)) => self.transcript.record(
                        "sse",
                        "recv",
                        "text",
                        format!("event: {} id: {:?} data: {}", e.event, e.id, e.data),
                    ),
                    Ok(None) => {
                        self.transcript
                            .record("sse", "recv", "close", "stream ended".into())
                    }
                    Err(_) => {}
                }
                r
            }
            Err(_) => Err(fail(format!("no SSE event within {wait:?}"))),
        }
    }

    /// Reads events until one of type `event`, returning it and those skipped.
    pub async fn until(
        &mut self,
        event: &str,
        wait: Duration,
    ) -> Result<(SseEvent, Vec<SseEvent>), CaseError> {
        let mut skipped = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await? {
                Some(e) if e.event == event => return Ok((e, skipped)),
                Some(e) => skipped.push(e),
                None => return Err(fail(format!("SSE stream ended before a `{event}` event"))),
            }
        }
    }
}

/// `POST url` with a JSON body; returns (status, body as JSON or Null).
pub async fn post_json(
    url: &str,
    token: Option<&str>,
    body: &str,
    transcript: &Transcript,
) -> Result<(u16, serde_json::Value), CaseError> {
    let (host, path) = split(url)?;
    let mut tcp = TcpStream::connect(&host)
        .await
        .map_err(|e| fail(format!("cannot connect to {host}: {e}")))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    transcript.record("http", "send", "text", format!("POST {path} {body}"));
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut reader = BufReader::new(tcp);
    let (status, headers) = read_head(&mut reader).await?;
    let mut raw = Vec::new();
    reader
        .take(1 << 20)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let text = if chunked {
        dechunk(&raw)
    } else {
        String::from_utf8_lossy(&raw).into_owned()
    };
    transcript.record("http", "recv", "text", format!("HTTP {status} {text}"));
    Ok((
        status,
        serde_json::from_str(text.trim()).unwrap_or(serde_json::Value::Null),
    ))
}

fn dechunk(raw: &[u8]) -> String {
    let body = courier_client::sse::dechunk(raw).unwrap_or_default();
    String::from_utf8_lossy(&body).into_owned()
}
