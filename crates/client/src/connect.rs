//! Opening a session: the upgrade (`handshake.rs`), the subprotocol check
//! (VER-CLIENT-VERIFY), `hello`, and waiting for `welcome`, with every way
//! this can fail sorted into transient, closed-by-server and terminal.

use std::time::Duration;

use bytes::Bytes;
use courier_protocol::subprotocol::parse_mismatch_reason;
use courier_protocol::v2::{self, envelope::Body};
use courier_protocol::{close, Codec, Subprotocol, DEFAULT_MAX_MESSAGE_BYTES};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use crate::close_codes::CloseCodes;
use crate::error::ClientError;
use crate::handshake::{self, Endpoint};
use crate::reconnect::CloseInfo;

pub(crate) type Ws = WebSocketStream<CloseCodes<crate::tls::Stream>>;

/// The code and reason of a close frame tungstenite handed over, with the
/// code as the server sent it (`close_codes.rs`); 1005 when it had none.
pub(crate) fn close_of(ws: &Ws, frame: Option<CloseFrame>) -> (u16, String) {
    frame.map_or((1005, String::new()), |f| {
        (
            ws.get_ref().close_code(u16::from(f.code)),
            f.reason.to_string(),
        )
    })
}

pub(crate) enum OpenError {
    /// Refused, timed out, reset: back off.
    Transient(String),
    /// The server closed before `welcome`.
    Closed(CloseInfo),
    /// Never retry.
    Terminal(ClientError),
}

pub(crate) struct Opened {
    pub ws: Ws,
    pub codec: Codec,
    pub welcome: v2::Welcome,
}

pub(crate) fn to_ws(frame: Bytes, codec: &Codec) -> WsMessage {
    if codec.subprotocol().encoding.is_text() {
        // The JSON codec produces UTF-8 (serde_json never emits anything else).
        match String::from_utf8(frame.to_vec()) {
            Ok(s) => WsMessage::Text(s.into()),
            Err(e) => WsMessage::Binary(Bytes::from(e.into_bytes())),
        }
    } else {
        WsMessage::Binary(frame)
    }
}

/// Upgrades, checks the subprotocol, sends `hello` and waits for `welcome`.
pub(crate) async fn open(
    endpoint: Endpoint,
    offers: Vec<Subprotocol>,
    hello: v2::Hello,
    config: WebSocketConfig,
) -> Result<Opened, OpenError> {
    let up = handshake::connect(&endpoint, &offers, config)
        .await
        .map_err(|e| OpenError::Transient(e.to_string()))?;
    let mut ws = up.ws;
    let subprotocol = match up.selected {
        // VER-CLIENT-VERIFY: send nothing; surface the close that follows.
        None => {
            let (code, reason) = read_close(&mut ws).await;
            return Err(OpenError::Terminal(ClientError::UnsupportedVersion {
                supported: parse_mismatch_reason(&reason),
                reason: if reason.is_empty() {
                    format!("no subprotocol selected (close {code})")
                } else {
                    reason
                },
            }));
        }
        Some(name) => match offers.iter().find(|p| p.name() == name) {
            Some(p) => *p,
            None if fault!(AcceptUnofferedSubprotocol) => name.parse().unwrap_or(offers[0]),
            None => {
                return Err(OpenError::Terminal(ClientError::UnexpectedSubprotocol(
                    name,
                )))
            }
        },
    };
    let codec = Codec::new(subprotocol).with_max_message_bytes(2 * DEFAULT_MAX_MESSAGE_BYTES);
    let hello = v2::Envelope {
        body: Some(Body::Hello(hello)),
    };
    let frame = codec
        .encode(&hello)
        .map_err(|e| OpenError::Transient(e.to_string()))?;
    if fault!(PingBeforeHello) {
        let ping = v2::Envelope {
            body: Some(Body::Ping(v2::Ping { ts: 1 })),
        };
        if let Ok(f) = codec.encode(&ping) {
            let _ = ws.send(to_ws(f, &codec)).await;
        }
    }
    let sends = if fault!(HelloTwice) { 2 } else { 1 };
    for _ in 0..sends {
        ws.send(to_ws(frame.clone(), &codec))
            .await
            .map_err(|e| OpenError::Transient(e.to_string()))?;
    }
    let mut notice = None;
    loop {
        let (bytes, text) = match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => (Bytes::from(t), true),
            Some(Ok(WsMessage::Binary(b))) => (b, false),
            Some(Ok(WsMessage::Close(frame))) => {
                let (code, reason) = close_of(&ws, frame);
                let info = notice.unwrap_or(CloseInfo {
                    code,
                    reason,
                    retry_after: None,
                    stable: false,
                });
                return Err(OpenError::Closed(info));
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                return Err(match notice {
                    Some(info) => OpenError::Closed(info),
                    None => OpenError::Transient(e.to_string()),
                })
            }
            None => {
                return Err(match notice {
                    Some(info) => OpenError::Closed(info),
                    None => OpenError::Transient("connection closed before welcome".into()),
                })
            }
        };
        match codec.decode_frame::<v2::Envelope>(&bytes, Some(text)) {
            Ok(v2::Envelope {
                body: Some(Body::Welcome(welcome)),
            }) => return Ok(Opened { ws, codec, welcome }),
            Ok(v2::Envelope {
                body: Some(Body::Disconnect(d)),
            }) => {
                notice = Some(CloseInfo {
                    code: u16::try_from(d.code).unwrap_or(u16::MAX),
                    reason: d.reason,
                    retry_after: d.retry_after_ms.map(Duration::from_millis),
                    stable: false,
                });
            }
            Ok(_) => {}
            Err(e) => {
                return Err(OpenError::Transient(format!(
                    "undecodable frame before welcome: {e}"
                )))
            }
        }
    }
}

/// Reads frames until the close; returns its code and reason (1006 if lost).
async fn read_close(ws: &mut Ws) -> (u16, String) {
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(WsMessage::Close(frame)) => return close_of(ws, frame),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (close::ABNORMAL, String::new())
}
