//! The scripted server of the client suite: a WebSocket listener on a free
//! loopback port that speaks both versions and all three encodings through
//! the protocol `Codec`, and does exactly what its case says, including what
//! a conforming server never does (drop a link without a close, go silent,
//! select a subprotocol the client did not offer).
//!
//! Each accepted connection is a [`Peer`]. A task reads it continuously:
//! it records every frame in the transcript, answers the client's `ping`
//! (unless the case made the link a black hole), notes every frame that
//! breaks a rule of the client's (HELLO-FIRST, HELLO-ONCE,
//! SESSION-CLIENT-TYPES, BATCH-NOT-HANDSHAKE) and queues the envelopes for
//! the case.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::subprotocol::negotiate;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Codec, Encoding, Subprotocol};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::case::{fail, CaseError};
use crate::conn::{describe, hex_preview};
use crate::transcript::Transcript;

/// How the server answers the next upgrade's subprotocol offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Select {
    /// VER-HIGHEST-COMMON among these (the case's subprotocol, usually).
    Negotiate(Vec<Subprotocol>),
    /// This name, whatever was offered (VER-CLIENT-VERIFY).
    Force(String),
    /// No subprotocol at all (the server then closes with 4002).
    Nothing,
}

/// A listener for one case.
pub struct ScriptServer {
    listener: TcpListener,
    url: String,
    transcript: Arc<Transcript>,
    labels: Arc<AtomicUsize>,
    /// How the next upgrade is answered.
    pub select: Select,
    /// How long one expected event may take.
    pub step: Duration,
}

/// One accepted WebSocket connection.
pub struct Peer {
    /// The transcript label (`s1`, `s2`, ...).
    pub label: String,
    /// What the client offered, in its order.
    pub offers: Vec<String>,
    /// The subprotocol selected (None after [`Select::Nothing`] or a forced
    /// name that is not a Courier subprotocol).
    pub sp: Option<Subprotocol>,
    /// When the TCP connection was accepted.
    pub accepted_at: Instant,
    codec: Codec,
    sink: Arc<tokio::sync::Mutex<Option<Sink>>>,
    rx: mpsc::UnboundedReceiver<In>,
    reader: tokio::task::JoinHandle<()>,
    shared: Arc<PeerShared>,
    transcript: Arc<Transcript>,
    stash: VecDeque<v2::Envelope>,
    closed: Option<ClientClose>,
    step: Duration,
}

type Sink = SplitSink<WebSocketStream<TcpStream>, Message>;

/// How the client ended a connection.
#[derive(Debug, Clone)]
pub struct ClientClose {
    /// The close frame's code (None: the TCP connection ended without one).
    pub code: Option<u16>,
    /// Its reason.
    pub reason: String,
    /// When it arrived.
    pub at: Instant,
}

enum In {
    Env(v2::Envelope),
    Closed(ClientClose),
}

#[derive(Default)]
struct PeerShared {
    /// A black hole answers nothing (no `pong` to the client's `ping`).
    silent: AtomicBool,
    /// Frames received, `hello` included.
    frames: AtomicUsize,
    /// The largest data frame received, in bytes.
    largest: AtomicUsize,
    /// Rules of the client's that a frame broke.
    violations: Mutex<Vec<String>>,
}

impl ScriptServer {
    /// Binds a free loopback port.
    pub async fn start(
        transcript: Arc<Transcript>,
        labels: Arc<AtomicUsize>,
        sp: Subprotocol,
        step: Duration,
    ) -> Result<ScriptServer, CaseError> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| fail(format!("cannot bind a loopback port: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| fail(format!("listener address: {e}")))?
            .port();
        Ok(ScriptServer {
            listener,
            url: format!("ws://127.0.0.1:{port}/ws"),
            transcript,
            labels,
            select: Select::Negotiate(vec![sp]),
            step,
        })
    }

    /// The URL the client connects to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next connection, within one step.
    pub async fn accept(&mut self) -> Result<Peer, CaseError> {
        let step = self.step;
        self.accept_within(step)
            .await?
            .ok_or_else(|| fail(format!("the client did not connect within {step:?}")))
    }

    /// The next connection, or `None` if none comes within `d`.
    pub async fn accept_within(&mut self, d: Duration) -> Result<Option<Peer>, CaseError> {
        let Some((tcp, at)) = self.accept_tcp(d).await else {
            return Ok(None);
        };
        self.upgrade(tcp, at).await.map(Some)
    }

    /// The next TCP connection, without a WebSocket handshake (drop it to
    /// fail the client's attempt), or `None` if none comes within `d`.
    pub async fn accept_tcp(&mut self, d: Duration) -> Option<(TcpStream, Instant)> {
        let (tcp, _) = tokio::time::timeout(d, self.listener.accept())
            .await
            .ok()?
            .ok()?;
        let _ = tcp.set_nodelay(true);
        Some((tcp, Instant::now()))
    }

    /// Does the WebSocket handshake on an accepted connection.
    // The callback's error type is tungstenite's (`Callback`), not ours.
    #[allow(clippy::result_large_err)]
    pub async fn upgrade(&mut self, tcp: TcpStream, at: Instant) -> Result<Peer, CaseError> {
        let label = format!("s{}", self.labels.fetch_add(1, Ordering::Relaxed) + 1);
        let seen: Arc<Mutex<(Vec<String>, Option<String>)>> = Arc::default();
        let select = self.select.clone();
        let seen2 = seen.clone();
        let callback = move |req: &Request,
                             mut resp: Response|
              -> Result<Response, ErrorResponse> {
            let offers: Vec<String> = req
                .headers()
                .get_all("Sec-WebSocket-Protocol")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let chosen = match &select {
                Select::Negotiate(supported) => {
                    negotiate(offers.iter().map(String::as_str), supported).map(|s| s.to_string())
                }
                Select::Force(name) => Some(name.clone()),
                Select::Nothing => None,
            };
            if let Some(name) = &chosen {
                if let Ok(v) = HeaderValue::from_str(name) {
                    resp.headers_mut().insert("Sec-WebSocket-Protocol", v);
                }
            }
            *seen2.lock().unwrap_or_else(|p| p.into_inner()) = (offers, chosen);
            Ok(resp)
        };
        let mut config = WebSocketConfig::default();
        config.max_message_size = Some(16 << 20);
        let ws = tokio::time::timeout(
            self.step,
            tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(config)),
        )
        .await
        .map_err(|_| {
            fail(format!(
                "{label}: the client's WebSocket upgrade did not complete"
            ))
        })?
        .map_err(|e| fail(format!("{label}: WebSocket upgrade failed: {e}")))?;
        let (offers, chosen) = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
        self.transcript.record(
            &label,
            "recv",
            "handshake",
            format!(
                "upgrade offering [{}]; answered with {}",
                offers.join(", "),
                chosen.as_deref().unwrap_or("no subprotocol")
            ),
        );
        let sp = chosen
            .as_deref()
            .and_then(|n| n.parse::<Subprotocol>().ok());
        // Frames are decoded in the subprotocol selected, or, when the case
        // forced a foreign one, in the first offer (what the client speaks).
        let speak = sp
            .or_else(|| offers.first().and_then(|o| o.parse().ok()))
            .unwrap_or(Subprotocol::ALL[0]);
        let codec = Codec::new(speak).with_max_message_bytes(16 << 20);
        let (sink, stream) = ws.split();
        let sink = Arc::new(tokio::sync::Mutex::new(Some(sink)));
        let shared = Arc::new(PeerShared::default());
        let (tx, rx) = mpsc::unbounded_channel();
        let reader = tokio::spawn(read_loop(Reader {
            stream,
            sink: sink.clone(),
            codec,
            label: label.clone(),
            transcript: self.transcript.clone(),
            shared: shared.clone(),
            out: tx,
        }));
        Ok(Peer {
            label,
            offers,
            sp,
            accepted_at: at,
            codec,
            sink,
            rx,
            reader,
            shared,
            transcript: self.transcript.clone(),
            stash: VecDeque::new(),
            closed: None,
            step: self.step,
        })
    }
}

struct Reader {
    stream: SplitStream<WebSocketStream<TcpStream>>,
    sink: Arc<tokio::sync::Mutex<Option<Sink>>>,
    codec: Codec,
    label: String,
    transcript: Arc<Transcript>,
    shared: Arc<PeerShared>,
    out: mpsc::UnboundedSender<In>,
}

async fn read_loop(mut r: Reader) {
    let mut hellos = 0usize;
    loop {
        let msg = r.stream.next().await;
        let (bytes, text) = match msg {
            Some(Ok(Message::Text(t))) => (Bytes::from(t.as_str().as_bytes().to_vec()), true),
            Some(Ok(Message::Binary(b))) => (b, false),
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = frame
                    .map(|f| (Some(u16::from(f.code)), f.reason.to_string()))
                    .unwrap_or((Some(1005), String::new()));
                r.transcript.record(
                    &r.label,
                    "recv",
                    "close",
                    format!("close {} {reason:?}", code.unwrap_or(1005)),
                );
                let _ = r.out.send(In::Closed(ClientClose {
                    code,
                    reason,
                    at: Instant::now(),
                }));
                // Reading on lets tungstenite send the close echo and see
                // the TCP connection end.
                let drain = async { while r.stream.next().await.is_some() {} };
                let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
                // The server ends the TCP connection after the close handshake
                // (RFC 6455 §7.1.1); clients such as Node's `ws` wait for it
                // before they report the close.
                r.sink.lock().await.take();
                return;
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                r.transcript
                    .record(&r.label, "recv", "close", format!("connection error: {e}"));
                let _ = r.out.send(In::Closed(ClientClose {
                    code: None,
                    reason: e.to_string(),
                    at: Instant::now(),
                }));
                return;
            }
            None => {
                r.transcript.record(
                    &r.label,
                    "recv",
                    "close",
                    "the client ended the TCP connection without a close frame".into(),
                );
                let _ = r.out.send(In::Closed(ClientClose {
                    code: None,
                    reason: String::new(),
                    at: Instant::now(),
                }));
                return;
            }
        };
        let n = r.shared.frames.fetch_add(1, Ordering::Relaxed);
        r.shared.largest.fetch_max(bytes.len(), Ordering::Relaxed);
        let violate = |what: String| {
            r.shared
                .violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(what)
        };
        let env = match r
            .codec
            .decode_frame_bytes::<v2::Envelope>(bytes.clone(), Some(text))
        {
            Ok(env) => env,
            Err(e) => {
                r.transcript
                    .record(&r.label, "recv", "binary", hex_preview(&bytes));
                violate(format!(
                    "the client sent a frame the {} codec rejects: {e}",
                    r.codec.subprotocol()
                ));
                continue;
            }
        };
        let sp = r.codec.subprotocol();
        r.transcript.record(
            &r.label,
            "recv",
            if text { "text" } else { "binary" },
            describe(sp, &env),
        );
        let body = env.body.as_ref();
        // HELLO-FIRST, HELLO-ONCE, SESSION-CLIENT-TYPES, BATCH-NOT-HANDSHAKE.
        match body {
            Some(Body::Hello(_)) => {
                hellos += 1;
                if hellos > 1 {
                    violate(
                        "HELLO-ONCE: the client sent a second `hello` on one connection".into(),
                    );
                }
            }
            Some(b) if n == 0 => violate(format!(
                "HELLO-FIRST: the client's first envelope was `{}`, not `hello`",
                type_name(b)
            )),
            Some(Body::Batch(b))
                if b.envelopes
                    .iter()
                    .any(|e| matches!(e.body, Some(Body::Hello(_)))) =>
            {
                violate("BATCH-NOT-HANDSHAKE: the client put `hello` in a batch".into())
            }
            Some(b) if server_only(b) => violate(format!(
                "SESSION-CLIENT-TYPES: the client sent `{}`, a type only servers send",
                type_name(b)
            )),
            _ => {}
        }
        // HB-CLIENT-PING-ANSWERED is the server's duty: answer unless silent.
        if let Some(Body::Ping(p)) = body {
            if !r.shared.silent.load(Ordering::Relaxed) {
                let pong = v2::Envelope {
                    body: Some(Body::Pong(v2::Pong { ts: p.ts })),
                };
                if let Ok(frame) = r.codec.encode(&pong) {
                    r.transcript
                        .record(&r.label, "send", "text", describe(sp, &pong));
                    let mut sink = r.sink.lock().await;
                    if let Some(s) = sink.as_mut() {
                        let _ = s.send(frame_message(sp, frame)).await;
                    }
                }
            }
            continue;
        }
        if r.out.send(In::Env(env)).is_err() {
            return;
        }
    }
}

fn frame_message(sp: Subprotocol, frame: Bytes) -> Message {
    if sp.encoding == Encoding::Json {
        Message::Text(String::from_utf8_lossy(&frame).into_owned().into())
    } else {
        Message::Binary(frame)
    }
}

/// The envelope's `type` name.
pub fn type_name(b: &Body) -> &'static str {
    let probe = v2::Envelope {
        body: Some(b.clone()),
    };
    courier_protocol::WireEnvelope::type_name(&probe).unwrap_or("?")
}

fn server_only(b: &Body) -> bool {
    matches!(
        b,
        Body::Welcome(_)
            | Body::Refreshed(_)
            | Body::ReauthRequest(_)
            | Body::SubscribeAck(_)
            | Body::UnsubscribeAck(_)
            | Body::PublishAck(_)
            | Body::Message(_)
            | Body::Presence(_)
            | Body::PresenceEvent(_)
            | Body::RpcResponse(_)
            | Body::Error(_)
            | Body::Disconnect(_)
    )
}

impl Peer {
    /// The subprotocol frames are exchanged in.
    pub fn subprotocol(&self) -> Subprotocol {
        self.codec.subprotocol()
    }

    /// The rules of the client's that its frames broke so far.
    pub fn violations(&self) -> Vec<String> {
        self.shared
            .violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many frames the client sent.
    pub fn frames_received(&self) -> usize {
        self.shared.frames.load(Ordering::Relaxed)
    }

    /// The largest data frame the client sent, in bytes.
    pub fn largest_frame(&self) -> usize {
        self.shared.largest.load(Ordering::Relaxed)
    }

    /// Sends one envelope.
    pub async fn send(&mut self, body: Body) -> Result<(), CaseError> {
        let env = v2::Envelope { body: Some(body) };
        let sp = self.codec.subprotocol();
        let frame = self.codec.encode(&env).map_err(|e| {
            fail(format!(
                "the suite cannot encode {}: {e}",
                describe(sp, &env)
            ))
        })?;
        self.transcript.record(
            &self.label,
            "send",
            if sp.encoding.is_text() {
                "text"
            } else {
                "binary"
            },
            describe(sp, &env),
        );
        self.send_message(frame_message(sp, frame)).await
    }

    /// Sends one WebSocket message as it is (hand-built frames).
    pub async fn send_message(&mut self, m: Message) -> Result<(), CaseError> {
        let mut sink = self.sink.lock().await;
        let Some(s) = sink.as_mut() else {
            return Err(fail(format!("{}: the link is already dropped", self.label)));
        };
        // A client that already closed makes the write fail: not the case's
        // concern here (what it checks comes from the events).
        let _ = s.send(m).await;
        Ok(())
    }

    /// Closes with `code` and `reason` (the client answers the close).
    pub async fn close(&mut self, code: u16, reason: &str) {
        self.transcript.record(
            &self.label,
            "send",
            "close",
            format!("close {code} {reason:?}"),
        );
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.into(),
        };
        let _ = self.send_message(Message::Close(Some(frame))).await;
    }

    /// Sends `disconnect` (with `retry_after_ms` in version 2) and closes
    /// with the same code, as a server must.
    pub async fn disconnect(&mut self, code: u16, reason: &str, retry_after_ms: Option<u64>) {
        let _ = self
            .send(Body::Disconnect(v2::Disconnect {
                code: code as u32,
                reason: reason.into(),
                retry_after_ms,
            }))
            .await;
        self.close(code, reason).await;
    }

    /// Ends the TCP connection without a close frame (a lost link: the
    /// client sees 1006).
    pub async fn drop_link(&mut self) {
        self.transcript.record(
            &self.label,
            "send",
            "close",
            "link dropped: TCP closed without a close frame".into(),
        );
        self.reader.abort();
        let sink = self.sink.lock().await.take();
        if let Some(mut s) = sink {
            // Closing the split half shuts the TCP stream down once both
            // halves are gone; no close frame is written.
            let _ = s.flush().await;
            drop(s);
        }
        self.closed.get_or_insert(ClientClose {
            code: None,
            reason: "dropped by the suite".into(),
            at: Instant::now(),
        });
    }

    /// Makes the link a black hole: the server sends nothing from now on,
    /// not even `pong`, and keeps the TCP connection open.
    pub fn black_hole(&self) {
        self.transcript.record(
            &self.label,
            "send",
            "note",
            "black hole: the server sends nothing from now on".into(),
        );
        self.shared.silent.store(true, Ordering::Relaxed);
    }

    /// The next envelope from the client within one step (`ping`s are
    /// answered by the reader and not returned).
    pub async fn recv(&mut self) -> Result<v2::Envelope, CaseError> {
        let step = self.step;
        self.recv_within(step).await?.ok_or_else(|| {
            fail(format!(
                "{}: the client sent nothing within {step:?}",
                self.label
            ))
        })
    }

    /// The next envelope within `d`: `None` when none comes; a failure when
    /// the client closed the connection.
    pub async fn recv_within(&mut self, d: Duration) -> Result<Option<v2::Envelope>, CaseError> {
        if let Some(e) = self.stash.pop_front() {
            return Ok(Some(e));
        }
        if let Some(c) = &self.closed {
            return Err(closed_fail(&self.label, c));
        }
        match tokio::time::timeout(d, self.rx.recv()).await {
            Err(_) => Ok(None),
            Ok(Some(In::Env(e))) => Ok(Some(e)),
            Ok(Some(In::Closed(c))) => {
                let f = closed_fail(&self.label, &c);
                self.closed = Some(c);
                Err(f)
            }
            Ok(None) => {
                let c = ClientClose {
                    code: None,
                    reason: String::new(),
                    at: Instant::now(),
                };
                let f = closed_fail(&self.label, &c);
                self.closed = Some(c);
                Err(f)
            }
        }
    }

    /// Waits for an envelope `f` accepts, keeping the others for later.
    pub async fn expect<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&Body) -> Option<T>,
    ) -> Result<T, CaseError> {
        let deadline = Instant::now() + self.step;
        let mut skipped = Vec::new();
        let mut stash = std::mem::take(&mut self.stash);
        let mut found = None;
        while let Some(e) = stash.pop_front() {
            if found.is_none() {
                if let Some(t) = e.body.as_ref().and_then(&mut f) {
                    found = Some(t);
                    continue;
                }
            }
            skipped.push(e);
        }
        if let Some(t) = found {
            self.stash = skipped.into();
            return Ok(t);
        }
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv_within(left).await {
                Ok(Some(e)) => match e.body.as_ref().and_then(&mut f) {
                    Some(t) => break Ok(t),
                    None => skipped.push(e),
                },
                Ok(None) => {
                    break Err(fail(format!(
                        "{}: expected {what} from the client within {:?}; it sent {}",
                        self.label,
                        self.step,
                        summary(&skipped)
                    )))
                }
                Err(CaseError::Fail(m)) => {
                    break Err(fail(format!("{m} while waiting for {what}")))
                }
                Err(e) => break Err(e),
            }
        };
        self.stash.extend(skipped);
        result
    }

    /// Everything the client sends within `d` (a failure if it closes).
    pub async fn collect(&mut self, d: Duration) -> Result<Vec<v2::Envelope>, CaseError> {
        let deadline = Instant::now() + d;
        let mut out: Vec<v2::Envelope> = self.stash.drain(..).collect();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(out);
            }
            match self.recv_within(left).await? {
                Some(e) => out.push(e),
                None => return Ok(out),
            }
        }
    }

    /// Waits for the client to end the connection within `d`: its close
    /// frame (or `code: None` for a connection ended without one), or
    /// `None` when it stays open. Envelopes meanwhile are kept.
    pub async fn wait_closed(&mut self, d: Duration) -> Option<ClientClose> {
        if let Some(c) = &self.closed {
            return Some(c.clone());
        }
        let deadline = Instant::now() + d;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.rx.recv()).await {
                Err(_) => return None,
                Ok(Some(In::Env(e))) => self.stash.push_back(e),
                Ok(Some(In::Closed(c))) => {
                    self.closed = Some(c.clone());
                    return Some(c);
                }
                Ok(None) => {
                    let c = ClientClose {
                        code: None,
                        reason: String::new(),
                        at: Instant::now(),
                    };
                    self.closed = Some(c.clone());
                    return Some(c);
                }
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

fn closed_fail(label: &str, c: &ClientClose) -> CaseError {
    match c.code {
        Some(code) => fail(format!(
            "{label}: the client closed the connection with {code} {:?}",
            c.reason
        )),
        None => fail(format!(
            "{label}: the client ended the connection without a close frame{}",
            if c.reason.is_empty() {
                String::new()
            } else {
                format!(" ({})", c.reason)
            }
        )),
    }
}

fn summary(envs: &[v2::Envelope]) -> String {
    if envs.is_empty() {
        return "nothing".into();
    }
    let names: Vec<&str> = envs
        .iter()
        .filter_map(|e| e.body.as_ref().map(type_name))
        .collect();
    names.join(", ")
}
