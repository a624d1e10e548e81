//! A scripted WebSocket server on 127.0.0.1: each connection follows a list
//! of steps (send welcome, send a disconnect and close with a chosen code,
//! go silent, ...) so that tests can make a server do what the reference
//! server cannot be told to do (emit every close code).

// tungstenite's handshake callback returns its error response by value.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{Codec, Subprotocol};
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// How the server answers the subprotocol offer.
#[derive(Debug, Clone, Copy)]
pub enum Select {
    /// The first offer (as a conforming server would for a single-version offer list).
    First,
    /// No subprotocol; then close with 4002 and a mismatch reason.
    None,
    /// A name that was not offered.
    Bogus(&'static str),
}

/// One step of a connection's script.
#[derive(Debug, Clone)]
pub enum Step {
    /// Wait for `hello`, then send `welcome` with this heartbeat interval and grace.
    Welcome { interval_ms: u64, grace_ms: u64 },
    /// Send `disconnect` (v2 `retry_after_ms` when given), then a close frame with the same code.
    Disconnect {
        code: u16,
        reason: &'static str,
        retry_after_ms: Option<u64>,
    },
    /// Send only the `disconnect` envelope (no close frame).
    Notice { code: u16 },
    /// Read (and record) frames for this long, sending nothing.
    Silent(Duration),
    /// Drop the TCP connection without a close frame.
    Drop,
}

/// What the server saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// When each connection was accepted.
    pub accepted: Vec<Instant>,
    /// `hello.token` of each connection.
    pub tokens: Vec<String>,
    /// Number of data frames received per connection.
    pub frames: Vec<usize>,
}

/// A running scripted server.
pub struct ScriptServer {
    pub url: String,
    pub seen: Arc<Mutex<Seen>>,
}

impl ScriptServer {
    /// Serves connection `i` with `scripts[min(i, len - 1)]`.
    pub async fn start(select: Select, scripts: Vec<Vec<Step>>) -> ScriptServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            // Bounded: a test makes at most a few dozen connections.
            while n < 64 {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let script = scripts[n.min(scripts.len() - 1)].clone();
                let index = {
                    let mut s = seen2.lock().unwrap();
                    s.accepted.push(Instant::now());
                    s.tokens.push(String::new());
                    s.frames.push(0);
                    s.accepted.len() - 1
                };
                tokio::spawn(serve(tcp, select, script, seen2.clone(), index));
                n += 1;
            }
        });
        ScriptServer { url, seen }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.seen.lock().unwrap().accepted.len()
    }
}

async fn serve(
    tcp: TcpStream,
    select: Select,
    script: Vec<Step>,
    seen: Arc<Mutex<Seen>>,
    index: usize,
) {
    let chosen = Arc::new(Mutex::new(None::<Subprotocol>));
    let chosen2 = chosen.clone();
    let callback =
        move |req: &tokio_tungstenite::tungstenite::handshake::server::Request,
              mut resp: tokio_tungstenite::tungstenite::handshake::server::Response| {
            let offers = req
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let first: Option<Subprotocol> = offers.split(',').find_map(|o| o.trim().parse().ok());
            let name = match select {
                Select::First => first.map(|p| p.name()),
                Select::None => None,
                Select::Bogus(n) => Some(n),
            };
            if let Some(name) = name {
                resp.headers_mut()
                    .insert("sec-websocket-protocol", HeaderValue::from_static(name));
            }
            *chosen2.lock().unwrap() = first;
            Ok(resp)
        };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
        return;
    };
    let sp = chosen.lock().unwrap().unwrap_or(Subprotocol::ALL[0]);
    if matches!(select, Select::None) {
        let reason = courier_protocol::subprotocol::mismatch_reason(&[Subprotocol::ALL[0]]);
        let frame = CloseFrame {
            code: CloseCode::from(4002),
            reason: reason.into(),
        };
        let _ = ws.close(Some(frame)).await;
        while let Some(Ok(m)) = ws.next().await {
            if m.is_text() || m.is_binary() {
                seen.lock().unwrap().frames[index] += 1;
            }
        }
        return;
    }
    let codec = Codec::new(sp);
    let send = |env: Body| {
        let bytes = codec.encode(&v2::Envelope { body: Some(env) }).unwrap();
        if sp.encoding.is_text() {
            WsMessage::Text(String::from_utf8(bytes.to_vec()).unwrap().into())
        } else {
            WsMessage::Binary(bytes)
        }
    };
    for step in script {
        match step {
            Step::Welcome {
                interval_ms,
                grace_ms,
            } => {
                // Wait for hello.
                while let Some(Ok(m)) = ws.next().await {
                    if !(m.is_text() || m.is_binary()) {
                        continue;
                    }
                    seen.lock().unwrap().frames[index] += 1;
                    if let Ok(v2::Envelope {
                        body: Some(Body::Hello(h)),
                    }) = codec.decode::<v2::Envelope>(&m.into_data())
                    {
                        seen.lock().unwrap().tokens[index] = h.token;
                        break;
                    }
                }
                let welcome = v2::Welcome {
                    version: sp.version.number(),
                    encoding: match sp.encoding {
                        courier_protocol::Encoding::Json => v2::Encoding::Json as i32,
                        courier_protocol::Encoding::MsgPack => v2::Encoding::Msgpack as i32,
                        courier_protocol::Encoding::Protobuf => v2::Encoding::Protobuf as i32,
                    },
                    session_id: format!("script-{index}"),
                    heartbeat_interval_ms: interval_ms,
                    heartbeat_grace_ms: grace_ms,
                    dedupe_window_ms: 120_000,
                    ..Default::default()
                };
                if ws.send(send(Body::Welcome(welcome))).await.is_err() {
                    return;
                }
            }
            Step::Disconnect {
                code,
                reason,
                retry_after_ms,
            } => {
                let d = v2::Disconnect {
                    code: code.into(),
                    reason: reason.into(),
                    retry_after_ms,
                };
                let _ = ws.send(send(Body::Disconnect(d))).await;
                let frame = CloseFrame {
                    code: CloseCode::from(code),
                    reason: reason.into(),
                };
                let _ = ws.close(Some(frame)).await;
                // Drain until the client's close reply (bounded by the client).
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while ws.next().await.is_some() {}
                })
                .await;
                return;
            }
            Step::Notice { code } => {
                let d = v2::Disconnect {
                    code: code.into(),
                    reason: "notice".into(),
                    retry_after_ms: None,
                };
                let _ = ws.send(send(Body::Disconnect(d))).await;
            }
            Step::Silent(d) => {
                let _ = tokio::time::timeout(d, async {
                    while let Some(Ok(m)) = ws.next().await {
                        if m.is_text() || m.is_binary() {
                            seen.lock().unwrap().frames[index] += 1;
                        }
                    }
                })
                .await;
            }
            Step::Drop => return,
        }
    }
}
