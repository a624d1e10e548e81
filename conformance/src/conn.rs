//! The suite's wire client: one WebSocket connection speaking a negotiated
//! subprotocol through the protocol `Codec`, recording every frame sent and
//! received in the case's transcript (decoded to JSON for the reports).
//!
//! The opening handshake is done here rather than by tungstenite's client,
//! because the suite must observe what a strict client refuses: an upgrade
//! that selects no subprotocol (VER-ACCEPT-THEN-CLOSE).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Codec, Encoding, Subprotocol, WireEnvelope};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::case::{fail, CaseError};

/// A byte stream the WebSocket runs over (plain TCP, or TLS for `wss://`).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// One recorded event of a case.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// Milliseconds since the case started.
    pub t_ms: u64,
    /// The connection's label (`c1`, `pub2`, ...).
    pub conn: String,
    /// `send`, `recv` or `note`.
    pub dir: &'static str,
    /// `handshake`, `text`, `binary`, `close`, `ping`, `pong`, `note`.
    pub kind: &'static str,
    /// The frame decoded to JSON, or a description.
    pub text: String,
}

/// The frames of one case, in the order they were sent and received.
#[derive(Debug)]
pub struct Transcript {
    start: Instant,
    entries: Mutex<Kept>,
}

/// The head and the tail of a long transcript (a load case must not hold
/// megabytes, and its end is where failures show).
#[derive(Debug, Default)]
struct Kept {
    head: Vec<Entry>,
    tail: VecDeque<Entry>,
    omitted: usize,
}

const HEAD_ENTRIES: usize = 300;
const TAIL_ENTRIES: usize = 1200;

impl Transcript {
    /// An empty transcript starting now.
    pub fn new() -> Arc<Transcript> {
        Arc::new(Transcript {
            start: Instant::now(),
            entries: Mutex::new(Kept::default()),
        })
    }

    /// Records one entry.
    pub fn record(&self, conn: &str, dir: &'static str, kind: &'static str, text: String) {
        let mut text = text;
        if text.len() > 600 {
            let mut cut = 600;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push('…');
        }
        let entry = Entry {
            t_ms: self.elapsed_ms(),
            conn: conn.to_string(),
            dir,
            kind,
            text,
        };
        let mut k = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if k.head.len() < HEAD_ENTRIES {
            k.head.push(entry);
            return;
        }
        if k.tail.len() == TAIL_ENTRIES {
            k.tail.pop_front();
            k.omitted += 1;
        }
        k.tail.push_back(entry);
    }

    /// A note from the case itself (what it is about to check).
    pub fn note(&self, text: impl Into<String>) {
        self.record("*", "note", "note", text.into());
    }

    /// Everything recorded (the first and last entries of a long case).
    pub fn entries(&self) -> Vec<Entry> {
        let k = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = k.head.clone();
        if k.omitted > 0 {
            let t_ms = k.tail.front().map(|e| e.t_ms).unwrap_or(0);
            let text = format!("… {} entries omitted …", k.omitted);
            out.push(Entry {
                t_ms,
                conn: "*".into(),
                dir: "note",
                kind: "note",
                text,
            });
        }
        out.extend(k.tail.iter().cloned());
        out
    }

    fn elapsed_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// Socket and TLS settings of a connection.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Shrinks the socket receive buffer (slow-consumer cases).
    pub recv_buffer: Option<u32>,
    /// PEM file of extra CA certificates to trust for `wss://`.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// How a connection ended.
#[derive(Debug, Clone, Default)]
pub struct Closed {
    /// The close frame's code (None: no close frame, i.e. 1006).
    pub code: Option<u16>,
    /// The close frame's reason.
    pub reason: String,
    /// The `disconnect` envelope received before the close, if any.
    pub disconnect: Option<v2::Disconnect>,
    /// Envelopes received between the request and the close.
    pub data_frames_before: usize,
}

impl Closed {
    /// The code for messages: `4003` or `1006 (no close frame)`.
    pub fn code_text(&self) -> String {
        match self.code {
            Some(c) => c.to_string(),
            None => "1006 (no close frame)".into(),
        }
    }
}

/// One client connection under test.
pub struct Conn {
    ws: WebSocketStream<Box<dyn Io>>,
    label: String,
    transcript: Arc<Transcript>,
    /// The subprotocol the server selected, if any.
    pub selected: Option<Subprotocol>,
    /// The raw `Sec-WebSocket-Protocol` the server answered.
    pub selected_header: Option<String>,
    codec: Option<Codec>,
    stash: VecDeque<v2::Envelope>,
    /// Answer server `ping` envelopes automatically (default true).
    pub auto_pong: bool,
    /// How long one expected envelope may take to arrive.
    pub step: Duration,
    closed: Option<Closed>,
    disconnect: Option<v2::Disconnect>,
    /// Time of the last `ping` envelope from the server, with its `ts`.
    pub pings: Vec<(Instant, u64)>,
    /// The session's `max_message_bytes` once known: frames from the server
    /// over twice this fail the case (LIMIT-SERVER-FRAME).
    pub max_message_bytes: Option<usize>,
    /// JSON or MessagePack frames received whose first member is not
    /// `type` (ENC-TYPE-FIRST, a SHOULD).
    pub type_not_first: usize,
}

impl Conn {
    /// Opens a WebSocket to `url`, offering `offers` in order.
    pub async fn connect(
        url: &str,
        offers: &[&str],
        label: &str,
        transcript: Arc<Transcript>,
        step: Duration,
    ) -> Result<Conn, CaseError> {
        Conn::connect_with(
            url,
            offers,
            label,
            transcript,
            step,
            &ConnectOptions::default(),
        )
        .await
    }

    /// Like [`Conn::connect`], optionally shrinking the socket's receive
    /// buffer so that a client that stops reading pushes back on the server
    /// after kilobytes rather than megabytes (slow-consumer cases).
    pub async fn connect_with(
        url: &str,
        offers: &[&str],
        label: &str,
        transcript: Arc<Transcript>,
        step: Duration,
        options: &ConnectOptions,
    ) -> Result<Conn, CaseError> {
        let (io, host, path) = open_stream(url, options).await?;
        let mut io = io;
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
        );
        if !offers.is_empty() {
            req.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                offers.join(", ")
            ));
        }
        req.push_str("\r\n");
        transcript.record(
            label,
            "send",
            "handshake",
            format!("GET {path} Sec-WebSocket-Protocol: {}", offers.join(", ")),
        );
        let head = tokio::time::timeout(step, async {
            io.write_all(req.as_bytes()).await?;
            read_head(&mut io).await
        })
        .await
        .map_err(|_| fail(format!("{url}: no handshake response within {step:?}")))?
        .map_err(|e| fail(format!("{url}: handshake failed: {e}")))?;
        let status = head.lines().next().unwrap_or("").to_string();
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let selected_header = header("sec-websocket-protocol");
        transcript.record(
            label,
            "recv",
            "handshake",
            format!(
                "{status}; Sec-WebSocket-Protocol: {}",
                selected_header.as_deref().unwrap_or("(none)")
            ),
        );
        if status.split_whitespace().nth(1) != Some("101") {
            return Err(fail(format!("upgrade refused: `{status}`")));
        }
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        if header("sec-websocket-accept").as_deref() != Some(accept.as_str()) {
            return Err(fail("handshake response has a wrong Sec-WebSocket-Accept"));
        }
        let selected = selected_header
            .as_deref()
            .and_then(|s| s.parse::<Subprotocol>().ok());
        let mut config = WebSocketConfig::default();
        // Big enough for any legal server frame (LIMIT-SERVER-FRAME) of any
        // reasonable deployment, small enough to bound a hostile one.
        config.max_message_size = Some(16 << 20);
        let ws = WebSocketStream::from_raw_socket(io, Role::Client, Some(config)).await;
        Ok(Conn {
            ws,
            label: label.to_string(),
            transcript,
            selected,
            selected_header,
            codec: selected.map(|sp| Codec::new(sp).with_max_message_bytes(16 << 20)),
            stash: VecDeque::new(),
            auto_pong: true,
            step,
            closed: None,
            disconnect: None,
            pings: Vec::new(),
            max_message_bytes: None,
            type_not_first: 0,
        })
    }

    /// The negotiated subprotocol; fails when none was selected.
    pub fn subprotocol(&self) -> Result<Subprotocol, CaseError> {
        self.selected.ok_or_else(|| {
            fail(format!(
                "server selected no subprotocol (header: {:?})",
                self.selected_header
            ))
        })
    }

    /// The connection's label in the transcript.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Encodes and sends one envelope.
    pub async fn send(&mut self, env: &v2::Envelope) -> Result<(), CaseError> {
        let sp = self.subprotocol()?;
        let bytes = Codec::new(sp)
            .encode(env)
            .map_err(|e| fail(format!("suite cannot encode envelope: {e}")))?;
        self.transcript.record(
            &self.label,
            "send",
            if sp.encoding.is_text() {
                "text"
            } else {
                "binary"
            },
            describe(sp, env),
        );
        self.send_frame(sp.encoding, bytes).await
    }

    /// Sends a body (wrapped in an envelope).
    pub async fn send_body(&mut self, body: Body) -> Result<(), CaseError> {
        self.send(&v2::Envelope { body: Some(body) }).await
    }

    async fn send_frame(&mut self, encoding: Encoding, bytes: Bytes) -> Result<(), CaseError> {
        let msg = if encoding.is_text() {
            Message::Text(String::from_utf8_lossy(&bytes).into_owned().into())
        } else {
            Message::Binary(bytes)
        };
        self.ws
            .send(msg)
            .await
            .map_err(|e| fail(format!("send failed on {}: {e}", self.label)))
    }

    /// Sends raw bytes in a text (`text = true`) or binary frame, bypassing the codec.
    pub async fn send_raw(&mut self, bytes: Vec<u8>, text: bool) -> Result<(), CaseError> {
        let shown = if text {
            String::from_utf8_lossy(&bytes).into_owned()
        } else {
            hex_preview(&bytes)
        };
        self.transcript.record(
            &self.label,
            "send",
            if text { "text" } else { "binary" },
            format!("(raw) {shown}"),
        );
        let msg = if text {
            let s = String::from_utf8(bytes).map_err(|_| fail("raw text frame must be UTF-8"))?;
            Message::Text(s.into())
        } else {
            Message::Binary(bytes.into())
        };
        self.ws
            .send(msg)
            .await
            .map_err(|e| fail(format!("send failed on {}: {e}", self.label)))
    }

    /// Sends a WebSocket control ping (counts as liveness, HB-ANY-FRAME).
    pub async fn send_control_ping(&mut self) -> Result<(), CaseError> {
        self.transcript
            .record(&self.label, "send", "ping", "(WebSocket ping frame)".into());
        self.ws
            .send(Message::Ping(Bytes::from_static(b"c")))
            .await
            .map_err(|e| fail(format!("send failed: {e}")))
    }

    /// Sends a close frame with `code` and stops.
    pub async fn close(mut self, code: u16) {
        self.transcript
            .record(&self.label, "send", "close", format!("{code}"));
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "conformance".into(),
        };
        let _ = tokio::time::timeout(Duration::from_millis(500), self.ws.close(Some(frame))).await;
    }

    /// Drops the TCP connection without a close frame (a lost link).
    pub fn drop_link(self) {
        self.transcript.record(
            &self.label,
            "note",
            "note",
            "dropping the TCP connection without a close frame".into(),
        );
        drop(self);
    }

    /// The next envelope or close, waiting at most `wait`; `None` on timeout.
    /// Server `ping`s are answered and skipped while `auto_pong` is set.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, CaseError> {
        if let Some(env) = self.stash.pop_front() {
            return Ok(Some(Event::Env(env)));
        }
        if let Some(c) = &self.closed {
            return Ok(Some(Event::Closed(c.clone())));
        }
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Ok(Some(Event::Closed(self.finish(None, String::new())))),
                Ok(Some(Err(e))) => {
                    self.transcript.record(
                        &self.label,
                        "recv",
                        "close",
                        format!("connection error: {e}"),
                    );
                    return Ok(Some(Event::Closed(self.finish(None, String::new()))));
                }
                Ok(Some(Ok(m))) => m,
            };
            let (bytes, text) = match msg {
                Message::Text(t) => (Bytes::from(t.as_str().as_bytes().to_vec()), true),
                Message::Binary(b) => (b, false),
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                        .unwrap_or((None, String::new()));
                    self.transcript.record(
                        &self.label,
                        "recv",
                        "close",
                        format!(
                            "{} {reason:?}",
                            code.map(|c| c.to_string()).unwrap_or("(no code)".into())
                        ),
                    );
                    return Ok(Some(Event::Closed(
                        self.finish(Some(code.unwrap_or(1005)), reason),
                    )));
                }
                Message::Ping(_) => {
                    self.transcript.record(
                        &self.label,
                        "recv",
                        "ping",
                        "(WebSocket ping frame)".into(),
                    );
                    continue;
                }
                Message::Pong(_) | Message::Frame(_) => continue,
            };
            if let Some(limit) = self.max_message_bytes {
                if limit > 0 && bytes.len() > 2 * limit {
                    self.transcript.record(
                        &self.label,
                        "recv",
                        if text { "text" } else { "binary" },
                        preview(&bytes, text),
                    );
                    return Err(fail(format!("server sent a {}-byte frame, over twice max_message_bytes {limit} (LIMIT-SERVER-FRAME)", bytes.len())));
                }
            }
            let Some(codec) = self.codec else {
                self.transcript.record(
                    &self.label,
                    "recv",
                    if text { "text" } else { "binary" },
                    preview(&bytes, text),
                );
                return Err(fail(
                    "server sent a data frame on a connection without a subprotocol",
                ));
            };
            let type_first = match codec.subprotocol().encoding {
                Encoding::Json => bytes.trim_ascii_start().starts_with(b"{\"type\""),
                // fixmap/map16/map32 header, then the 4-byte str "type".
                Encoding::MsgPack => {
                    let skip = match bytes.first() {
                        Some(0x80..=0x8f) => 1,
                        Some(0xde) => 3,
                        Some(0xdf) => 5,
                        _ => 0,
                    };
                    skip > 0 && bytes.get(skip..skip + 5) == Some(b"\xa4type".as_slice())
                }
                Encoding::Protobuf => true,
            };
            if !type_first {
                self.type_not_first += 1;
            }
            let env = match codec.decode_frame::<v2::Envelope>(&bytes, Some(text)) {
                Ok(env) => env,
                Err(e) => {
                    self.transcript.record(
                        &self.label,
                        "recv",
                        if text { "text" } else { "binary" },
                        preview(&bytes, text),
                    );
                    return Err(fail(format!(
                        "server sent a frame the suite cannot decode in {}: {e}",
                        codec.subprotocol()
                    )));
                }
            };
            self.transcript.record(
                &self.label,
                "recv",
                if text { "text" } else { "binary" },
                describe(codec.subprotocol(), &env),
            );
            match &env.body {
                Some(Body::Ping(p)) => {
                    self.pings.push((Instant::now(), p.ts));
                    if self.auto_pong {
                        self.send_body(Body::Pong(v2::Pong { ts: p.ts })).await?;
                        continue;
                    }
                }
                Some(Body::Disconnect(d)) => self.disconnect = Some(d.clone()),
                Some(Body::Welcome(w)) => {
                    self.max_message_bytes = w.limits.as_ref().map(|l| l.max_message_bytes as usize)
                }
                Some(Body::Batch(b)) => {
                    // BATCH-NOT-HANDSHAKE and BATCH-NO-NESTING, server side.
                    let bad = b
                        .envelopes
                        .iter()
                        .filter_map(|e| e.type_name())
                        .find(|t| matches!(*t, "hello" | "welcome" | "disconnect" | "batch"));
                    if let Some(t) = bad {
                        return Err(fail(format!("server sent a batch containing `{t}` (BATCH-NOT-HANDSHAKE / BATCH-NO-NESTING)")));
                    }
                }
                _ => {}
            }
            return Ok(Some(Event::Env(env)));
        }
    }

    fn finish(&mut self, code: Option<u16>, reason: String) -> Closed {
        if code.is_none() {
            self.transcript.record(
                &self.label,
                "recv",
                "close",
                "connection ended without a close frame".into(),
            );
        }
        let c = Closed {
            code,
            reason,
            disconnect: self.disconnect.clone(),
            data_frames_before: 0,
        };
        self.closed = Some(c.clone());
        c
    }

    /// The next envelope (pings answered and skipped); fails on close or timeout.
    pub async fn recv(&mut self, what: &str) -> Result<v2::Envelope, CaseError> {
        match self.next_event(self.step).await? {
            Some(Event::Env(e)) => Ok(e),
            Some(Event::Closed(c)) => Err(closed_error(&c, what)),
            None => Err(fail(format!(
                "{}: no {what} within {:?}",
                self.label, self.step
            ))),
        }
    }

    /// Reads until `pick` accepts an envelope, stashing the others so that
    /// later reads still see them; fails on close or after `step`.
    pub async fn take<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&v2::Envelope) -> Option<T>,
    ) -> Result<T, CaseError> {
        if let Some(i) = self.stash.iter().position(|e| pick(e).is_some()) {
            let env = self.stash.remove(i).expect("index from position");
            return Ok(pick(&env).expect("matched above"));
        }
        let deadline = Instant::now() + self.step;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await? {
                Some(Event::Env(env)) => {
                    if let Some(t) = pick(&env) {
                        self.stash.extend(seen);
                        return Ok(t);
                    }
                    seen.push(env);
                }
                Some(Event::Closed(c)) => return Err(closed_error(&c, what)),
                None => {
                    let types: Vec<&str> =
                        seen.iter().map(|e| e.type_name().unwrap_or("?")).collect();
                    let msg = format!(
                        "{}: no {what} within {:?} (received instead: [{}])",
                        self.label,
                        self.step,
                        types.join(", ")
                    );
                    self.stash.extend(seen);
                    return Err(fail(msg));
                }
            }
        }
    }

    /// Reads until the connection closes, returning how; envelopes before
    /// the close are counted. Fails if it stays open for `wait`.
    pub async fn expect_close(&mut self, wait: Duration) -> Result<Closed, CaseError> {
        let deadline = Instant::now() + wait;
        let mut frames = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left).await? {
                Some(Event::Env(_)) => frames += 1,
                Some(Event::Closed(mut c)) => {
                    c.data_frames_before = frames;
                    return Ok(c);
                }
                None => return Err(fail(format!("{}: expected the server to close the connection within {wait:?}, it stayed open", self.label))),
            }
        }
    }

    /// Waits `wait` and fails if the connection closes meanwhile; returns the envelopes seen.
    pub async fn expect_open_for(
        &mut self,
        wait: Duration,
    ) -> Result<Vec<v2::Envelope>, CaseError> {
        let deadline = Instant::now() + wait;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(seen);
            }
            match self.next_event(left).await? {
                Some(Event::Env(e)) => seen.push(e),
                Some(Event::Closed(c)) => {
                    return Err(closed_error(&c, "the connection to stay open"))
                }
                None => return Ok(seen),
            }
        }
    }
}

/// What [`Conn::next_event`] returns.
#[derive(Debug, Clone)]
pub enum Event {
    /// A decoded envelope.
    Env(v2::Envelope),
    /// The connection ended.
    Closed(Closed),
}

fn closed_error(c: &Closed, what: &str) -> CaseError {
    let notice = c
        .disconnect
        .as_ref()
        .map(|d| format!(" after disconnect {} {:?}", d.code, d.reason))
        .unwrap_or_default();
    fail(format!(
        "connection closed with {} {:?}{notice} while waiting for {what}",
        c.code_text(),
        c.reason
    ))
}

/// The envelope as JSON text, for transcripts.
pub fn describe(sp: Subprotocol, env: &v2::Envelope) -> String {
    match Codec::new(Subprotocol::new(sp.version, Encoding::Json)).encode(env) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => format!("{env:?} ({e})"),
    }
}

fn preview(bytes: &[u8], text: bool) -> String {
    if text {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        hex_preview(bytes)
    }
}

fn hex_preview(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 64 { "…" } else { "" };
    format!("{} bytes: {shown}{more}", bytes.len())
}

/// Connects the byte stream for `ws://host:port/path`.
async fn open_stream(
    url: &str,
    options: &ConnectOptions,
) -> Result<(Box<dyn Io>, String, String), CaseError> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else {
        return Err(fail(format!("`{url}` is not a ws:// or wss:// URL")));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    let default_port = if tls { 443 } else { 80 };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let cannot = |e: std::io::Error| fail(format!("cannot connect to {addr}: {e}"));
    let sock_addr = tokio::net::lookup_host(&addr)
        .await
        .map_err(cannot)?
        .next()
        .ok_or_else(|| fail(format!("{addr} resolves to nothing")))?;
    let socket = if sock_addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()
    } else {
        tokio::net::TcpSocket::new_v6()
    }
    .map_err(cannot)?;
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size).map_err(cannot)?;
    }
    let tcp = socket.connect(sock_addr).await.map_err(cannot)?;
    let _ = tcp.set_nodelay(true);
    if tls {
        return crate::tls::wrap(tcp, authority, options.tls_ca_file.as_deref())
            .await
            .map(|s| (s, authority.to_string(), path));
    }
    Ok((Box::new(tcp), authority.to_string(), path))
}

/// Reads the HTTP response head byte by byte, so no WebSocket frame bytes
/// that follow it are consumed (a 4002 close may arrive right behind it).
async fn read_head(io: &mut Box<dyn Io>) -> std::io::Result<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other("response head over 16 KiB"));
        }
        let b = io.read_u8().await?;
        head.push(b);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}
