//! The background task that owns the socket: connects, runs the session
//! (frames in, envelopes out, heartbeat deadline, call timeouts, early
//! refresh), and after each close applies the reconnection policy. All
//! protocol decisions are in `session.rs` and `reconnect.rs`.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use courier_protocol::subprotocol::parse_mismatch_reason;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{close, Codec, Subprotocol, DEFAULT_MAX_MESSAGE_BYTES};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::config::{ClientConfig, TokenReason};
use crate::connect::{close_of, open, to_ws, OpenError, Opened, Ws};
use crate::error::{ClientError, PublishError, SubscribeError};
use crate::event::{ConnectionEvent, Position};
use crate::handshake::Endpoint;
use crate::reconnect::{Backoff, CloseInfo, Next};
use crate::session::{CallKind, CallReply, EventTx, Notice, PublishReply, Session};

/// A request from a [`crate::Client`] handle to the driver.
pub(crate) enum Command {
    Subscribe {
        channel: String,
        from: Option<Position>,
        tx: EventTx,
        reply: oneshot::Sender<Result<(), SubscribeError>>,
    },
    Unsubscribe {
        channel: String,
    },
    Publish {
        channel: String,
        id: String,
        payload: Bytes,
        reply: PublishReply,
    },
    Ephemeral {
        channel: String,
        payload: Bytes,
    },
    Call {
        kind: CallKind,
        reply: CallReply,
    },
    /// A token fetched in the background (early refresh, reauth request).
    Token(Option<String>),
    Close {
        done: oneshot::Sender<()>,
    },
}

/// The client's coarse state, watched by handles.
#[derive(Debug, Clone)]
pub(crate) enum State {
    Connecting,
    Connected,
    Stopped(Arc<ClientError>),
}

/// State shared between the driver and the handles.
pub(crate) struct Shared {
    pub state: watch::Sender<State>,
    pub listeners: Mutex<Vec<mpsc::Sender<ConnectionEvent>>>,
}

impl Shared {
    fn emit(&self, event: ConnectionEvent) {
        let mut listeners = self.listeners.lock().expect("listener lock");
        // A listener that does not keep up misses events rather than
        // stalling the connection; a dropped one is forgotten.
        listeners.retain(|l| {
            !matches!(
                l.try_send(event.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
    }
}

enum SessionEnd {
    Closed(CloseInfo),
    Stop(oneshot::Sender<()>),
    Dropped,
}

pub(crate) struct Driver {
    cfg: ClientConfig,
    endpoint: Endpoint,
    session: Session,
    backoff: Backoff,
    cmd_rx: mpsc::Receiver<Command>,
    cmd_tx: mpsc::WeakSender<Command>,
    shared: Arc<Shared>,
    token: Option<String>,
    /// The codec of the current or last session, for size checks offline.
    codec: Codec,
    max_message_bytes: usize,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86_400 * 365)
}

impl Driver {
    pub fn new(
        cfg: ClientConfig,
        endpoint: Endpoint,
        cmd_rx: mpsc::Receiver<Command>,
        cmd_tx: mpsc::WeakSender<Command>,
        shared: Arc<Shared>,
    ) -> Self {
        let backoff = Backoff::new(
            cfg.backoff_base,
            cfg.backoff_cap,
            cfg.max_attempts,
            cfg.reconnect_now_max,
        );
        let session = Session::new(
            cfg.offline_queue_capacity,
            cfg.dedupe_ids_per_channel,
            cfg.request_timeout,
        );
        let first = cfg.offers.first().copied().unwrap_or(Subprotocol::ALL[0]);
        Driver {
            cfg,
            endpoint,
            session,
            backoff,
            cmd_rx,
            cmd_tx,
            shared,
            token: None,
            codec: Codec::new(first),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    fn stop(&mut self, err: ClientError) {
        let err = Arc::new(err);
        self.session.fail_all(err.clone());
        let _ = self.shared.state.send(State::Stopped(err.clone()));
        let event = if *err == ClientError::Closed {
            ConnectionEvent::Closed
        } else {
            ConnectionEvent::Terminal(err)
        };
        self.shared.emit(event);
        // Nothing follows a stop: let every event stream end.
        self.shared.listeners.lock().expect("listener lock").clear();
    }

    fn handle_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Subscribe {
                channel,
                from,
                tx,
                reply,
            } => self.session.subscribe(channel, from, tx, reply),
            Command::Unsubscribe { channel } => self.session.unsubscribe(&channel),
            Command::Publish {
                channel,
                id,
                payload,
                reply,
            } => {
                // LIMIT-MESSAGE-SIZE: refuse locally rather than be closed with 1009.
                let publish = v2::Envelope {
                    body: Some(Body::Publish(v2::Publish {
                        id,
                        channel,
                        payload,
                    })),
                };
                let size = self.codec.encode(&publish).map(|b| b.len());
                let Some(Body::Publish(p)) = publish.body else {
                    unreachable!()
                };
                match size {
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                    Ok(size) if size > self.max_message_bytes && !fault!(SendOversize) => {
                        let _ = reply.send(Err(PublishError::TooLarge {
                            size,
                            limit: self.max_message_bytes,
                        }));
                    }
                    Ok(_) => self.session.publish(p.channel, p.id, p.payload, reply, now),
                }
            }
            Command::Ephemeral { channel, payload } => self.session.ephemeral(channel, payload),
            Command::Call { kind, reply } => self.session.call(kind, Some(reply), now),
            Command::Token(Some(token)) => {
                self.session.call(CallKind::Refresh { token }, None, now)
            }
            Command::Token(None) => {}
            Command::Close { .. } => unreachable!("handled by the callers"),
        }
    }

    /// Runs `fut` while serving commands offline. None: the client stops.
    async fn offline<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(Command::Close { done }) => {
                        self.stop(ClientError::Closed);
                        let _ = done.send(());
                        return None;
                    }
                    None => {
                        self.stop(ClientError::Closed);
                        return None;
                    }
                    Some(cmd) => self.handle_command(cmd),
                },
            }
        }
    }

    fn spawn_token_fetch(&self, reason: TokenReason) {
        let provider = self.cfg.token_provider.clone();
        let tx = self.cmd_tx.clone();
        tokio::spawn(async move {
            let token = provider.token(reason).await.ok().flatten();
            if let Some(tx) = tx.upgrade() {
                let _ = tx.send(Command::Token(token)).await;
            }
        });
    }

    pub async fn run(mut self) {
        let mut token_reason = Some(TokenReason::Connect);
        loop {
            let _ = self.shared.state.send(State::Connecting);
            let opened = match self.connect(token_reason.take()).await {
                None => return,
                Some(Ok(o)) => Ok(o),
                Some(Err(e)) => Err(e),
            };
            let info = match opened {
                Ok(opened) => match self.run_session(opened).await {
                    SessionEnd::Closed(info) => info,
                    SessionEnd::Stop(done) => {
                        self.stop(ClientError::Closed);
                        let _ = done.send(());
                        return;
                    }
                    SessionEnd::Dropped => {
                        self.stop(ClientError::Closed);
                        return;
                    }
                },
                Err(OpenError::Terminal(e)) => {
                    self.stop(e);
                    return;
                }
                Err(OpenError::Closed(info)) => info,
                Err(OpenError::Transient(reason)) => CloseInfo::abnormal(reason),
            };
            self.session.on_close();
            self.shared.emit(ConnectionEvent::Disconnected {
                code: info.code,
                reason: info.reason.clone(),
            });
            match self.backoff.after_close(&info) {
                Next::Terminal => {
                    let err = if info.code == close::UNSUPPORTED_VERSION {
                        ClientError::UnsupportedVersion {
                            supported: parse_mismatch_reason(&info.reason),
                            reason: info.reason,
                        }
                    } else {
                        ClientError::TerminalClose {
                            code: info.code,
                            reason: info.reason,
                        }
                    };
                    self.stop(err);
                    return;
                }
                Next::GiveUp { attempts } => {
                    self.stop(ClientError::AttemptsExhausted {
                        attempts,
                        last: format!("{} {}", info.code, info.reason),
                    });
                    return;
                }
                Next::Reconnect {
                    delay,
                    refresh_credentials,
                    attempt,
                } => {
                    self.shared
                        .emit(ConnectionEvent::Reconnecting { attempt, delay });
                    if self.offline(tokio::time::sleep(delay)).await.is_none() {
                        return;
                    }
                    if refresh_credentials {
                        token_reason = Some(TokenReason::Expired);
                    }
                }
            }
        }
    }

    /// Obtains credentials if asked to, then connects. None: stopped.
    async fn connect(
        &mut self,
        token_reason: Option<TokenReason>,
    ) -> Option<Result<Opened, OpenError>> {
        let token_reason =
            token_reason.filter(|r| !(fault!(KeepTokenAfterExpiry) && *r == TokenReason::Expired));
        if let Some(reason) = token_reason {
            let expired = reason == TokenReason::Expired;
            let fut = self.cfg.token_provider.token(reason);
            match self.offline(fut).await? {
                Ok(Some(t)) => self.token = Some(t),
                // CLOSE-REFRESH: no credentials after an expiry is terminal.
                Ok(None) if expired => {
                    return Some(Err(OpenError::Terminal(ClientError::NoCredentials(
                        "the server asked for fresh credentials".into(),
                    ))))
                }
                Ok(None) => self.token = None,
                Err(e) => return Some(Err(OpenError::Transient(e.to_string()))),
            }
        }
        let endpoint = self.endpoint.clone();
        let offers = self.cfg.offers.clone();
        let hello = v2::Hello {
            token: self.token.clone().unwrap_or_default(),
            client: self.cfg.client_name.clone(),
            features: self.cfg.features.clone(),
        };
        let ws_config = WebSocketConfig::default().read_buffer_size(self.cfg.read_buffer_size);
        let timeout = self.cfg.connect_timeout;
        let fut = async move {
            match tokio::time::timeout(timeout, open(endpoint, offers, hello, ws_config)).await {
                Ok(r) => r,
                Err(_) => Err(OpenError::Transient(format!(
                    "no session within {timeout:?}"
                ))),
            }
        };
        self.offline(fut).await
    }

    async fn run_session(&mut self, opened: Opened) -> SessionEnd {
        let Opened {
            mut ws,
            codec,
            welcome,
        } = opened;
        let now = Instant::now();
        self.codec = codec;
        let limits = welcome.limits.unwrap_or_default();
        if limits.max_message_bytes > 0 {
            self.max_message_bytes = limits.max_message_bytes as usize;
        }
        // LIMIT-SERVER-FRAME: accept frames up to twice the advertised limit.
        let codec = codec.with_max_message_bytes(self.max_message_bytes.saturating_mul(2));
        let interval = Duration::from_millis(welcome.heartbeat_interval_ms);
        let deadline = self
            .cfg
            .heartbeat_timeout
            .unwrap_or(interval + Duration::from_millis(welcome.heartbeat_grace_ms));
        let deadline = if fault!(NoHeartbeatDeadline) {
            Duration::from_secs(24 * 3600)
        } else {
            deadline
        };
        let mut refresh_at = self.refresh_instant(welcome.token_expires_at_ms);
        let _ = self.shared.state.send(State::Connected);
        self.shared.emit(ConnectionEvent::Connected {
            subprotocol: codec.subprotocol(),
            session_id: welcome.session_id.clone(),
            user: welcome.user.clone(),
        });
        self.session.on_open(welcome, now);
        let mut notice: Option<CloseInfo> = None;
        let mut last_frame = tokio::time::Instant::now();
        // CLIENT-BACKOFF-SHORT-SESSION: a session closed before it stayed
        // open for heartbeat_interval_ms leaves the failure count growing.
        let stable = |opened: Instant| opened.elapsed() >= interval || fault!(ResetBackoffOnOpen);
        let end = |notice: Option<CloseInfo>, code: u16, reason: String| {
            // CLOSE-NOTICE-WINS: the disconnect notice decides the reaction.
            let mut info = notice.unwrap_or(CloseInfo {
                code,
                reason,
                retry_after: None,
                stable: false,
            });
            info.stable = stable(now);
            SessionEnd::Closed(info)
        };
        if let Err(e) = self.flush(&mut ws, &codec).await {
            return end(notice, close::ABNORMAL, e);
        }
        loop {
            let call_deadline = self
                .session
                .next_call_deadline()
                .map_or_else(far_future, Into::into);
            let refresh_deadline = refresh_at.map_or_else(far_future, Into::into);
            tokio::select! {
                biased;
                msg = ws.next() => {
                    last_frame = tokio::time::Instant::now();
                    let (bytes, text) = match msg {
                        Some(Ok(WsMessage::Text(t))) => (Bytes::from(t), true),
                        Some(Ok(WsMessage::Binary(b))) => (b, false),
                        Some(Ok(WsMessage::Close(frame))) => {
                            let (code, reason) = close_of(&ws, frame);
                            let _ = tokio::time::timeout(Duration::from_millis(100), ws.close(None)).await;
                            return end(notice, code, reason);
                        }
                        // HB-ANY-FRAME: control frames count as liveness.
                        Some(Ok(_)) => continue,
                        Some(Err(e)) => return end(notice, close::ABNORMAL, e.to_string()),
                        None => return end(notice, close::ABNORMAL, "connection lost".into()),
                    };
                    match codec.decode_frame::<v2::Envelope>(&bytes, Some(text)) {
                        Ok(env) => self.session.on_envelope(env, Instant::now()),
                        Err(e) => {
                            // A frame we cannot read: close with its code and
                            // back off (close-codes.md §2), not terminal.
                            let code = e.close_code();
                            let frame = CloseFrame { code: CloseCode::from(code), reason: "undecodable frame".into() };
                            let _ = tokio::time::timeout(Duration::from_millis(100), ws.close(Some(frame))).await;
                            return end(None, close::ABNORMAL, format!("client closed with {code}: {e}"));
                        }
                    }
                    for n in self.session.take_notices() {
                        match n {
                            Notice::Disconnect { .. } if fault!(IgnoreDisconnectNotice) => {}
                            Notice::Disconnect { code, reason, retry_after } => {
                                notice = Some(CloseInfo { code, reason, retry_after, stable: false });
                            }
                            Notice::Reauth { .. } if fault!(IgnoreReauth) => {}
                            Notice::Reauth { reason } => self.spawn_token_fetch(TokenReason::ReauthRequested { reason }),
                            Notice::TokenAccepted { token, expires_at_ms } => {
                                self.token = Some(token);
                                refresh_at = self.refresh_instant(expires_at_ms);
                            }
                        }
                    }
                    for (tx, event) in self.session.take_deliveries() {
                        // Backpressure: a full subscription buffer pauses reading.
                        let _ = tx.send(event).await;
                    }
                }
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(Command::Close { done }) => {
                        // CLOSE-CLIENT-NORMAL.
                        let code = if fault!(CloseWithGoingAway) { CloseCode::Away } else { CloseCode::Normal };
                        let frame = CloseFrame { code, reason: "client closed".into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
                        return SessionEnd::Stop(done);
                    }
                    None => {
                        let frame = CloseFrame { code: CloseCode::Normal, reason: "client dropped".into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(Some(frame))).await;
                        return SessionEnd::Dropped;
                    }
                    Some(cmd) => self.handle_command(cmd),
                },
                _ = sleep_until(last_frame + deadline) => {
                    // HB-CLIENT-DEADLINE: the link is dead whatever TCP says.
                    drop(ws);
                    let mut info = CloseInfo {
                        code: close::HEARTBEAT_TIMEOUT,
                        reason: format!("no frame from the server for {deadline:?}"),
                        retry_after: None,
                        stable: false,
                    };
                    info.stable = stable(now);
                    return SessionEnd::Closed(info);
                }
                _ = sleep_until(call_deadline) => self.session.expire_calls(Instant::now()),
                _ = sleep_until(refresh_deadline) => {
                    refresh_at = None;
                    self.spawn_token_fetch(TokenReason::ExpiringSoon);
                }
            }
            if let Err(e) = self.flush(&mut ws, &codec).await {
                return end(notice, close::ABNORMAL, e);
            }
        }
    }

    /// AUTH-REFRESH-EARLY: when to fetch a new token.
    fn refresh_instant(&self, expires_at_ms: Option<u64>) -> Option<Instant> {
        let expires = expires_at_ms.filter(|_| !fault!(NoEarlyRefresh))?;
        let margin = self.cfg.refresh_margin.as_millis() as u64;
        let wait = expires.saturating_sub(margin).saturating_sub(unix_ms());
        Some(Instant::now() + Duration::from_millis(wait))
    }

    async fn flush(&mut self, ws: &mut Ws, codec: &Codec) -> Result<(), String> {
        let out = self.session.take_outgoing();
        if out.is_empty() {
            return Ok(());
        }
        for env in out {
            let Ok(frame) = codec.encode(&env) else {
                continue;
            };
            ws.feed(to_ws(frame, codec))
                .await
                .map_err(|e| e.to_string())?;
        }
        ws.flush().await.map_err(|e| e.to_string())
    }
}
