//! The suite's wire client: one WebSocket connection speaking a negotiated
//! subprotocol through the protocol `Codec`, recording every frame sent and
//! received in the case's transcript (decoded to JSON for the reports).
//!
//! A driver task (module `driver`) owns the socket and keeps reading it,
//! so every connection a case holds answers `ping` on its own.
//!
//! The connection itself (URL, TCP, TLS, the upgrade that still accepts a
//! 101 selecting no subprotocol, VER-ACCEPT-THEN-CLOSE) is courier-client's
//! `handshake`, the one the client and the docs' recorder use too.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_client::handshake;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Codec, Encoding, Subprotocol, WireEnvelope};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::protocol::{
    frame::coding::CloseCode, CloseFrame, WebSocketConfig,
};
use tokio_tungstenite::tungstenite::Message;

use crate::case::{fail, CaseError};
use crate::driver::{Cmd, Driver, Incoming, Shared};
pub use crate::transcript::{Entry, Transcript};

/// Socket and TLS settings of a connection.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Shrinks the socket receive buffer (slow-consumer cases).
    pub recv_buffer: Option<u32>,
    /// PEM file of extra CA certificates to trust for `wss://`.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Answer server `ping` envelopes from the start (default true).
    pub auto_pong: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            recv_buffer: None,
            tls_ca_file: None,
            auto_pong: true,
        }
    }
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

/// One client connection under test. A driver task owns the socket and
/// reads it continuously (module `driver`): server `ping`s are
/// answered even while the case waits on another connection.
pub struct Conn {
    cmds: mpsc::UnboundedSender<Cmd>,
    incoming: mpsc::Receiver<Incoming>,
    reading: watch::Sender<bool>,
    shared: Arc<Shared>,
    label: String,
    transcript: Arc<Transcript>,
    /// The subprotocol the server selected, if any.
    pub selected: Option<Subprotocol>,
    /// The raw `Sec-WebSocket-Protocol` the server answered.
    pub selected_header: Option<String>,
    stash: VecDeque<v2::Envelope>,
    /// How long one expected envelope may take to arrive.
    pub step: Duration,
    closed: Option<Closed>,
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
        // The workspace's one upgrade (courier-client's `handshake`), which
        // accepts a 101 without a subprotocol so its close can be checked.
        let endpoint = endpoint(url, options)?;
        let path = &endpoint.url.path;
        transcript.record(
            label,
            "send",
            "handshake",
            format!("GET {path} Sec-WebSocket-Protocol: {}", offers.join(", ")),
        );
        let mut config = WebSocketConfig::default();
        // Big enough for any legal server frame (LIMIT-SERVER-FRAME) of any
        // reasonable deployment, small enough to bound a hostile one.
        config.max_message_size = Some(16 << 20);
        let addr = &endpoint.url.authority;
        let up = tokio::time::timeout(step, async {
            let stream = handshake::dial_with(&endpoint, options.recv_buffer)
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            handshake::upgrade(stream, &endpoint.url, offers, config)
                .await
                .map_err(|e| format!("{url}: handshake failed: {e}"))
        })
        .await
        .map_err(|_| fail(format!("{url}: no handshake response within {step:?}")))?;
        let up = match up {
            Ok(up) => up,
            Err(e) => {
                transcript.record(label, "recv", "handshake", e.clone());
                return Err(fail(e));
            }
        };
        let selected_header = up.selected;
        transcript.record(
            label,
            "recv",
            "handshake",
            format!(
                "{}; Sec-WebSocket-Protocol: {}",
                up.status_line,
                selected_header.as_deref().unwrap_or("(none)")
            ),
        );
        let selected = selected_header
            .as_deref()
            .and_then(|s| s.parse::<Subprotocol>().ok());
        let ws = up.ws;
        let shared = Arc::new(Shared::default());
        shared.auto_pong.store(options.auto_pong, Ordering::Relaxed);
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::channel(crate::driver::QUEUE);
        let (reading_tx, reading_rx) = watch::channel(true);
        let driver = Driver {
            ws,
            label: label.to_string(),
            transcript: transcript.clone(),
            codec: selected.map(|sp| Codec::new(sp).with_max_message_bytes(16 << 20)),
            shared: shared.clone(),
            cmds: cmd_rx,
            out: out_tx,
            reading: reading_rx,
        };
        tokio::spawn(driver.run());
        Ok(Conn {
            cmds: cmd_tx,
            incoming: out_rx,
            reading: reading_tx,
            shared,
            label: label.to_string(),
            transcript,
            selected,
            selected_header,
            stash: VecDeque::new(),
            step,
            closed: None,
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

    /// Whether server `ping` envelopes are answered automatically (default
    /// true). Heartbeat cases turn it off to stay silent.
    pub fn set_auto_pong(&self, on: bool) {
        self.shared.auto_pong.store(on, Ordering::Relaxed);
    }

    /// Arrival time and `ts` of every server `ping` so far.
    pub fn pings(&self) -> Vec<(Instant, u64)> {
        self.shared
            .pings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// JSON or MessagePack frames received whose first member is not
    /// `type` (ENC-TYPE-FIRST, a SHOULD).
    pub fn type_not_first(&self) -> usize {
        *self
            .shared
            .type_not_first
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Stops reading the socket (the server's frames back up in its queue
    /// and the kernel's buffers); pings go unanswered meanwhile.
    pub fn pause_reading(&self) {
        self.transcript.record(
            &self.label,
            "note",
            "note",
            "the suite stops reading this connection".into(),
        );
        let _ = self.reading.send(false);
    }

    /// Reads the socket again after [`Conn::pause_reading`].
    pub fn resume_reading(&self) {
        let _ = self.reading.send(true);
    }

    async fn command(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Cmd,
    ) -> Result<(), CaseError> {
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(make(tx))
            .map_err(|_| fail(format!("send failed on {}: connection gone", self.label)))?;
        rx.await
            .map_err(|_| fail(format!("send failed on {}: connection gone", self.label)))?
            .map_err(|e| fail(format!("send failed on {}: {e}", self.label)))
    }

    /// Encodes and sends one envelope. An envelope the spec forbids a
    /// client to send (an integer over 2^53−1, ENC-INT53) is refused: the
    /// suite sends invalid frames only on purpose, through [`Conn::send_raw`].
    pub async fn send(&mut self, env: &v2::Envelope) -> Result<(), CaseError> {
        let sp = self.subprotocol()?;
        if let Some(what) = crate::guard::forbidden_content(env) {
            self.transcript.note(format!(
                "{}: the suite refused to send {}: {what}",
                self.label,
                describe(sp, env)
            ));
            return Err(fail(format!(
                "the server's numbering made this case impossible: the suite would have had to send {what}, which ENC-INT53 forbids (a value derived from the positions or acks the server sent; see the seq.* cases)"
            )));
        }
        let codec = Codec::new(sp);
        let bytes = codec
            .encode(env)
            .map_err(|e| fail(format!("suite cannot encode envelope: {e}")))?;
        self.transcript.record_frame(
            &self.label,
            "send",
            if sp.encoding.is_text() {
                "text"
            } else {
                "binary"
            },
            describe(sp, env),
            &bytes,
        );
        let msg = courier_client::raw::to_message(bytes, &codec);
        self.command(|tx| Cmd::Send(msg, tx)).await
    }

    /// Sends a body (wrapped in an envelope).
    pub async fn send_body(&mut self, body: Body) -> Result<(), CaseError> {
        self.send(&v2::Envelope { body: Some(body) }).await
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
        self.command(|tx| Cmd::Send(msg, tx)).await
    }

    /// Writes bytes to the socket below the WebSocket layer (a frame header
    /// announcing more than is sent, for the oversize cases). `what` names
    /// them in the transcript.
    pub async fn send_socket_bytes(&mut self, bytes: Vec<u8>, what: &str) -> Result<(), CaseError> {
        self.transcript
            .record(&self.label, "send", "binary", format!("(socket) {what}"));
        self.command(|tx| Cmd::Raw(bytes, tx)).await
    }

    /// Sends a WebSocket control ping (counts as liveness, HB-ANY-FRAME).
    pub async fn send_control_ping(&mut self) -> Result<(), CaseError> {
        self.transcript
            .record(&self.label, "send", "ping", "(WebSocket ping frame)".into());
        self.command(|tx| Cmd::Send(Message::Ping(Bytes::from_static(b"c")), tx))
            .await
    }

    /// Sends a close frame with `code` and stops.
    pub async fn close(self, code: u16) {
        self.transcript
            .record(&self.label, "send", "close", format!("{code}"));
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: "conformance".into(),
        };
        let _ = tokio::time::timeout(
            Duration::from_millis(500),
            self.command(|tx| Cmd::Close(Message::Close(Some(frame)), tx)),
        )
        .await;
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
    /// Server `ping`s are answered and skipped while auto-pong is on. A
    /// close returned here is one the case asked for.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, CaseError> {
        let ev = self.next_inner(wait).await?;
        if matches!(ev, Some(Event::Closed(_))) {
            self.transcript.close_expected(&self.label);
        }
        Ok(ev)
    }

    async fn next_inner(&mut self, wait: Duration) -> Result<Option<Event>, CaseError> {
        if let Some(env) = self.stash.pop_front() {
            return Ok(Some(Event::Env(env)));
        }
        if let Some(c) = &self.closed {
            return Ok(Some(Event::Closed(c.clone())));
        }
        match tokio::time::timeout(wait, self.incoming.recv()).await {
            Err(_) => Ok(None),
            Ok(None) => {
                let c = Closed::default();
                self.closed = Some(c.clone());
                Ok(Some(Event::Closed(c)))
            }
            Ok(Some(Incoming::Env(env))) => Ok(Some(Event::Env(env))),
            Ok(Some(Incoming::Error(e))) => Err(e),
            Ok(Some(Incoming::Closed(c))) => {
                self.closed = Some(c.clone());
                Ok(Some(Event::Closed(c)))
            }
        }
    }

    /// The next envelope (pings answered and skipped); fails on close or timeout.
    pub async fn recv(&mut self, what: &str) -> Result<v2::Envelope, CaseError> {
        match self.next_inner(self.step).await? {
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
            match self.next_inner(left).await? {
                Some(Event::Env(env)) => {
                    if let Some(t) = pick(&env) {
                        self.stash.extend(seen);
                        return Ok(t);
                    }
                    seen.push(env);
                }
                Some(Event::Closed(c)) => return Err(closed_error(&c, what)),
                None => {
                    let shown: Vec<String> = self.stash.iter().chain(&seen).map(summary).collect();
                    let msg = format!(
                        "{}: no {what} within {:?} (received meanwhile: [{}])",
                        self.label,
                        self.step,
                        shown.join(", ")
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
            match self.next_inner(left).await? {
                Some(Event::Env(e)) => seen.push(e),
                Some(Event::Closed(c)) => {
                    return Err(closed_error(&c, "the connection to stay open"))
                }
                None => return Ok(seen),
            }
        }
    }
}

/// An envelope in a few words for failure messages: `message(chat seq 3)`.
pub fn summary(e: &v2::Envelope) -> String {
    match &e.body {
        Some(Body::Message(m)) => format!("message({} seq {})", m.channel, m.seq),
        Some(Body::Error(x)) => format!(
            "error({} id {:?})",
            v2::ErrorCode::try_from(x.code)
                .map(|c| c.as_str_name())
                .unwrap_or("?"),
            x.id
        ),
        Some(Body::PublishAck(a)) => format!("publish_ack({} seq {})", a.id, a.seq),
        Some(Body::SubscribeAck(a)) => format!("subscribe_ack({})", a.channel),
        _ => e.type_name().unwrap_or("?").to_string(),
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
    let meaning = c
        .code
        .and_then(crate::transcript::close_meaning)
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let notice = c
        .disconnect
        .as_ref()
        .map(|d| format!(" after disconnect {} {:?}", d.code, d.reason))
        .unwrap_or_default();
    fail(format!(
        "connection closed by the server with {}{meaning} {:?}{notice} while waiting for {what}",
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

pub(crate) fn hex_preview(bytes: &[u8]) -> String {
    let shown: String = bytes.iter().take(64).map(|b| format!("{b:02x}")).collect();
    let more = if bytes.len() > 64 { "…" } else { "" };
    format!("{} bytes: {shown}{more}", bytes.len())
}

/// The endpoint of `url`, trusting the web roots and the profile's
/// `tls_ca_file` for `wss://`.
fn endpoint(url: &str, options: &ConnectOptions) -> Result<handshake::Endpoint, CaseError> {
    let mut config = courier_client::ClientConfig::new(url);
    if let Some(path) = &options.tls_ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
        config
            .add_root_certificates_pem(&pem)
            .map_err(|e| fail(format!("tls_ca_file {}: {e}", path.display())))?;
    }
    handshake::Endpoint::from_config(&config).map_err(|e| fail(e.to_string()))
}
