//! Prometheus metrics: counters and histograms updated with relaxed
//! atomics on the hot path, gauges computed when `/metrics` is scraped.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Bucket bounds (seconds) of the latency histograms: 0.5 ms to 5 s.
const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A Prometheus histogram over [`LATENCY_BUCKETS`], lock-free.
#[derive(Default)]
pub(crate) struct Histogram {
    /// Observations per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u64::MAX as u128) as u64, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative += count.load(Relaxed);
            let le = LATENCY_BUCKETS
                .get(i)
                .map_or("+Inf".to_string(), |b| b.to_string());
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

/// Close codes counted individually; anything else is counted as `other`.
const CODES: [u16; 20] = [
    1000, 1001, 1006, 1009, 4000, 4001, 4002, 4003, 4004, 4005, 4006, 4100, 4101, 4102, 4200, 4201,
    4300, 4301, 1002, 1011,
];

/// Figures read from the other layers when `/metrics` is scraped.
pub(crate) struct Scraped<'a> {
    /// Frames waiting in all send queues.
    pub queue_depth: usize,
    /// Channels with state in the engine.
    pub channels: usize,
    /// Publishes the engine's dedupe record holds.
    pub dedupe_records: u64,
    /// Heap bytes of the dedupe record (0: the engine does not say).
    pub dedupe_bytes: u64,
    /// Records forgotten by DEDUP-MAX before their window ended, since start.
    pub dedupe_evicted_early: u64,
    /// The hub's delivery histogram.
    pub delivery: &'a Histogram,
}

/// Server-wide counters.
#[derive(Default)]
pub(crate) struct Metrics {
    pub ws_sessions: AtomicI64,
    pub sse_sessions: AtomicI64,
    pub connections_total: AtomicU64,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub publishes: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// How long the oldest frame of each write waited in its send queue.
    pub queue_wait: Histogram,
    disconnects: [AtomicU64; CODES.len() + 1],
}

impl Metrics {
    pub fn messages_in(&self, n: u64) {
        self.messages_in.fetch_add(n, Relaxed);
    }

    /// Counts one frame received from a client.
    pub fn received(&self, frame: &[u8]) {
        self.messages_in(1);
        self.bytes_in.fetch_add(frame.len() as u64, Relaxed);
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
    pub fn render(&self, scraped: &Scraped<'_>) -> String {
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
            "courier_received_bytes_total",
            "counter",
            "Bytes of frames received from clients (payload of WebSocket messages).",
            &[("", self.bytes_in.load(Relaxed).to_string())],
        );
        metric(
            "courier_sent_bytes_total",
            "counter",
            "Bytes of frames sent to clients (WebSocket message payloads, SSE events).",
            &[("", self.bytes_out.load(Relaxed).to_string())],
        );
        metric(
            "courier_build_info",
            "gauge",
            "Build of this server (always 1).",
            &[(
                concat!(
                    "{version=\"",
                    env!("CARGO_PKG_VERSION"),
                    "\",protocol_versions=\"1,2\"}"
                ),
                "1".to_string(),
            )],
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
            &[("", scraped.queue_depth.to_string())],
        );
        metric(
            "courier_channels",
            "gauge",
            "Channels with state in the engine.",
            &[("", scraped.channels.to_string())],
        );
        metric(
            "courier_dedupe_records",
            "gauge",
            "Publishes remembered for deduplication, all channels (DEDUP-WINDOW).",
            &[("", scraped.dedupe_records.to_string())],
        );
        metric(
            "courier_dedupe_bytes",
            "gauge",
            "Heap bytes held by the dedupe record (0 when the engine does not report it).",
            &[("", scraped.dedupe_bytes.to_string())],
        );
        metric(
            "courier_dedupe_evicted_early_total",
            "counter",
            "Publishes forgotten before their dedupe window ended because their channel reached dedupe_max_per_channel (DEDUP-MAX).",
            &[("", scraped.dedupe_evicted_early.to_string())],
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
        scraped.delivery.render(
            &mut out,
            "courier_delivery_latency_seconds",
            "From a message's numbering (its ts, millisecond precision) to its frame being queued for every subscriber on this node.",
        );
        self.queue_wait.render(
            &mut out,
            "courier_send_queue_wait_seconds",
            "How long the oldest frame of a socket write waited in the session's send queue (one write in 16 per session, sampled).",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_render_cumulative_buckets() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(10));
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "help");
        assert!(out.contains("x_seconds_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_seconds_count 3\n"), "{out}");
        assert!(out.contains("x_seconds_sum 10.0033\n"), "{out}");
    }
}
