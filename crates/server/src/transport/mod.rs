//! The transports: the HTTP server (`http`: one port for `/ws`, `/sse`,
//! `/publish`, `/healthz`, `/metrics`, optional TLS), the WebSocket and SSE
//! framing of session frames (`ws`, `sse`), and the connection accounting
//! shared by them (per client address, per transport, drain on shutdown).
//! Transports hand sessions to the session core (`crate::session`) and
//! differ only in how frames reach the wire.

mod head;
pub(crate) mod http;
mod linger;
pub(crate) mod sse;
pub(crate) mod tls;
pub(crate) mod ws;
mod ws_read;
mod ws_socket;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use courier_protocol::Subprotocol;
use tokio::sync::Notify;

#[cfg(feature = "faults")]
use crate::faults::Fault;
use crate::hub::Outbox;
use crate::session::Env;
use head::RequestHeaders;

/// Server-wide state of the transport layer.
pub(crate) struct Shared {
    pub env: Arc<Env>,
    pub supported: Vec<Subprotocol>,
    /// The injected fault (feature `faults`): connections then run through
    /// the faulty transport wrapper (`crate::faults::transport`).
    #[cfg(feature = "faults")]
    pub fault: Option<Fault>,
    sessions: Mutex<HashMap<u64, Arc<Outbox>>>,
    next_registration: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, u32>>,
    active: AtomicUsize,
    pub drained: Notify,
}

/// Which transport a session uses (metrics).
#[derive(Clone, Copy)]
pub(crate) enum Transport {
    Ws,
    Sse,
}

impl Shared {
    pub(crate) fn new(env: Arc<Env>, supported: Vec<Subprotocol>) -> Self {
        Shared {
            env,
            supported,
            #[cfg(feature = "faults")]
            fault: None,
            sessions: Mutex::new(HashMap::new()),
            next_registration: AtomicU64::new(0),
            per_ip: Mutex::new(HashMap::new()),
            active: AtomicUsize::new(0),
            drained: Notify::new(),
        }
    }

    /// VER-HIGHEST-COMMON over the client's offers.
    pub(crate) fn negotiate(&self, offers: &[String]) -> Option<Subprotocol> {
        #[cfg(feature = "faults")]
        if self.fault == Some(Fault::IgnoreVersionOffer) {
            return offers
                .iter()
                .filter_map(|o| o.parse().ok())
                .find(|p| self.supported.contains(p));
        }
        #[cfg(feature = "faults")]
        if self.fault == Some(Fault::CaseInsensitiveOffers) {
            let lower: Vec<String> = offers.iter().map(|o| o.to_ascii_lowercase()).collect();
            return courier_protocol::negotiate(lower.iter().map(String::as_str), &self.supported);
        }
        courier_protocol::negotiate(offers.iter().map(String::as_str), &self.supported)
    }

    /// Checks `Origin` against `allowed_origins`. Requests without an
    /// Origin (non-browser clients) are allowed: the check exists to stop
    /// browsers from being used cross-site. An Origin that is present
    /// matches an allowed one byte for byte, ASCII case aside.
    pub(crate) fn origin_allowed(&self, headers: &(impl RequestHeaders + ?Sized)) -> bool {
        let allowed = &self.env.config.allowed_origins;
        if allowed.is_empty() || allowed.iter().any(|a| a == "*") {
            return true;
        }
        match headers.header("origin") {
            None => true,
            Some(origin) => allowed
                .iter()
                .any(|a| a.as_bytes().eq_ignore_ascii_case(origin.trim_ascii())),
        }
    }

    /// Counts a TCP connection from `peer` until the guard drops.
    pub(crate) fn connection(self: &Arc<Self>, peer: SocketAddr) -> ConnGuard {
        let ip = peer.ip();
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        *n += 1;
        let over_ip = *n > self.env.config.max_connections_per_ip;
        ConnGuard(Arc::new(ConnInner {
            shared: self.clone(),
            ip,
            over_ip,
        }))
    }

    /// Counts an open session until the guard drops.
    pub(crate) fn session_opened(self: &Arc<Self>, transport: Transport) -> SessionGuard {
        let m = &self.env.metrics;
        m.gauge(transport).fetch_add(1, Ordering::Relaxed);
        m.connections_total.fetch_add(1, Ordering::Relaxed);
        self.active.fetch_add(1, Ordering::AcqRel);
        SessionGuard {
            shared: self.clone(),
            transport,
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

impl crate::metrics::Metrics {
    fn gauge(&self, transport: Transport) -> &std::sync::atomic::AtomicI64 {
        match transport {
            Transport::Ws => &self.ws_sessions,
            Transport::Sse => &self.sse_sessions,
        }
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
        if s.open_sessions() >= s.env.config.max_connections as usize {
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
            .env
            .metrics
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
