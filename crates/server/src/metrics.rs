//! Prometheus metrics: counters updated with relaxed atomics on the hot
//! path, gauges computed when `/metrics` is scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

/// Close codes counted individually; anything else is counted as `other`.
const CODES: [u16; 20] = [
    1000, 1001, 1006, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4100, 4101, 4102, 4200, 4201,
    4300, 4301, 1002, 1011,
];

/// Server-wide counters.
#[derive(Default)]
pub(crate) struct Metrics {
    pub ws_sessions: AtomicI64,
    pub sse_sessions: AtomicI64,
    pub connections_total: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub publishes: AtomicU64,
    disconnects: [AtomicU64; CODES.len() + 1],
}

impl Metrics {
    pub fn messages_in(&self, n: u64) {
        self.messages_in.fetch_add(n, Relaxed);
    }

    pub fn messages_out(&self, n: u64) {
        self.messages_out.fetch_add(n, Relaxed);
    }

    /// Counts a connection ended with `code`.
    pub fn disconnect(&self, code: u16) {
        let i = CODES.iter().position(|c| *c == code).unwrap_or(CODES.len());
        self.disconnects[i].fetch_add(1, Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self, queue_depth: usize, channels: usize) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        metric(
            "courier_connections",
            "gauge",
            "Open sessions by transport.",
            &[
                (
                    "{transport=\"ws\"}",
                    self.ws_sessions.load(Relaxed).to_string(),
                ),
                (
                    "{transport=\"sse\"}",
                    self.sse_sessions.load(Relaxed).to_string(),
                ),
            ],
        );
        metric(
            "courier_connections_total",
            "counter",
            "Sessions opened since start.",
            &[("", self.connections_total.load(Relaxed).to_string())],
        );
        metric(
            "courier_messages_in_total",
            "counter",
            "Frames received from clients.",
            &[("", self.messages_in.load(Relaxed).to_string())],
        );
        metric(
            "courier_messages_out_total",
            "counter",
            "Envelopes sent to clients.",
            &[("", self.messages_out.load(Relaxed).to_string())],
        );
        metric(
            "courier_publishes_total",
            "counter",
            "Publishes accepted (numbered or deduplicated).",
            &[("", self.publishes.load(Relaxed).to_string())],
        );
        metric(
            "courier_queue_depth",
            "gauge",
            "Frames waiting in send queues, all connections.",
            &[("", queue_depth.to_string())],
        );
        metric(
            "courier_channels",
            "gauge",
            "Channels with state in the engine.",
            &[("", channels.to_string())],
        );
        let labels: Vec<String> = CODES
            .iter()
            .map(|c| format!("{{code=\"{c}\"}}"))
            .chain(["{code=\"other\"}".to_string()])
            .collect();
        let samples: Vec<(&str, String)> = labels
            .iter()
            .zip(&self.disconnects)
            .map(|(l, v)| (l.as_str(), v.load(Relaxed).to_string()))
            .collect();
        metric(
            "courier_disconnects_total",
            "counter",
            "Connections ended, by close code.",
            &samples,
        );
        out
    }
}
