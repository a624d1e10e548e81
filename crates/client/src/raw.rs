//! One session on the wire, without the client's machinery: the same
//! upgrade, subprotocol check (VER-CLIENT-VERIFY), `hello` and `welcome`
//! as [`Client`](crate::Client), then the socket is the caller's. For
//! tools that show or script the protocol frame by frame (`courier tap`);
//! applications want [`Client`](crate::Client), which adds reconnects,
//! resume, dedupe and heartbeats.

use bytes::Bytes;
use courier_protocol::{v2, Codec};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::connect::{self, OpenError};
use crate::handshake::{self, Endpoint};
use crate::{ClientConfig, ClientError};

pub use crate::close_codes::CloseCodes;
pub use crate::tls::Stream;

/// An open session: the socket after `welcome`, and the codec of the
/// negotiated subprotocol.
pub struct RawSession {
    /// The WebSocket. Frames sent must use [`to_message`]. A close frame's
    /// code as the server sent it is `ws.get_ref().close_code(reported)`.
    pub ws: WebSocketStream<CloseCodes<Stream>>,
    /// The negotiated subprotocol's codec, accepting frames up to twice
    /// the protocol's default limit.
    pub codec: Codec,
    /// The server's `welcome`.
    pub welcome: v2::Welcome,
}

/// Why no session opened.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// Connecting, TLS or the upgrade failed, or no `welcome` came within
    /// `connect_timeout`: check the URL and that the server runs.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server closed (or sent `disconnect`) before `welcome`: the code
    /// says why (4004 bad credentials, 4002 no common version, ...).
    #[error("closed before welcome: {code} {reason}")]
    Closed {
        /// The close (or disconnect) code.
        code: u16,
        /// Its reason.
        reason: String,
    },
    /// A terminal failure: bad configuration, no common subprotocol, or an
    /// unoffered subprotocol selected. Fix the configuration or server.
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Opens one session with `config`'s URL, offers, features, trust
/// settings and `connect_timeout`, sending `token` in `hello`.
pub async fn open(config: &ClientConfig, token: Option<String>) -> Result<RawSession, RawError> {
    if config.offers.is_empty() {
        return Err(ClientError::Config("no subprotocol offered".into()).into());
    }
    let url = handshake::parse_url(&config.url).map_err(|e| ClientError::Config(e.to_string()))?;
    let tls = if url.tls {
        Some(crate::tls::client_config(config)?)
    } else {
        None
    };
    let hello = v2::Hello {
        token: token.unwrap_or_default(),
        client: config.client_name.clone(),
        features: config.features.clone(),
    };
    let ws_config = WebSocketConfig::default().read_buffer_size(config.read_buffer_size);
    let opening = connect::open(
        Endpoint { url, tls },
        config.offers.clone(),
        hello,
        ws_config,
    );
    match tokio::time::timeout(config.connect_timeout, opening).await {
        Err(_) => Err(RawError::Connect(format!(
            "no welcome within {:?}",
            config.connect_timeout
        ))),
        Ok(Ok(o)) => Ok(RawSession {
            ws: o.ws,
            codec: o.codec,
            welcome: o.welcome,
        }),
        Ok(Err(OpenError::Transient(e))) => Err(RawError::Connect(e)),
        Ok(Err(OpenError::Closed(info))) => Err(RawError::Closed {
            code: info.code,
            reason: info.reason,
        }),
        Ok(Err(OpenError::Terminal(e))) => Err(e.into()),
    }
}

/// An encoded envelope as the WebSocket message its encoding requires
/// (ENC-FRAME-TYPE: text for JSON, binary otherwise).
pub fn to_message(frame: Bytes, codec: &Codec) -> Message {
    connect::to_ws(frame, codec)
}
