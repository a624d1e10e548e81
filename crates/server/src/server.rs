//! Start-up and server-wide state: [`ServerBuilder`] / [`start`], the
//! running server handle, connection accounting (per IP, per transport),
//! the shared heartbeat ticker and graceful shutdown.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use courier_protocol::Subprotocol;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::auth::{Authenticator, Authorizer};
use crate::broker::{Broker, HistoryPolicy, MemoryBroker};
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::faults::Fault;
use crate::metrics::Metrics;
use crate::outbox::{Features, Outbox};
use crate::rpc::RpcHandler;

/// Server-wide state shared by every connection.
pub(crate) struct Shared {
    pub config: ServerConfig,
    pub supported: Vec<Subprotocol>,
    pub features: Features,
    pub auth: Authenticator,
    pub authz: Authorizer,
    pub broker: Arc<dyn Broker>,
    pub rpc: HashMap<String, Arc<dyn RpcHandler>>,
    pub metrics: Metrics,
    fault: Option<Fault>,
    sessions: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_registration: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    active: AtomicUsize,
    drained: Notify,
    shutdown: watch::Sender<bool>,
    tick: watch::Sender<()>,
    session_prefix: String,
    next_session: AtomicU64,
}

/// Which transport a session uses (metrics).
#[derive(Clone, Copy)]
pub(crate) enum Transport {
    Ws,
    Sse,
}

impl Shared {
    /// Whether fault `f` is injected (always false without feature `faults`).
    pub(crate) fn fault(&self, f: Fault) -> bool {
        self.fault == Some(f)
    }

    pub(crate) fn fault_never_ping(&self) -> bool {
        self.fault(Fault::NeverPing)
    }

    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Ticks for the periodic session checks; also ticks once when shutdown
    /// begins, so that WebSocket sessions wait on this watch alone.
    pub(crate) fn tick_rx(&self) -> watch::Receiver<()> {
        self.tick.subscribe()
    }

    fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.tick.send_replace(());
    }

    /// VER-HIGHEST-COMMON over the client's offers.
    pub(crate) fn negotiate(&self, offers: &[String]) -> Option<Subprotocol> {
        if self.fault(Fault::IgnoreVersionOffer) {
            return offers
                .iter()
                .filter_map(|o| o.parse().ok())
                .find(|p| self.supported.contains(p));
        }
        courier_protocol::negotiate(offers.iter().map(String::as_str), &self.supported)
    }

    /// Checks `Origin` against `allowed_origins`. Requests without an
    /// Origin (non-browser clients) are allowed: the check exists to stop
    /// browsers from being used cross-site.
    pub(crate) fn origin_allowed(&self, headers: &hyper::HeaderMap) -> bool {
        let allowed = &self.config.allowed_origins;
        if allowed.is_empty() || allowed.iter().any(|a| a == "*") {
            return true;
        }
        match headers
            .get(hyper::header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        {
            None => true,
            Some(origin) => allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)),
        }
    }

    /// SESSION-ID-UNIQUE: a random per-process prefix plus a counter.
    pub(crate) fn new_session_id(&self) -> String {
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        format!("s_{}{}", self.session_prefix, base36(n))
    }

    /// Counts a TCP connection from `peer` until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>, peer: SocketAddr) -> ConnGuard {
        let ip = peer.ip();
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        *n += 1;
        let over_ip = *n > self.config.max_connections_per_ip;
        ConnGuard(Arc::new(ConnInner {
            shared: self.clone(),
            ip,
            over_ip,
        }))
    }

    /// Counts an open session until the guard drops.
    pub(crate) fn session_opened(self: &Arc<Self>, transport: Transport) -> SessionGuard {
        self.gauge(transport).fetch_add(1, Ordering::Relaxed);
        self.metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        SessionGuard {
            shared: self.clone(),
            transport,
        }
    }

    fn gauge(&self, transport: Transport) -> &std::sync::atomic::AtomicI64 {
        match transport {
            Transport::Ws => &self.metrics.ws_sessions,
            Transport::Sse => &self.metrics.sse_sessions,
        }
    }

    /// Open sessions, both transports.
    pub(crate) fn open_sessions(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// Registers an outbox for metrics (queue depth) until the guard drops.
    pub(crate) fn register(self: &Arc<Self>, outbox: Arc<Outbox>) -> Registration {
        let id = self.next_registration.fetch_add(1, Ordering::Relaxed);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, outbox);
        Registration {
            shared: self.clone(),
            id,
        }
    }

    /// Frames queued over all sessions.
    pub(crate) fn queue_depth(&self) -> usize {
        let sessions: Vec<Arc<Outbox>> = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        sessions.iter().map(|o| o.len()).sum()
    }
}

/// One accepted TCP connection (per-IP accounting).
#[derive(Clone)]
pub(crate) struct ConnGuard(Arc<ConnInner>);

struct ConnInner {
    shared: Arc<Shared>,
    ip: IpAddr,
    over_ip: bool,
}

impl ConnGuard {
    /// VER-REFUSE-AFTER-ACCEPT: why a new session must be refused with 4102.
    pub(crate) fn refusal(&self) -> Option<(u16, String)> {
        let s = &self.0.shared;
        if self.0.over_ip {
            return Some((
                courier_protocol::close::OVERLOADED,
                "too many connections from this address".into(),
            ));
        }
        if s.open_sessions() >= s.config.max_connections as usize {
            return Some((
                courier_protocol::close::OVERLOADED,
                "server over capacity".into(),
            ));
        }
        None
    }
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let mut map = self.shared.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// An open session (gauges, drain on shutdown).
pub(crate) struct SessionGuard {
    shared: Arc<Shared>,
    transport: Transport,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        self.shared
            .gauge(self.transport)
            .fetch_sub(1, Ordering::Relaxed);
        if self.shared.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.shared.drained.notify_waiters();
        }
    }
}

/// A registered outbox.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

/// Configures and starts a server, in the style of `prost_build::Config`.
///
/// # Examples
///
/// ```no_run
/// # async fn run() -> Result<(), courier_server::ServerError> {
/// use courier_server::{ServerBuilder, ServerConfig};
///
/// let mut builder = ServerBuilder::new(ServerConfig::default());
/// builder.rpc("time", |_ctx, _args| async {
///     Ok(courier_protocol::wire::to_payload(&0u64).unwrap())
/// });
/// let server = builder.start().await?;
/// println!("{}", server.ws_url());
/// server.shutdown().await;
/// # Ok(()) }
/// ```
pub struct ServerBuilder {
    config: ServerConfig,
    broker: Option<Arc<dyn Broker>>,
    rpc: HashMap<String, Arc<dyn RpcHandler>>,
}

impl ServerBuilder {
    /// A builder for `config`.
    pub fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            broker: None,
            rpc: HashMap::new(),
        }
    }

    /// Registers an RPC method (replacing a built-in of the same name).
    pub fn rpc(&mut self, method: impl Into<String>, handler: impl RpcHandler) -> &mut Self {
        self.rpc.insert(method.into(), Arc::new(handler));
        self
    }

    /// Uses `broker` instead of the embedded [`MemoryBroker`]. History
    /// and dedupe settings of the configuration then belong to that broker.
    pub fn broker(&mut self, broker: Arc<dyn Broker>) -> &mut Self {
        self.broker = Some(broker);
        self
    }

    /// Binds the listen address and spawns the server on the current tokio runtime.
    pub async fn start(&mut self) -> Result<RunningServer, ServerError> {
        let config = self.config.clone();
        config.validate()?;
        #[cfg(feature = "faults")]
        let fault = config.fault;
        #[cfg(not(feature = "faults"))]
        let fault: Option<Fault> = None;
        let supported: Vec<Subprotocol> = Subprotocol::ALL
            .into_iter()
            .filter(|p| config.subprotocols.iter().any(|s| s == p.name()))
            .collect();
        let mut bits = 0u8;
        for (i, name) in crate::session::FEATURES.iter().enumerate() {
            if config.features.iter().any(|f| f == name) {
                bits |= 1 << i;
            }
        }
        let auth = Authenticator::new(&config.auth, fault == Some(Fault::AcceptExpiredTokens))?;
        let authz = Authorizer::new(config.channels.clone());
        let broker = match &self.broker {
            Some(b) => b.clone(),
            None => {
                let f = |x| fault == Some(x);
                let faults = crate::broker::memory_faults(
                    f(Fault::SkipSeq),
                    f(Fault::SeqFromZero),
                    f(Fault::RedeliverDuplicate),
                    f(Fault::ResumeOutOfOrder),
                    f(Fault::DataBeforeSubscribeAck),
                );
                Arc::new(
                    MemoryBroker::new(HistoryPolicy {
                        history_size: config.history_size,
                        history_ttl: Duration::from_millis(config.history_ttl_ms),
                        dedupe_window: Duration::from_millis(config.dedupe_window_ms),
                        rules: config.channels.clone(),
                    })
                    .with_faults(faults),
                ) as Arc<dyn Broker>
            }
        };
        let mut rpc: HashMap<String, Arc<dyn RpcHandler>> = HashMap::new();
        if config.rpc_builtins {
            rpc.insert("echo".into(), Arc::new(crate::rpc::echo));
            rpc.insert("sleep".into(), Arc::new(crate::rpc::sleep));
        }
        rpc.extend(self.rpc.iter().map(|(k, v)| (k.clone(), v.clone())));
        let tls = match &config.tls {
            Some(t) => Some(crate::tls::acceptor(t)?),
            None => None,
        };
        let listener = bind(config.listen).map_err(|error| ServerError::Bind {
            addr: config.listen,
            error,
        })?;
        let local_addr = listener.local_addr().map_err(|error| ServerError::Bind {
            addr: config.listen,
            error,
        })?;
        let tick_ms = tick_interval(&config);
        let shared = Arc::new(Shared {
            supported,
            features: Features(bits),
            auth,
            authz,
            broker,
            rpc,
            metrics: Metrics::default(),
            fault,
            sessions: Mutex::new(HashMap::new()),
            next_registration: AtomicU64::new(0),
            per_ip: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            drained: Notify::new(),
            shutdown: watch::channel(false).0,
            tick: watch::channel(()).0,
            session_prefix: format!(
                "{}{}_",
                base36(crate::now_ms() % 1_000_000_000),
                base36(fastrand::u64(..) & 0xffffff)
            ),
            next_session: AtomicU64::new(1),
            config,
        });
        let is_tls = tls.is_some();
        tokio::spawn(crate::http::accept_loop(shared.clone(), listener, tls));
        tokio::spawn(background(shared.clone(), Duration::from_millis(tick_ms)));
        tracing::info!(addr = %local_addr, tls = is_tls, "courier server listening");
        Ok(RunningServer {
            shared,
            local_addr,
            tls: is_tls,
        })
    }
}

/// Pending connections the kernel queues before `accept`. `TcpListener::bind`
/// uses 128: a burst of reconnecting clients (or a load test opening 256 at
/// once) overflows it while the server is busy, and every dropped SYN costs
/// that client a 1 s retransmit. The kernel caps it at `net.core.somaxconn`.
const LISTEN_BACKLOG: u32 = 4096;

fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does on Unix: restart without waiting for TIME_WAIT.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The shared ticker's period: fine enough for the shortest deadline,
/// coarse enough to cost nothing (one wake-up per connection per tick).
fn tick_interval(c: &ServerConfig) -> u64 {
    let mut shortest = c.heartbeat_interval_ms.min(c.heartbeat_grace_ms.max(1));
    if let Some(r) = c.auth.reauth_after_ms {
        shortest = shortest.min(r.max(1)).min(c.auth.reauth_deadline_ms.max(1));
    }
    (shortest / 4).clamp(5, 1000)
}

/// Ticks every session and sweeps the broker until shutdown has drained
/// every session.
async fn background(shared: Arc<Shared>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = tokio::time::Instant::now();
    loop {
        interval.tick().await;
        if shared.is_shutting_down() && shared.open_sessions() == 0 {
            return;
        }
        shared.tick.send_replace(());
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = tokio::time::Instant::now();
            shared.broker.sweep();
        }
    }
}

/// A started server. Dropping it shuts it down without waiting.
pub struct RunningServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    tls: bool,
}

impl RunningServer {
    /// The bound address (with the port picked for `:0`).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WebSocket URL, `ws://ADDR/ws` (`wss://` with TLS).
    pub fn ws_url(&self) -> String {
        format!(
            "{}://{}/ws",
            if self.tls { "wss" } else { "ws" },
            self.local_addr
        )
    }

    /// The HTTP base URL, `http://ADDR` (`https://` with TLS).
    pub fn http_url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.local_addr
        )
    }

    /// Sessions currently open (WebSocket and SSE).
    pub fn open_sessions(&self) -> usize {
        self.shared.open_sessions()
    }

    /// Graceful shutdown (CLOSE-SHUTDOWN): stops accepting, sends every
    /// session a `disconnect` and close 1001, and waits up to
    /// `shutdown_grace_ms` for them to finish.
    pub async fn shutdown(self) {
        self.shared.begin_shutdown();
        let grace = Duration::from_millis(self.shared.config.shutdown_grace_ms);
        let _ = tokio::time::timeout(grace, async {
            loop {
                let drained = self.shared.drained.notified();
                if self.shared.open_sessions() == 0 {
                    return;
                }
                drained.await;
            }
        })
        .await;
        tracing::info!(
            remaining = self.shared.open_sessions(),
            "courier server stopped"
        );
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shared.begin_shutdown();
    }
}

/// Binds and spawns a server with `config` and the built-in RPC methods;
/// see [`ServerBuilder`] to add methods or another broker.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    ServerBuilder::new(config).start().await
}

pub(crate) fn base36(mut n: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).expect("ascii")
}
