//! The SSE transport at the wire level (docs/spec/sse.md): `GET /sse` as
//! an event stream over the client's socket and TLS pieces, and
//! `POST /publish`. [`EventParser`] is the I/O-free part (de-chunking and
//! the WHATWG event format, bounded). For tools (`courier tap`); there is
//! no reconnecting SSE client here.

use courier_protocol::Version;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::handshake::{self, Endpoint};
use crate::raw::RawError;
use crate::tls::Stream;
use crate::{ClientConfig, ClientError};

/// Longest event line accepted, and the most body bytes buffered.
const MAX_LINE: usize = 1 << 20;

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field (the envelope's type, SSE-STREAM).
    pub event: String,
    /// The `id:` field (`channel:epoch:seq` on messages, SSE-EVENT-ID).
    pub id: Option<String>,
    /// The `data:` lines joined with `\n` (the envelope in JSON).
    pub data: String,
}

/// Why reading the stream failed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// The body is not valid chunked encoding or a line is over 1 MiB:
    /// the server is not speaking SSE; stop reading.
    #[error("malformed event stream: {0}")]
    Malformed(String),
    /// Socket error: the stream is gone; reconnect with `Last-Event-ID`.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Turns body bytes into events: de-chunks (`Transfer-Encoding: chunked`)
/// and parses the event format. No I/O.
#[derive(Debug)]
pub struct EventParser {
    chunked: bool,
    /// Raw bytes not yet de-chunked.
    raw: Vec<u8>,
    /// Bytes left in the current chunk.
    chunk_left: usize,
    /// De-chunked body bytes not yet split into lines.
    body: Vec<u8>,
    current: SseEvent,
    any: bool,
    /// The terminating zero-length chunk was seen.
    pub ended: bool,
}

impl EventParser {
    /// A parser for a body that is `chunked` or not.
    pub fn new(chunked: bool) -> Self {
        EventParser {
            chunked,
            raw: Vec::new(),
            chunk_left: 0,
            body: Vec::new(),
            current: SseEvent::default(),
            any: false,
            ended: false,
        }
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), SseError> {
        if !self.chunked {
            self.body.extend_from_slice(bytes);
        } else {
            self.raw.extend_from_slice(bytes);
            self.dechunk()?;
        }
        if self.body.len() > MAX_LINE || self.raw.len() > MAX_LINE + 64 {
            return Err(SseError::Malformed("line over 1 MiB".into()));
        }
        Ok(())
    }

    fn dechunk(&mut self) -> Result<(), SseError> {
        loop {
            if self.chunk_left > 0 {
                let n = self.chunk_left.min(self.raw.len());
                self.body.extend_from_slice(&self.raw[..n]);
                self.raw.drain(..n);
                self.chunk_left -= n;
                if self.chunk_left > 0 {
                    return Ok(());
                }
            }
            // A size line, possibly preceded by the previous chunk's CRLF.
            let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                if self.raw.len() > 64 {
                    return Err(SseError::Malformed("chunk size line too long".into()));
                }
                return Ok(());
            };
            let line = std::str::from_utf8(&self.raw[..eol])
                .map_err(|_| SseError::Malformed("chunk size is not text".into()))?
                .trim()
                .to_string();
            self.raw.drain(..eol + 2);
            if line.is_empty() {
                continue;
            }
            let size = usize::from_str_radix(line.split(';').next().unwrap_or(""), 16)
                .map_err(|_| SseError::Malformed(format!("bad chunk size `{line}`")))?;
            if size == 0 {
                self.ended = true;
                return Ok(());
            }
            if size > MAX_LINE {
                return Err(SseError::Malformed("chunk over 1 MiB".into()));
            }
            self.chunk_left = size;
        }
    }

    /// The next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        while let Some(i) = self.body.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.body.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if std::mem::take(&mut self.any) {
                    return Some(std::mem::take(&mut self.current));
                }
                continue;
            }
            if line.starts_with(':') {
                continue; // comment
            }
            self.any = true;
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line, ""),
            };
            let ev = &mut self.current;
            match field {
                "event" => ev.event = value.to_string(),
                "id" => ev.id = Some(value.to_string()),
                "data" => {
                    if !ev.data.is_empty() {
                        ev.data.push('\n');
                    }
                    ev.data.push_str(value);
                }
                _ => {}
            }
        }
        None
    }
}

/// The body of a complete `Transfer-Encoding: chunked` response (at most
/// 1 MiB per chunk).
pub fn dechunk(raw: &[u8]) -> Result<Vec<u8>, SseError> {
    let mut p = EventParser::new(true);
    p.raw = raw.to_vec();
    p.dechunk()?;
    Ok(p.body)
}

/// An open `GET /sse` stream.
pub struct SseStream {
    stream: Stream,
    parser: EventParser,
}

impl SseStream {
    /// The next event; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if let Some(ev) = self.parser.next_event() {
                return Ok(Some(ev));
            }
            if self.parser.ended {
                return Ok(None);
            }
            let mut buf = [0u8; 8192];
            let n = self.stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            self.parser.push(&buf[..n])?;
        }
    }
}

/// `http://` or `https://` URL as the WebSocket pieces parse it.
fn endpoint(config: &ClientConfig, url: &str) -> Result<Endpoint, ClientError> {
    let ws = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
        (Some(rest), _) => format!("ws://{rest}"),
        (_, Some(rest)) => format!("wss://{rest}"),
        _ => {
            return Err(ClientError::Config(format!(
                "SSE needs an http:// or https:// URL, got `{url}`"
            )))
        }
    };
    let url = handshake::parse_url(&ws).map_err(|e| ClientError::Config(e.to_string()))?;
    let tls = if url.tls {
        Some(crate::tls::client_config(config)?)
    } else {
        None
    };
    Ok(Endpoint { url, tls })
}

async fn request(
    config: &ClientConfig,
    url: &str,
    head: &str,
    token: Option<&str>,
    body: &[u8],
) -> Result<(handshake::Head, Stream), RawError> {
    let endpoint = endpoint(config, url)?;
    let auth = token
        .filter(|t| !t.is_empty())
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{head} {} HTTP/1.1\r\nHost: {}\r\n{auth}",
        endpoint.url.path, endpoint.url.host
    );
    let run = async {
        let mut stream = handshake::dial(&endpoint).await?;
        stream.write_all(req.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        let head = handshake::read_head(&mut stream).await?;
        Ok::<_, handshake::HandshakeError>((head, stream))
    };
    match tokio::time::timeout(config.connect_timeout, run).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(RawError::Connect(e.to_string())),
        Err(_) => Err(RawError::Connect(format!(
            "no response within {:?}",
            config.connect_timeout
        ))),
    }
}

/// Opens `GET url` (e.g. `http://host/sse?v=2&channel=chat`) with
/// `Authorization: Bearer token` (SSE-AUTH); fails unless the answer is
/// 200 with `Content-Type: text/event-stream` (SSE-STREAM).
pub async fn open(
    config: &ClientConfig,
    url: &str,
    token: Option<&str>,
) -> Result<SseStream, RawError> {
    let (head, stream) = request(
        config,
        url,
        "GET",
        token,
        b"Accept: text/event-stream\r\n\r\n",
    )
    .await?;
    if head.status != 200
        || !head
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream"))
    {
        return Err(RawError::Connect(format!(
            "not an event stream: {} ({})",
            head.status_line,
            head.header("content-type").unwrap_or("no content type")
        )));
    }
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let mut parser = EventParser::new(chunked);
    parser
        .push(&head.rest)
        .map_err(|e| RawError::Connect(e.to_string()))?;
    Ok(SseStream { stream, parser })
}

/// `POST url` (`http://host/publish?v=2`) with a JSON body; returns the
/// status and the response body (at most 1 MiB).
pub async fn post_json(
    config: &ClientConfig,
    url: &str,
    token: Option<&str>,
    json: &str,
) -> Result<(u16, String), RawError> {
    let extra = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let (mut head, mut stream) = request(config, url, "POST", token, extra.as_bytes()).await?;
    let chunked = head
        .header("transfer-encoding")
        .is_some_and(|t| t.to_ascii_lowercase().contains("chunked"));
    let length = head
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok());
    let mut raw = std::mem::take(&mut head.rest);
    let read = async {
        let mut buf = [0u8; 8192];
        loop {
            if let Some(len) = length {
                if raw.len() >= len {
                    raw.truncate(len);
                    break;
                }
            }
            let n = stream.read(&mut buf).await?;
            if n == 0 || raw.len() > MAX_LINE {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(config.request_timeout, read)
        .await
        .map_err(|_| RawError::Connect("no complete response".into()))?
        .map_err(|e| RawError::Connect(e.to_string()))?;
    let body = if chunked {
        let body = dechunk(&raw).map_err(|e| RawError::Connect(e.to_string()))?;
        String::from_utf8_lossy(&body).into_owned()
    } else {
        String::from_utf8_lossy(&raw).into_owned()
    };
    Ok((head.status, body))
}

/// The `v` query value for a version (VER-SSE).
pub fn version_param(v: Version) -> String {
    format!("v={}", v.number())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chunked_events_split_anywhere() {
        let body = b"event: welcome\r\ndata: {\"type\":\"welcome\"}\r\n\r\n: comment\nevent: message\nid: chat:e:1\ndata: a\ndata: b\n\n";
        let mut chunked = Vec::new();
        for part in body.chunks(7) {
            chunked.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
            chunked.extend_from_slice(part);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\n\r\n");
        let mut p = EventParser::new(true);
        let mut events = Vec::new();
        for byte in chunked.chunks(3) {
            p.push(byte).unwrap();
            while let Some(e) = p.next_event() {
                events.push(e);
            }
        }
        assert!(p.ended);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "welcome");
        assert_eq!(events[1].id.as_deref(), Some("chat:e:1"));
        assert_eq!(events[1].data, "a\nb");
    }

    #[test]
    fn refuses_garbage_and_unbounded_lines() {
        let mut p = EventParser::new(true);
        assert!(p.push(b"zz\r\n").is_err());
        let mut p = EventParser::new(false);
        assert!(p.push(&vec![b'x'; MAX_LINE + 1]).is_err());
    }
}
