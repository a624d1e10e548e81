//! What every session of a server shares: configuration, credentials
//! checks, the hub, RPC methods, metrics, session ids and the lifecycle
//! signals (the periodic tick and shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::watch;

use crate::auth::{Authenticator, Authorizer};
use crate::config::ServerConfig;
use crate::features::Features;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::rpc::RpcHandler;

/// Server-wide state the session core needs.
pub(crate) struct Env {
    pub config: ServerConfig,
    /// The features this server offers.
    pub features: Features,
    pub auth: Authenticator,
    pub authz: Authorizer,
    pub hub: Arc<Hub>,
    pub rpc: HashMap<String, Arc<dyn RpcHandler>>,
    pub metrics: Metrics,
    /// Frames a session's send queue holds (LIMIT-SLOW-CONSUMER).
    pub queue_capacity: usize,
    pub lifecycle: Lifecycle,
    session_prefix: String,
    next_session: AtomicU64,
}

impl Env {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        config: ServerConfig,
        features: Features,
        auth: Authenticator,
        authz: Authorizer,
        hub: Arc<Hub>,
        rpc: HashMap<String, Arc<dyn RpcHandler>>,
        queue_capacity: usize,
    ) -> Self {
        Env {
            config,
            features,
            auth,
            authz,
            hub,
            rpc,
            metrics: Metrics::default(),
            queue_capacity,
            lifecycle: Lifecycle::default(),
            session_prefix: format!(
                "{}{}_",
                crate::base36(crate::now_ms() % 1_000_000_000),
                crate::base36(fastrand::u64(..) & 0xffffff)
            ),
            next_session: AtomicU64::new(1),
        }
    }

    /// SESSION-ID-UNIQUE: a random per-process prefix plus a counter.
    pub(crate) fn new_session_id(&self) -> Arc<str> {
        let n = self.next_session.fetch_add(1, Ordering::Relaxed);
        format!("s_{}{}", self.session_prefix, crate::base36(n)).into()
    }
}

/// The shared ticker and the shutdown signal.
pub(crate) struct Lifecycle {
    shutdown: watch::Sender<bool>,
    tick: watch::Sender<()>,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            shutdown: watch::channel(false).0,
            tick: watch::channel(()).0,
        }
    }
}

impl Lifecycle {
    pub(crate) fn shutdown_rx(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Ticks for the periodic session checks; also ticks once when shutdown
    /// begins, so that sessions wait on this watch alone.
    pub(crate) fn tick_rx(&self) -> watch::Receiver<()> {
        self.tick.subscribe()
    }

    pub(crate) fn tick(&self) {
        self.tick.send_replace(());
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
        self.tick.send_replace(());
    }
}
