//! Test helpers: a server on a free loopback port, a raw WebSocket client
//! (hand-written upgrade so that refused subprotocols and Origins can be
//! observed) speaking through the protocol `Codec`, JWT minting, and a
//! tiny HTTP/1.1 client.

#![allow(dead_code)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, wire, Codec, Encoding, Subprotocol, Version};
use courier_server::{RunningServer, ServerBuilder, ServerConfig};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

pub const SECRET: &str = "test-secret";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        shutdown_grace_ms: 2000,
        ..ServerConfig::default()
    }
}

pub async fn server(f: impl FnOnce(&mut ServerConfig)) -> RunningServer {
    let mut c = config();
    f(&mut c);
    ServerBuilder::new(c).start().await.expect("server starts")
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An HS256 token signed with `SECRET`.
pub fn hs256(claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &key,
    )
    .unwrap()
}

pub fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/server/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// An RS256 token signed with the fixture key `key`.
pub fn rs256(key: &str, claims: serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(fixture(key).as_bytes()).unwrap();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .unwrap()
}

pub fn sp(name: &str) -> Subprotocol {
    name.parse().unwrap()
}

pub fn payload(v: serde_json::Value) -> Bytes {
    wire::payload::from_json(&v).unwrap()
}

/// The result of a hand-made upgrade.
pub struct Upgrade<S> {
    pub status: u16,
    pub head: String,
    pub ws: Option<WebSocketStream<S>>,
}

impl<S> Upgrade<S> {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }
}

/// Sends an upgrade request over `io` and reads the response head byte by
/// byte, so no frame that follows is consumed.
pub async fn upgrade_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut io: S,
    host: &str,
    offers: &[&str],
    extra: &[(&str, &str)],
) -> Result<Upgrade<S>> {
    let mut req = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    if !offers.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            offers.join(", ")
        ));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    io.write_all(req.as_bytes()).await?;
    read_upgrade(io).await
}

/// Reads a response head byte by byte, so no frame that follows is
/// consumed; a `101` makes the socket a client WebSocket.
pub async fn read_upgrade<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) -> Result<Upgrade<S>> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        if io.read(&mut b).await? == 0 {
            bail!("connection closed during the handshake");
        }
        head.push(b[0]);
    }
    let head = String::from_utf8(head)?;
    let status: u16 = head.split_whitespace().nth(1).context("status")?.parse()?;
    let ws = if status == 101 {
        Some(WebSocketStream::from_raw_socket(io, Role::Client, None).await)
    } else {
        None
    };
    Ok(Upgrade { status, head, ws })
}

pub async fn upgrade(
    server: &RunningServer,
    offers: &[&str],
    extra: &[(&str, &str)],
) -> Result<Upgrade<TcpStream>> {
    let tcp = TcpStream::connect(server.local_addr()).await?;
    upgrade_on(tcp, &server.local_addr().to_string(), offers, extra).await
}

/// How a connection ended, as the client saw it.
#[derive(Debug)]
pub struct Closed {
    pub disconnect: Option<v2::Disconnect>,
    pub code: Option<u16>,
    pub reason: String,
}

/// A test client on one negotiated subprotocol.
pub struct Client<S = TcpStream> {
    pub ws: WebSocketStream<S>,
    pub codec: Codec,
    pub welcome: v2::Welcome,
    /// Envelopes already received but not yet returned (batches are flattened).
    pending: std::collections::VecDeque<v2::Envelope>,
}

impl Client<TcpStream> {
    /// Connects with `subprotocol`, sends hello and waits for welcome.
    pub async fn open(
        server: &RunningServer,
        subprotocol: &str,
        token: &str,
        features: &[&str],
    ) -> Result<Self> {
        let up = upgrade(server, &[subprotocol], &[]).await?;
        let ws = up.ws.context("upgrade refused")?;
        Client::hello(ws, sp(subprotocol), token, features).await
    }

    /// `open` on courier.v2.json with every feature, anonymous.
    pub async fn json(server: &RunningServer) -> Result<Self> {
        Client::open(
            server,
            "courier.v2.json",
            "",
            &["presence", "ephemeral", "rpc"],
        )
        .await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// A client that has not sent hello.
    pub fn raw(ws: WebSocketStream<S>, subprotocol: Subprotocol) -> Self {
        Client {
            ws,
            codec: Codec::new(subprotocol),
            welcome: v2::Welcome::default(),
            pending: Default::default(),
        }
    }

    pub async fn hello(
        ws: WebSocketStream<S>,
        subprotocol: Subprotocol,
        token: &str,
        features: &[&str],
    ) -> Result<Self> {
        let mut c = Client::raw(ws, subprotocol);
        c.send(Body::Hello(v2::Hello {
            token: token.into(),
            client: "server-tests".into(),
            features: features.iter().map(|f| f.to_string()).collect(),
        }))
        .await?;
        match c.recv().await?.body {
            Some(Body::Welcome(w)) => c.welcome = w,
            other => bail!("expected welcome, got {other:?}"),
        }
        Ok(c)
    }

    pub async fn send(&mut self, body: Body) -> Result<()> {
        let bytes = self.codec.encode(&v2::Envelope { body: Some(body) })?;
        self.send_bytes(bytes).await
    }

    pub async fn send_bytes(&mut self, bytes: Bytes) -> Result<()> {
        let msg = if self.codec.subprotocol().encoding == Encoding::Json {
            Message::Text(Utf8Bytes::try_from(bytes)?)
        } else {
            Message::Binary(bytes)
        };
        self.ws.send(msg).await?;
        Ok(())
    }

    /// The next envelope (batches flattened), skipping nothing.
    pub async fn recv_any(&mut self) -> Result<v2::Envelope> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Ok(e);
            }
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("timed out waiting for a frame")?;
            let (bytes, text) = match msg {
                None => bail!("connection ended"),
                Some(m) => match m? {
                    Message::Text(t) => (Bytes::from(t), true),
                    Message::Binary(b) => (b, false),
                    Message::Close(c) => bail!("closed: {c:?}"),
                    _ => continue,
                },
            };
            let env: v2::Envelope = self.codec.decode_frame(&bytes, Some(text))?;
            match env.body {
                Some(Body::Batch(b)) => self.pending.extend(b.envelopes),
                _ => return Ok(env),
            }
        }
    }

    /// The next envelope that is not a server ping.
    pub async fn recv(&mut self) -> Result<v2::Envelope> {
        loop {
            let e = self.recv_any().await?;
            if !matches!(e.body, Some(Body::Ping(_))) {
                return Ok(e);
            }
        }
    }

    pub async fn recv_body(&mut self) -> Result<Body> {
        self.recv().await?.body.context("no body")
    }

    /// Reads until the connection closes, returning the disconnect notice
    /// and the close frame.
    pub async fn closed(&mut self) -> Result<Closed> {
        let mut disconnect = None;
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("timed out waiting for the close")?;
            match msg {
                None => {
                    return Ok(Closed {
                        disconnect,
                        code: None,
                        reason: String::new(),
                    })
                }
                Some(Err(_)) => {
                    return Ok(Closed {
                        disconnect,
                        code: None,
                        reason: String::new(),
                    })
                }
                Some(Ok(Message::Close(c))) => {
                    // Keep polling briefly so tungstenite flushes its close reply,
                    // as a browser would.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(_)) = self.ws.next().await {}
                    })
                    .await;
                    return Ok(Closed {
                        disconnect,
                        code: c.as_ref().map(|c| u16::from(c.code)),
                        reason: c.map(|c| c.reason.to_string()).unwrap_or_default(),
                    });
                }
                Some(Ok(Message::Text(t))) => {
                    disconnect = decode_disconnect(&self.codec, &Bytes::from(t)).or(disconnect)
                }
                Some(Ok(Message::Binary(b))) => {
                    disconnect = decode_disconnect(&self.codec, &b).or(disconnect)
                }
                Some(Ok(_)) => {}
            }
        }
    }

    pub async fn subscribe(
        &mut self,
        id: &str,
        channel: &str,
        resume: Option<v2::StreamPosition>,
    ) -> Result<v2::SubscribeAck> {
        self.send(Body::Subscribe(v2::Subscribe {
            id: id.into(),
            channel: channel.into(),
            resume,
        }))
        .await?;
        match self.recv_body().await? {
            Body::SubscribeAck(a) => Ok(a),
            other => bail!("expected subscribe_ack, got {other:?}"),
        }
    }

    pub async fn publish(
        &mut self,
        id: &str,
        channel: &str,
        value: serde_json::Value,
    ) -> Result<v2::PublishAck> {
        self.send(Body::Publish(v2::Publish {
            id: id.into(),
            channel: channel.into(),
            payload: payload(value),
        }))
        .await?;
        let mut early = Vec::new();
        loop {
            let env = self.recv().await?;
            match env.body {
                Some(Body::PublishAck(a)) => {
                    // Messages that came first are returned by later receives.
                    for e in early.into_iter().rev() {
                        self.pending.push_front(e);
                    }
                    return Ok(a);
                }
                // The publisher's own copy may come first (ORDER-PUBLISH-ACK).
                Some(Body::Message(_)) => early.push(env),
                other => bail!("expected publish_ack, got {other:?}"),
            }
        }
    }

    pub async fn message(&mut self) -> Result<v2::Message> {
        match self.recv_body().await? {
            Body::Message(m) => Ok(m),
            other => bail!("expected message, got {other:?}"),
        }
    }

    pub async fn error(&mut self) -> Result<v2::Error> {
        match self.recv_body().await? {
            Body::Error(e) => Ok(e),
            other => bail!("expected error, got {other:?}"),
        }
    }
}

fn decode_disconnect(codec: &Codec, bytes: &[u8]) -> Option<v2::Disconnect> {
    match codec.decode::<v2::Envelope>(bytes).ok()?.body {
        Some(Body::Disconnect(d)) => Some(d),
        _ => None,
    }
}

/// Asserts the connection closes with `code`, preceded by a matching
/// disconnect (CLOSE-DISCONNECT-NOTICE) and a non-empty reason.
pub async fn expect_close<S: AsyncRead + AsyncWrite + Unpin>(
    c: &mut Client<S>,
    code: u16,
) -> Closed {
    let closed = c.closed().await.expect("close");
    assert_eq!(closed.code, Some(code), "close code: {closed:?}");
    let d = closed
        .disconnect
        .as_ref()
        .unwrap_or_else(|| panic!("no disconnect before close {code}: {closed:?}"));
    assert_eq!(d.code, code as u32);
    assert_eq!(d.reason, closed.reason);
    assert!(
        !closed.reason.is_empty() && closed.reason.len() <= 123,
        "reason: {:?}",
        closed.reason
    );
    closed
}

/// A minimal HTTP/1.1 request; returns status, headers and body.
pub async fn http(
    server: &RunningServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String, Vec<u8>)> {
    let mut tcp = TcpStream::connect(server.local_addr()).await?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    tcp.write_all(req.as_bytes()).await?;
    tcp.write_all(body).await?;
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut out)).await??;
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no head")?;
    let head = String::from_utf8_lossy(&out[..split]).to_string();
    let status = head.split_whitespace().nth(1).context("status")?.parse()?;
    Ok((status, head, out[split + 4..].to_vec()))
}

/// Every subprotocol, for tests that run in each encoding.
pub fn all_subprotocols() -> Vec<&'static str> {
    Subprotocol::ALL.iter().map(|p| p.name()).collect()
}

pub fn v2_json() -> Subprotocol {
    Subprotocol::new(Version::V2, Encoding::Json)
}

/// A connected client that has not sent hello.
pub async fn raw_client(s: &RunningServer, name: &str) -> Client {
    let up = upgrade(s, &[name], &[]).await.unwrap();
    Client::raw(up.ws.unwrap(), sp(name))
}
