//! What every session of a server shares: configuration, credentials
//! checks, the hub, RPC methods, metrics, session ids and the lifecycle
//! signals (the periodic tick and shutdown).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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

/// The shared ticker and the shutdown phases. `shutdown` closes the
/// intake: no new session (HTTP 503, `/healthz` too) and no new request;
/// once the requests already being handled are done (their messages
/// queued for every subscriber), `draining` tells sessions to flush and
/// close with 1001; `stopped` ends the drain (the listener closes). The
/// order keeps a publisher from holding an ack for a message that a
/// subscriber closing at the same moment never got.
pub(crate) struct Lifecycle {
    shutdown: watch::Sender<bool>,
    draining: AtomicBool,
    stopped: watch::Sender<bool>,
    tick: watch::Sender<()>,
    in_flight: AtomicUsize,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle {
            shutdown: watch::channel(false).0,
            draining: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            tick: watch::channel(()).0,
            in_flight: AtomicUsize::new(0),
        }
    }
}

/// A request being handled (see [`Lifecycle::enter`]).
pub(crate) struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
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

    /// Resolves once the drain is over.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stopped.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub(crate) fn stop(&self) {
        self.begin_shutdown();
        self.stopped.send_replace(true);
    }

    /// Admits a request, or `None` once the intake is closed (the client
    /// gets no reply; it resends after reconnecting, CLIENT-OFFLINE-QUEUE).
    pub(crate) fn enter(&self) -> Option<InFlight<'_>> {
        // SeqCst on both sides: either `close_intake` sees this request in
        // flight, or this request sees the intake closed.
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let guard = InFlight(&self.in_flight);
        (!*self.shutdown.borrow()).then_some(guard)
    }

    /// Closes the intake; resolves when no request is in flight any more
    /// (or after `limit`).
    pub(crate) async fn close_intake(&self, limit: std::time::Duration) {
        self.shutdown.send_replace(true);
        let deadline = tokio::time::Instant::now() + limit;
        while self.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }

    /// Whether sessions should flush and close (CLOSE-SHUTDOWN).
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Tells every session to flush its queue and close with 1001.
    pub(crate) fn drain(&self) {
        self.shutdown.send_replace(true);
        self.draining.store(true, Ordering::SeqCst);
        self.tick.send_replace(());
    }

    pub(crate) fn begin_shutdown(&self) {
        self.drain();
    }
}
