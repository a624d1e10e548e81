//! The task that owns one suite connection's socket. It reads every frame
//! as it arrives, whatever the case is doing, so that a connection the case
//! is not reading still answers the server's `ping` (HB-PONG) and is never
//! closed for silence (4200) behind the case's back; it decodes each frame,
//! records it in the transcript and queues it for the case. It also writes
//! the case's frames, and pauses reading on request (slow-consumer cases).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Codec, Encoding, WireEnvelope};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::case::{fail, CaseError};
use crate::conn::{describe, hex_preview, Closed};
use crate::transcript::Transcript;

/// Envelopes queued for the case before the driver stops reading (and the
/// server's own limits take over). Bounds the memory of a connection whose
/// case never reads it.
pub(crate) const QUEUE: usize = 8192;

/// What the driver hands the case.
pub(crate) enum Incoming {
    /// A decoded envelope.
    Env(v2::Envelope),
    /// The connection ended (sent once, last).
    Closed(Closed),
    /// A frame broke the spec in a way that fails the case.
    Error(CaseError),
}

/// What the case asks the driver to do.
pub(crate) enum Cmd {
    /// Send one WebSocket message; the result is reported back.
    Send(Message, oneshot::Sender<Result<(), String>>),
    /// Write bytes to the socket as they are, bypassing the WebSocket framing.
    Raw(Vec<u8>, oneshot::Sender<Result<(), String>>),
    /// Send a close frame: the server's close that follows is an echo.
    Close(Message, oneshot::Sender<Result<(), String>>),
}

/// State the case reads while the driver runs.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Answer `ping` envelopes automatically.
    pub auto_pong: AtomicBool,
    /// Arrival time and `ts` of every server `ping`.
    pub pings: Mutex<Vec<(Instant, u64)>>,
    /// JSON or MessagePack frames whose first member is not `type`.
    pub type_not_first: Mutex<usize>,
}

pub(crate) struct Driver {
    pub ws:
        WebSocketStream<courier_client::handshake::CloseCodes<courier_client::handshake::Stream>>,
    pub label: String,
    pub transcript: Arc<Transcript>,
    pub codec: Option<Codec>,
    pub shared: Arc<Shared>,
    pub cmds: mpsc::UnboundedReceiver<Cmd>,
    pub out: mpsc::Sender<Incoming>,
    pub reading: watch::Receiver<bool>,
}

impl Driver {
    /// Runs until the case drops its connection (then the socket is dropped
    /// without a close frame, like a lost link).
    pub async fn run(mut self) {
        let mut max_message_bytes: Option<usize> = None;
        let mut disconnect: Option<v2::Disconnect> = None;
        let mut we_closed = false;
        let mut ended = false;
        loop {
            let reading = *self.reading.borrow() && !ended;
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    None => return,
                    Some(Cmd::Send(m, done)) => {
                        let r = self.ws.send(m).await.map_err(|e| e.to_string());
                        let _ = done.send(r);
                    }
                    Some(Cmd::Raw(bytes, done)) => {
                        let io = self.ws.get_mut();
                        let r = async { io.write_all(&bytes).await?; io.flush().await }.await;
                        let _ = done.send(r.map_err(|e| e.to_string()));
                    }
                    Some(Cmd::Close(m, done)) => {
                        we_closed = true;
                        let r = self.ws.send(m).await.map_err(|e| e.to_string());
                        let _ = done.send(r);
                    }
                },
                changed = self.reading.changed(), if !reading => {
                    if changed.is_err() {
                        return;
                    }
                }
                msg = self.ws.next(), if reading => {
                    let incoming = match msg {
                        None => Some(self.ended(None, String::new(), &disconnect, we_closed)),
                        Some(Err(e)) => {
                            self.transcript.record(&self.label, "recv", "close", format!("connection error: {e}"));
                            Some(self.ended(None, String::new(), &disconnect, we_closed))
                        }
                        Some(Ok(m)) => self.frame(m, &mut max_message_bytes, &mut disconnect, we_closed).await,
                    };
                    let Some(incoming) = incoming else { continue };
                    if matches!(incoming, Incoming::Closed(_)) {
                        ended = true;
                    }
                    if self.out.send(incoming).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn ended(
        &self,
        code: Option<u16>,
        reason: String,
        disconnect: &Option<v2::Disconnect>,
        we_closed: bool,
    ) -> Incoming {
        if code.is_none() {
            self.transcript.record(
                &self.label,
                "recv",
                "close",
                "connection ended without a close frame".into(),
            );
        }
        if !we_closed {
            self.transcript.server_closed(&self.label, code, &reason);
        }
        Incoming::Closed(Closed {
            code,
            reason,
            disconnect: disconnect.clone(),
            data_frames_before: 0,
        })
    }

    /// Handles one received message; `None` when nothing goes to the case.
    async fn frame(
        &mut self,
        msg: Message,
        max_message_bytes: &mut Option<usize>,
        disconnect: &mut Option<v2::Disconnect>,
        we_closed: bool,
    ) -> Option<Incoming> {
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
                return Some(self.ended(Some(code.unwrap_or(1005)), reason, disconnect, we_closed));
            }
            Message::Ping(_) => {
                self.transcript.record(
                    &self.label,
                    "recv",
                    "ping",
                    "(WebSocket ping frame)".into(),
                );
                return None;
            }
            Message::Pong(_) | Message::Frame(_) => return None,
        };
        let kind = if text { "text" } else { "binary" };
        if let Some(limit) = *max_message_bytes {
            if limit > 0 && bytes.len() > 2 * limit {
                self.transcript
                    .record(&self.label, "recv", kind, preview(&bytes, text));
                return Some(Incoming::Error(fail(format!("server sent a {}-byte frame, over twice max_message_bytes {limit} (LIMIT-SERVER-FRAME)", bytes.len()))));
            }
        }
        let Some(codec) = self.codec else {
            self.transcript
                .record(&self.label, "recv", kind, preview(&bytes, text));
            return Some(Incoming::Error(fail(
                "server sent a data frame on a connection without a subprotocol",
            )));
        };
        if !type_first(codec.subprotocol().encoding, &bytes) {
            *self
                .shared
                .type_not_first
                .lock()
                .unwrap_or_else(|p| p.into_inner()) += 1;
        }
        let env = match codec.decode_frame::<v2::Envelope>(&bytes, Some(text)) {
            Ok(env) => env,
            Err(e) => {
                self.transcript
                    .record(&self.label, "recv", kind, preview(&bytes, text));
                return Some(Incoming::Error(fail(format!(
                    "server sent a frame the suite cannot decode in {}: {e}",
                    codec.subprotocol()
                ))));
            }
        };
        self.transcript.record_frame(
            &self.label,
            "recv",
            kind,
            describe(codec.subprotocol(), &env),
            &bytes,
        );
        match &env.body {
            Some(Body::Ping(p)) => {
                self.shared
                    .pings
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((Instant::now(), p.ts));
                if self.shared.auto_pong.load(Ordering::Relaxed) {
                    let pong = v2::Envelope {
                        body: Some(Body::Pong(v2::Pong { ts: p.ts })),
                    };
                    if let Ok(frame) = codec.encode(&pong) {
                        self.transcript.record_frame(
                            &self.label,
                            "send",
                            kind,
                            describe(codec.subprotocol(), &pong),
                            &frame,
                        );
                        let m = courier_client::raw::to_message(frame, &codec);
                        let _ = self.ws.send(m).await;
                    }
                    return None;
                }
            }
            Some(Body::Disconnect(d)) => *disconnect = Some(d.clone()),
            Some(Body::Welcome(w)) => {
                *max_message_bytes = w.limits.as_ref().map(|l| l.max_message_bytes as usize)
            }
            Some(Body::Batch(b)) => {
                // BATCH-NOT-HANDSHAKE and BATCH-NO-NESTING, server side.
                let bad = b
                    .envelopes
                    .iter()
                    .filter_map(|e| e.type_name())
                    .find(|t| matches!(*t, "hello" | "welcome" | "disconnect" | "batch"));
                if let Some(t) = bad {
                    return Some(Incoming::Error(fail(format!("server sent a batch containing `{t}` (BATCH-NOT-HANDSHAKE / BATCH-NO-NESTING)"))));
                }
            }
            _ => {}
        }
        Some(Incoming::Env(env))
    }
}

/// Whether a JSON or MessagePack frame starts with the `type` member (ENC-TYPE-FIRST).
fn type_first(encoding: Encoding, bytes: &[u8]) -> bool {
    match encoding {
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
    }
}

fn preview(bytes: &[u8], text: bool) -> String {
    if text {
        String::from_utf8_lossy(bytes).into_owned()
    } else {
        hex_preview(bytes)
    }
}
