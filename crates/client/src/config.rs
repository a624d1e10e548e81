//! Client configuration: [`ClientConfig`] with documented defaults and
//! prost-build-style setters, and the [`TokenProvider`] through which the
//! application supplies (and refreshes) credentials.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use courier_protocol::Subprotocol;
use rustls::pki_types::CertificateDer;

use crate::{Client, ClientError};

/// Why the client asks the [`TokenProvider`] for credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenReason {
    /// The first connection of the client. Later reconnects reuse the
    /// current token unless it was rejected as expired.
    Connect,
    /// The server closed with 4300–4399 (expired, re-auth timeout): a new
    /// token is required before reconnecting (CLOSE-REFRESH).
    Expired,
    /// The session's `token_expires_at_ms` is near (AUTH-REFRESH-EARLY);
    /// the new token is sent in band with `refresh`.
    ExpiringSoon,
    /// The server sent `reauth_request` (AUTH-REAUTH-CLIENT).
    ReauthRequested {
        /// The server's reason, for logs.
        reason: String,
    },
}

/// The provider could not produce a token right now (network error to the
/// identity service, ...). The client treats it as a failed attempt and
/// backs off; return `Ok(None)` instead when no token can ever be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token provider failed: {0}")]
pub struct TokenError(pub String);

/// The future a [`TokenProvider`] returns.
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<Option<String>, TokenError>> + Send>>;

/// Supplies credentials for `hello` and `refresh`.
///
/// `Ok(Some(token))` is used as is; `Ok(None)` means "no credentials":
/// anonymous on [`TokenReason::Connect`], a terminal
/// [`ClientError::NoCredentials`] on [`TokenReason::Expired`], and no
/// `refresh` for the in-band reasons.
///
/// Any `Fn(TokenReason) -> impl Future<Output = Result<Option<String>, TokenError>>`
/// is a provider:
///
/// ```
/// use courier_client::{ClientConfig, TokenReason};
/// let mut config = ClientConfig::new("ws://127.0.0.1:8080/ws");
/// config.token_provider(|reason: TokenReason| async move {
///     // Fetch from your identity service; `reason` says why.
///     let _ = reason;
///     Ok(Some("eyJhbGciOi...".to_string()))
/// });
/// ```
pub trait TokenProvider: Send + Sync + 'static {
    /// Produces a token for `reason`.
    fn token(&self, reason: TokenReason) -> TokenFuture;
}

impl<F, Fut> TokenProvider for F
where
    F: Fn(TokenReason) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Option<String>, TokenError>> + Send + 'static,
{
    fn token(&self, reason: TokenReason) -> TokenFuture {
        Box::pin(self(reason))
    }
}

/// A fixed token (or none: anonymous).
#[derive(Debug, Clone)]
pub struct StaticToken(pub Option<String>);

impl TokenProvider for StaticToken {
    fn token(&self, _: TokenReason) -> TokenFuture {
        let t = self.0.clone();
        Box::pin(async move { Ok(t) })
    }
}

/// Client configuration. Construct with [`ClientConfig::new`], adjust with
/// the setters (or the public fields), then call [`ClientConfig::connect`]
/// or [`Client::connect`].
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), courier_client::ClientError> {
/// use std::time::Duration;
/// use courier_client::ClientConfig;
///
/// let client = ClientConfig::new("ws://127.0.0.1:8080/ws")
///     .offers(["courier.v2.msgpack", "courier.v2.json", "courier.v1.json"])
///     .token("eyJhbGciOi...")
///     .backoff(Duration::from_millis(500), Duration::from_secs(10))
///     .max_attempts(20)
///     .connect()
///     .await?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct ClientConfig {
    /// WebSocket URL of the server: `ws://host[:port]/path`, or
    /// `wss://host[:port]/path` for TLS (port 443 by default). Required; no
    /// default.
    pub url: String,
    /// Subprotocols offered, most preferred first. Default: all six,
    /// version 2 first (VER-HIGHEST-COMMON picks the highest common version),
    /// JSON before MessagePack before Protobuf as in [`Subprotocol::ALL`].
    pub offers: Vec<Subprotocol>,
    /// Credentials. Default: anonymous ([`StaticToken`]`(None)`).
    pub token_provider: Arc<dyn TokenProvider>,
    /// `hello.client`, for the server's logs. Default `courier-rust/<version>`.
    pub client_name: String,
    /// Features asked for in `hello`. Default: `presence`, `ephemeral`,
    /// `rpc`, `batch`, `reauth` (all the client handles).
    pub features: Vec<String>,
    /// Backoff base (CLIENT-BACKOFF-JITTER). Default 1000 ms, as the spec.
    pub backoff_base: Duration,
    /// Backoff cap. Default 30 s, as the spec.
    pub backoff_cap: Duration,
    /// Reconnect attempts after which the client stops with
    /// [`ClientError::AttemptsExhausted`]. Default `None` (unlimited), as
    /// the spec: a realtime app usually wants to come back whenever it can.
    pub max_attempts: Option<u32>,
    /// Upper bound of the random delay before reconnecting after 1001 or
    /// 4200–4299 (CLOSE-RECONNECT-NOW). Default 1000 ms, as the spec.
    pub reconnect_now_max: Duration,
    /// Limit on TCP connect + WebSocket upgrade + `welcome`. Default 10 s:
    /// long enough for a slow TLS handshake, short enough to retry soon.
    pub connect_timeout: Duration,
    /// Overrides the heartbeat deadline. Default `None`: use
    /// `heartbeat_interval_ms + heartbeat_grace_ms` from `welcome`
    /// (HB-CLIENT-DEADLINE), which is what the server promises.
    pub heartbeat_timeout: Option<Duration>,
    /// Publishes held while disconnected or unacknowledged
    /// (CLIENT-OFFLINE-QUEUE). Default 1000, as the spec.
    pub offline_queue_capacity: usize,
    /// Events buffered per subscription before the client stops reading
    /// the socket (backpressure; a persistently slow reader then gets a
    /// 4100 close and resumes). Default 1024: one server send queue.
    pub subscription_buffer: usize,
    /// Delivered ids remembered per channel for DEDUP-CLIENT-DROP (also
    /// bounded by `dedupe_window_ms`). Default 10 000: 83 msg/s over the
    /// reference server's 120 s window.
    pub dedupe_ids_per_channel: usize,
    /// Timeout of `rpc`, `presence`, `refresh` calls. Default 10 s (the
    /// spec's RPC default).
    pub request_timeout: Duration,
    /// How long before `token_expires_at_ms` to refresh (AUTH-REFRESH-EARLY).
    /// Default 30 s, as the spec.
    pub refresh_margin: Duration,
    /// tungstenite read buffer per connection. Default 4 KiB: the 128 KiB
    /// default is zeroed on every read and stays resident
    /// (docs/benchmarks.md).
    pub read_buffer_size: usize,
    /// For `wss://`: trust Mozilla's root program (compiled in from
    /// `webpki-roots`). Default `true`: public servers work on every OS and
    /// in minimal containers without reading a platform store. Set `false`
    /// to trust only [`root_certificates`](Self::root_certificates).
    pub web_roots: bool,
    /// For `wss://`: extra trust anchors (DER), added to the web roots: a
    /// private CA, or a self-signed certificate in tests. Default empty.
    pub root_certificates: Vec<CertificateDer<'static>>,
    /// For `wss://`: a complete rustls configuration, used instead of
    /// `web_roots` and `root_certificates` (client certificates, custom
    /// verification). Default `None`. It should offer ALPN `http/1.1` or
    /// nothing: the WebSocket upgrade is HTTP/1.1.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.url)
            .field("offers", &self.offers)
            .field("features", &self.features)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_cap", &self.backoff_cap)
            .field("max_attempts", &self.max_attempts)
            .field("offline_queue_capacity", &self.offline_queue_capacity)
            .field("web_roots", &self.web_roots)
            .field("root_certificates", &self.root_certificates.len())
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl ClientConfig {
    /// A configuration for `url` with every default.
    pub fn new(url: impl Into<String>) -> Self {
        ClientConfig {
            url: url.into(),
            offers: Subprotocol::ALL.to_vec(),
            token_provider: Arc::new(StaticToken(None)),
            client_name: format!("courier-rust/{}", env!("CARGO_PKG_VERSION")),
            features: ["presence", "ephemeral", "rpc", "batch", "reauth"]
                .map(String::from)
                .to_vec(),
            backoff_base: Duration::from_millis(1000),
            backoff_cap: Duration::from_secs(30),
            max_attempts: None,
            reconnect_now_max: Duration::from_millis(1000),
            connect_timeout: Duration::from_secs(10),
            heartbeat_timeout: None,
            offline_queue_capacity: 1000,
            subscription_buffer: 1024,
            dedupe_ids_per_channel: 10_000,
            request_timeout: Duration::from_secs(10),
            refresh_margin: Duration::from_secs(30),
            read_buffer_size: 4096,
            web_roots: true,
            root_certificates: Vec::new(),
            tls: None,
        }
    }

    /// Sets the offered subprotocols by name, most preferred first.
    /// Unknown names are ignored (and an empty result fails at connect).
    pub fn offers<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.offers = names.into_iter().filter_map(|n| n.parse().ok()).collect();
        self
    }

    /// Offers exactly these subprotocols.
    pub fn subprotocols(&mut self, offers: impl IntoIterator<Item = Subprotocol>) -> &mut Self {
        self.offers = offers.into_iter().collect();
        self
    }

    /// Uses a fixed token.
    pub fn token(&mut self, token: impl Into<String>) -> &mut Self {
        self.token_provider = Arc::new(StaticToken(Some(token.into())));
        self
    }

    /// Uses a token provider (refreshable credentials).
    pub fn token_provider(&mut self, provider: impl TokenProvider) -> &mut Self {
        self.token_provider = Arc::new(provider);
        self
    }

    /// Sets the features asked for in `hello`.
    pub fn features<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> &mut Self {
        self.features = names.into_iter().map(String::from).collect();
        self
    }

    /// Sets the backoff base and cap.
    pub fn backoff(&mut self, base: Duration, cap: Duration) -> &mut Self {
        self.backoff_base = base;
        self.backoff_cap = cap;
        self
    }

    /// Stops after `n` failed reconnect attempts.
    pub fn max_attempts(&mut self, n: u32) -> &mut Self {
        self.max_attempts = Some(n);
        self
    }

    /// Sets the reconnect-now window.
    pub fn reconnect_now_max(&mut self, d: Duration) -> &mut Self {
        self.reconnect_now_max = d;
        self
    }

    /// Sets the connect timeout.
    pub fn connect_timeout(&mut self, d: Duration) -> &mut Self {
        self.connect_timeout = d;
        self
    }

    /// Overrides the heartbeat deadline.
    pub fn heartbeat_timeout(&mut self, d: Duration) -> &mut Self {
        self.heartbeat_timeout = Some(d);
        self
    }

    /// Sets the offline queue capacity.
    pub fn offline_queue_capacity(&mut self, n: usize) -> &mut Self {
        self.offline_queue_capacity = n;
        self
    }

    /// Sets the per-subscription event buffer.
    pub fn subscription_buffer(&mut self, n: usize) -> &mut Self {
        self.subscription_buffer = n.max(1);
        self
    }

    /// Sets the request timeout.
    pub fn request_timeout(&mut self, d: Duration) -> &mut Self {
        self.request_timeout = d;
        self
    }

    /// Sets the early-refresh margin.
    pub fn refresh_margin(&mut self, d: Duration) -> &mut Self {
        self.refresh_margin = d;
        self
    }

    /// Whether `wss://` trusts the compiled-in web roots (default `true`).
    pub fn web_roots(&mut self, enabled: bool) -> &mut Self {
        self.web_roots = enabled;
        self
    }

    /// Trusts one more CA certificate (DER) for `wss://`. An unusable
    /// certificate fails at connect with [`ClientError::Config`].
    pub fn add_root_certificate(&mut self, der: impl Into<CertificateDer<'static>>) -> &mut Self {
        self.root_certificates.push(der.into());
        self
    }

    /// Trusts every certificate of a PEM document (a CA bundle file's
    /// contents) for `wss://`.
    ///
    /// # Errors
    ///
    /// [`ClientError::Config`] when the document is not PEM or holds no
    /// `CERTIFICATE` block; nothing is added then.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use courier_client::ClientConfig;
    ///
    /// let ca = std::fs::read("/etc/courier/ca.pem")?;
    /// let client = ClientConfig::new("wss://courier.internal:8443/ws")
    ///     .web_roots(false)
    ///     .add_root_certificates_pem(&ca)?
    ///     .connect()
    ///     .await?;
    /// # let _ = client; Ok(()) }
    /// ```
    pub fn add_root_certificates_pem(&mut self, pem: &[u8]) -> Result<&mut Self, ClientError> {
        let certs = crate::tls::certificates_from_pem(pem)?;
        self.root_certificates.extend(certs);
        Ok(self)
    }

    /// Uses a complete rustls configuration for `wss://`.
    pub fn tls_config(&mut self, tls: Arc<rustls::ClientConfig>) -> &mut Self {
        self.tls = Some(tls);
        self
    }

    /// Connects with this configuration: [`Client::connect`].
    pub async fn connect(&self) -> Result<Client, ClientError> {
        Client::connect(self.clone()).await
    }
}
