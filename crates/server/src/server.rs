//! Start-up and the running server: [`ServerBuilder`] / [`start`] wire
//! the layers together (engine, hub, session environment, transports),
//! the background ticker, and graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use courier_protocol::Subprotocol;
use tokio::net::TcpListener;

use crate::auth::{Authenticator, Authorizer};
use crate::config::EngineKind;
use crate::config::ServerConfig;
use crate::engine::{Engine, HistoryOverride, HistoryPolicy, MemoryEngine, RedisEngine};
use crate::error::ServerError;
use crate::features::Features;
use crate::hub::Hub;
use crate::rpc::RpcHandler;
use crate::session::Env;
use crate::transport::Shared;

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
    engine: Option<Arc<dyn Engine>>,
    rpc: HashMap<String, Arc<dyn RpcHandler>>,
}

impl ServerBuilder {
    /// A builder for `config`.
    pub fn new(config: ServerConfig) -> Self {
        ServerBuilder {
            config,
            engine: None,
            rpc: HashMap::new(),
        }
    }

    /// Registers an RPC method (replacing a built-in of the same name).
    pub fn rpc(&mut self, method: impl Into<String>, handler: impl RpcHandler) -> &mut Self {
        self.rpc.insert(method.into(), Arc::new(handler));
        self
    }

    /// Uses `engine` instead of the one `[engine]` configures (the
    /// [`MemoryEngine`] by default, or a [`RedisEngine`]). History and
    /// dedupe settings of the configuration then belong to that engine.
    pub fn engine(&mut self, engine: Arc<dyn Engine>) -> &mut Self {
        self.engine = Some(engine);
        self
    }

    /// Binds the listen address and spawns the server on the current tokio runtime.
    pub async fn start(&mut self) -> Result<RunningServer, ServerError> {
        let (shared, tls) = self.assemble().await?;
        let listen = shared.env.config.listen;
        let listener = bind(listen).map_err(|error| ServerError::Bind {
            addr: listen,
            error,
        })?;
        let local_addr = listener.local_addr().map_err(|error| ServerError::Bind {
            addr: listen,
            error,
        })?;
        let tick_ms = tick_interval(&shared.env.config);
        let is_tls = tls.is_some();
        tokio::spawn(crate::transport::http::accept_loop(
            shared.clone(),
            listener,
            tls,
        ));
        tokio::spawn(background(shared.clone(), Duration::from_millis(tick_ms)));
        tracing::info!(addr = %local_addr, tls = is_tls, "courier server listening");
        Ok(RunningServer {
            shared,
            local_addr,
            tls: is_tls,
        })
    }

    /// Every layer wired together, without a listener or background task
    /// (`start` adds them; the fuzz entry points use this as is).
    pub(crate) async fn assemble(
        &self,
    ) -> Result<(Arc<Shared>, Option<tokio_rustls::TlsAcceptor>), ServerError> {
        let config = self.config.clone();
        config.validate()?;
        #[cfg(feature = "faults")]
        let fault = config.fault;
        let supported: Vec<Subprotocol> = Subprotocol::ALL
            .into_iter()
            .filter(|p| config.subprotocols.iter().any(|s| s == p.name()))
            .collect();
        let features =
            Features::from_names(config.features.iter().map(String::as_str)).map_err(|f| {
                crate::ConfigError::Invalid {
                    field: "features",
                    why: format!("unknown feature `{f}`"),
                }
            })?;
        #[cfg(feature = "faults")]
        let accept_expired = fault == Some(crate::faults::Fault::AcceptExpiredTokens);
        #[cfg(not(feature = "faults"))]
        let accept_expired = false;
        let auth = Authenticator::new(&config.auth, accept_expired)?;
        let authz = Authorizer::new(config.channels.clone());
        let engine = match &self.engine {
            Some(e) => e.clone(),
            None => {
                #[allow(unused_mut)]
                let mut policy = history_policy(&config);
                // Breaks LIMIT-HISTORY: nothing ever expires.
                #[cfg(feature = "faults")]
                if fault == Some(crate::faults::Fault::IgnoreHistoryTtl) {
                    policy.history_ttl = Duration::from_secs(u64::from(u32::MAX));
                    policy
                        .overrides
                        .iter_mut()
                        .for_each(|o| o.history_ttl = None);
                }
                // Breaks DEDUP-WINDOW: ids are forgotten after a second.
                #[cfg(feature = "faults")]
                if fault == Some(crate::faults::Fault::ShortDedupeWindow) {
                    policy.dedupe_window = Duration::from_secs(1);
                }
                // Breaks DEDUP-MAX: fewer ids kept than advertised.
                #[cfg(feature = "faults")]
                if fault == Some(crate::faults::Fault::ShortDedupeRecord) {
                    policy.dedupe_max_per_channel = 8;
                }
                match config.engine.kind {
                    EngineKind::Memory => Arc::new(MemoryEngine::new(policy)) as Arc<dyn Engine>,
                    EngineKind::Redis => Arc::new(
                        RedisEngine::new(&config.engine, policy).map_err(ServerError::Engine)?,
                    ),
                }
            }
        };
        #[cfg(feature = "faults")]
        let engine = crate::faults::engine::wrap(fault, engine);
        let queue_capacity = config.send_queue_frames as usize;
        // Breaks LIMIT-SLOW-CONSUMER: the queue never overflows.
        #[cfg(feature = "faults")]
        let queue_capacity = match fault {
            Some(crate::faults::Fault::UnboundedQueue) => usize::MAX,
            _ => queue_capacity,
        };
        let mut rpc: HashMap<String, Arc<dyn RpcHandler>> = HashMap::new();
        if config.rpc_builtins {
            rpc.insert("echo".into(), Arc::new(crate::rpc::echo));
            rpc.insert("sleep".into(), Arc::new(crate::rpc::sleep));
        }
        rpc.extend(self.rpc.iter().map(|(k, v)| (k.clone(), v.clone())));
        let tls = match &config.tls {
            Some(t) => Some(crate::transport::tls::acceptor(t)?),
            None => None,
        };
        let hub = Hub::new(engine);
        let env = Arc::new(Env::new(
            config,
            features,
            auth,
            authz,
            hub,
            rpc,
            queue_capacity,
        ));
        #[allow(unused_mut)]
        let mut shared = Shared::new(env, supported);
        #[cfg(feature = "faults")]
        {
            shared.fault = fault;
        }
        Ok((Arc::new(shared), tls))
    }
}

/// The engine's history and dedupe limits, from the configuration.
fn history_policy(config: &ServerConfig) -> HistoryPolicy {
    HistoryPolicy {
        history_size: config.history_size,
        history_ttl: Duration::from_millis(config.history_ttl_ms),
        dedupe_window: Duration::from_millis(config.dedupe_window_ms),
        dedupe_max_per_channel: config.dedupe_max_per_channel,
        overrides: config
            .channels
            .iter()
            .map(|r| HistoryOverride {
                pattern: r.pattern.clone(),
                history_size: r.history_size,
                history_ttl: r.history_ttl_ms.map(Duration::from_millis),
            })
            .collect(),
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

/// Ticks every session, sweeps the engine and runs the hub's position
/// check until shutdown has drained every session.
async fn background(shared: Arc<Shared>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_sweep = tokio::time::Instant::now();
    let mut checks: Option<tokio::task::JoinHandle<()>> = None;
    let lifecycle = &shared.env.lifecycle;
    loop {
        interval.tick().await;
        if lifecycle.is_shutting_down() && shared.open_sessions() == 0 {
            return;
        }
        lifecycle.tick();
        if last_sweep.elapsed() >= Duration::from_secs(1) {
            last_sweep = tokio::time::Instant::now();
            shared.env.hub.engine().sweep();
            if checks.as_ref().is_none_or(|c| c.is_finished()) {
                let env = shared.env.clone();
                checks = Some(tokio::spawn(async move { env.hub.check_positions().await }));
            }
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

    /// Graceful shutdown (CLOSE-SHUTDOWN): refuses new sessions (HTTP 503,
    /// `/healthz` too), sends every session a `disconnect` and close 1001
    /// after what is queued for it, waits up to `shutdown_grace_ms` for them
    /// to finish, then closes the listener.
    pub async fn shutdown(self) {
        let lifecycle = &self.shared.env.lifecycle;
        // Requests already being handled finish first: their messages reach
        // every subscriber's queue before any subscriber closes.
        lifecycle.close_intake(Duration::from_secs(1)).await;
        lifecycle.drain();
        let grace = Duration::from_millis(self.shared.env.config.shutdown_grace_ms);
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
        self.shared.env.lifecycle.stop();
        tracing::info!(
            remaining = self.shared.open_sessions(),
            "courier server stopped"
        );
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.shared.env.lifecycle.stop();
    }
}

/// Binds and spawns a server with `config` and the built-in RPC methods;
/// see [`ServerBuilder`] to add methods or another engine.
pub async fn start(config: ServerConfig) -> Result<RunningServer, ServerError> {
    ServerBuilder::new(config).start().await
}
