//! The one low-level Courier connection of the workspace: `ws://`/`wss://`
//! URLs, TCP (and TLS, `tls.rs`), and the WebSocket opening handshake with
//! the subprotocol offer. The client, the conformance suite and the docs'
//! transcript recorder all connect through here.
//!
//! The upgrade is done here rather than by tungstenite's client so that a
//! response selecting no subprotocol is still accepted and its 4002 close
//! can be read (VER-CLIENT-VERIFY, VER-ACCEPT-THEN-CLOSE): the client
//! surfaces it, the suite checks it, the docs show it.

use std::sync::Arc;

use courier_protocol::Subprotocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

pub use crate::close_codes::CloseCodes;
use crate::tls;
pub use crate::tls::Stream;
use crate::{ClientConfig, ClientError};

/// Largest HTTP response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A parsed `ws://` or `wss://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsUrl {
    /// `wss://`.
    pub tls: bool,
    /// `host:port` to connect to.
    pub authority: String,
    /// The `Host` header value.
    pub host: String,
    /// The host alone (no port, no IPv6 brackets): the TLS server name.
    pub hostname: String,
    /// Path and query (`/ws`).
    pub path: String,
}

/// Where to connect: the URL and, for `wss://`, the TLS configuration
/// (built once per client, shared by every reconnect).
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL.
    pub url: WsUrl,
    /// `Some` exactly when `url.tls`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why the handshake failed. All of these are transient from the policy's
/// view (backoff), except a bad URL, which the caller checks up front.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The URL is not a supported `ws://` or `wss://` URL.
    #[error("unsupported URL `{0}` (expected ws://host[:port]/path or wss://host[:port]/path)")]
    Url(String),
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The server answered something other than a valid 101.
    #[error("handshake refused: {0}")]
    Refused(String),
}

impl Endpoint {
    /// The endpoint of `config`'s URL with its trust settings.
    pub fn from_config(config: &ClientConfig) -> Result<Endpoint, ClientError> {
        let url = parse_url(&config.url).map_err(|e| ClientError::Config(e.to_string()))?;
        let tls = if url.tls {
            Some(tls::client_config(config)?)
        } else {
            None
        };
        Ok(Endpoint { url, tls })
    }
}

/// Parses `ws://host[:port][/path]` (port 80) and
/// `wss://host[:port][/path]` (port 443).
pub fn parse_url(url: &str) -> Result<WsUrl, HandshakeError> {
    let (tls, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err(HandshakeError::Url(url.to_string())),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() || hostport.contains('@') {
        return Err(HandshakeError::Url(url.to_string()));
    }
    let (hostname, has_port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| HandshakeError::Url(url.to_string()))?;
            (addr, after.starts_with(':'))
        }
        None => match hostport.split_once(':') {
            Some((h, _)) => (h, true),
            None => (hostport, false),
        },
    };
    if hostname.is_empty() {
        return Err(HandshakeError::Url(url.to_string()));
    }
    let authority = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:{}", if tls { 443 } else { 80 })
    };
    Ok(WsUrl {
        tls,
        authority,
        host: hostport.to_string(),
        hostname: hostname.to_string(),
        path: path.to_string(),
    })
}

/// An upgraded connection and the subprotocol the server selected.
pub struct Upgraded {
    /// The WebSocket stream.
    pub ws: WebSocketStream<CloseCodes<Stream>>,
    /// `Sec-WebSocket-Protocol` of the response, if any.
    pub selected: Option<String>,
    /// The response's status line (`HTTP/1.1 101 Switching Protocols`).
    pub status_line: String,
}

/// Connects (TLS first for `wss://`) and upgrades, offering `offers`.
pub async fn connect(
    endpoint: &Endpoint,
    offers: &[Subprotocol],
    config: WebSocketConfig,
) -> Result<Upgraded, HandshakeError> {
    let offers: Vec<&str> = offers.iter().map(|p| p.name()).collect();
    let stream = dial(endpoint).await?;
    upgrade(stream, &endpoint.url, &offers, config).await
}

/// Upgrades `stream` to a WebSocket for `url`, offering the subprotocol
/// names `offers` in order (none: no `Sec-WebSocket-Protocol` header; a
/// name may be one no server knows, for the suite's negotiation cases).
pub async fn upgrade(
    mut stream: Stream,
    url: &WsUrl,
    offers: &[&str],
    config: WebSocketConfig,
) -> Result<Upgraded, HandshakeError> {
    let key = generate_key();
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        url.path, url.host,
    );
    if !offers.is_empty() {
        request.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            offers.join(", ")
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // TLS buffers records; the request must leave before we wait for the answer.
    stream.flush().await?;

    let head = read_head(&mut stream).await?;
    if head.status != 101 {
        return Err(HandshakeError::Refused(head.status_line));
    }
    if head.header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(HandshakeError::Refused("bad Sec-WebSocket-Accept".into()));
    }
    let selected = head.header("sec-websocket-protocol").map(str::to_string);
    let mut rest = head.rest;
    let stream = CloseCodes::new(stream, &mut rest);
    let ws = WebSocketStream::from_partially_read(stream, rest, Role::Client, Some(config)).await;
    Ok(Upgraded {
        ws,
        selected,
        status_line: head.status_line,
    })
}

/// Opens the TCP connection (and TLS for `wss://`/`https://`).
pub async fn dial(endpoint: &Endpoint) -> Result<Stream, HandshakeError> {
    dial_with(endpoint, None).await
}

/// [`dial`], with `recv_buffer` shrinking the socket's receive buffer so
/// that a reader that stops pushes back on the server after kilobytes (the
/// suite's slow-consumer cases).
pub async fn dial_with(
    endpoint: &Endpoint,
    recv_buffer: Option<u32>,
) -> Result<Stream, HandshakeError> {
    let url = &endpoint.url;
    let tcp = match recv_buffer {
        None => TcpStream::connect(&url.authority).await?,
        Some(size) => {
            let addr = tokio::net::lookup_host(&url.authority)
                .await?
                .next()
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("{} resolves to nothing", url.authority),
                    )
                })?;
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            socket.set_recv_buffer_size(size)?;
            socket.connect(addr).await?
        }
    };
    tcp.set_nodelay(true)?;
    Ok(match &endpoint.tls {
        Some(tls) => tls::connect(tcp, &url.hostname, tls.clone()).await?,
        None => Stream::Plain(tcp),
    })
}

/// An HTTP/1.1 response head.
pub(crate) struct Head {
    /// The status code (0 if unreadable).
    pub status: u16,
    /// The status line as received.
    pub status_line: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Bytes read past the head.
    pub rest: Vec<u8>,
}

impl Head {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads a response head of at most [`MAX_HEAD`] bytes.
pub(crate) async fn read_head(stream: &mut Stream) -> Result<Head, HandshakeError> {
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find_head_end(&buf) {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(HandshakeError::Refused("response head too large".into()));
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HandshakeError::Refused(
                "connection closed during the handshake".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| HandshakeError::Refused("non-UTF-8 head".into()))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default().to_string();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Head {
        status,
        status_line,
        headers,
        rest: buf[head_end + 4..].to_vec(),
    })
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("ws://127.0.0.1:8080/ws").unwrap();
        assert_eq!(
            (u.tls, u.authority.as_str(), u.path.as_str()),
            (false, "127.0.0.1:8080", "/ws")
        );
        let u = parse_url("ws://example.test").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.host.as_str(), u.path.as_str()),
            ("example.test:80", "example.test", "/")
        );
        let u = parse_url("ws://[::1]:9/x?y=1").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.hostname.as_str(), u.path.as_str()),
            ("[::1]:9", "::1", "/x?y=1")
        );
        let u = parse_url("wss://example.test/ws").unwrap();
        assert_eq!(
            (u.tls, u.authority.as_str(), u.hostname.as_str()),
            (true, "example.test:443", "example.test")
        );
        let u = parse_url("wss://[::1]/ws").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.host.as_str(), u.hostname.as_str()),
            ("[::1]:443", "[::1]", "::1")
        );
        let u = parse_url("wss://localhost:8443").unwrap();
        assert_eq!(
            (u.authority.as_str(), u.hostname.as_str(), u.path.as_str()),
            ("localhost:8443", "localhost", "/")
        );
        assert!(parse_url("wss://").is_err());
        assert!(parse_url("wss://:443/ws").is_err());
        assert!(parse_url("ws://[::1/ws").is_err());
        assert!(parse_url("WSS//example.test").is_err());
        assert!(parse_url("http://example.test/ws").is_err());
        assert!(parse_url("ws://user@example.test/ws").is_err());
    }
}
