//! Several `courier serve` nodes on one Redis behind Debian's nginx, run
//! with the repository's `deploy/nginx/courier.conf` (docs/deploy.md): a
//! node killed with SIGKILL, and a rolling restart of every node (SIGTERM,
//! drain, restart) under publish load. Real processes throughout: a
//! `redis-server`, the `courier` binary of this workspace, nginx, and
//! `courier-client` clients connecting through nginx. The conformance
//! suite's history checker counts lost and duplicated deliveries: 0 and 0.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier_client::{Client, ClientConfig, Recovery, SubscriptionEvent};
use courier_conformance::history::History;
use courier_testkit::{workspace_root, NginxProcess, Node, RedisProcess, NGINX_CONF};

/// Bound on every wait: a hung step fails the test instead of the CI job.
const LIMIT: Duration = Duration::from_secs(30);
/// The channel every test publishes to.
const CHANNEL: &str = "cluster.orders";

/// A node's configuration: the Redis engine, short heartbeats so a dead
/// link is noticed within a second or two, a short drain, and rate limits
/// that a test publisher does not reach.
fn node_config(redis_url: &str) -> String {
    format!(
        r#"heartbeat_interval_ms = 1000
heartbeat_grace_ms = 1000
shutdown_grace_ms = 2000
history_size = 10000
max_messages_per_second = 10000
max_burst = 10000

[engine]
kind = "redis"
url = "{redis_url}"
"#
    )
}

/// Redis, `n` nodes and nginx in front of them.
struct Cluster {
    nodes: Vec<Node>,
    nginx: NginxProcess,
    _redis: RedisProcess,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        let redis = RedisProcess::start().expect("redis-server starts");
        let config = node_config(&redis.url());
        let nodes: Vec<Node> = (0..n)
            .map(|_| Node::start(env!("CARGO_BIN_EXE_courier"), &config).expect("node starts"))
            .collect();
        let upstreams: Vec<_> = nodes.iter().map(Node::addr).collect();
        let nginx = NginxProcess::start(&workspace_root().join(NGINX_CONF), &upstreams)
            .expect("nginx starts");
        Cluster {
            nodes,
            nginx,
            _redis: redis,
        }
    }

    /// WebSocket sessions open on node `i`.
    fn sessions(&self, i: usize) -> usize {
        self.nodes[i]
            .metric("courier_connections{transport=\"ws\"}")
            .unwrap_or(0.0) as usize
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            let log = n.log();
            let tail = &log[log.len().saturating_sub(4000)..];
            out.push_str(&format!("--- node {i} ---\n{tail}\n"));
        }
        out.push_str(&format!("--- nginx ---\n{}", self.nginx.log()));
        out
    }
}

/// A client through nginx with a fast reconnect schedule (the jitter and
/// backoff of CLIENT-BACKOFF-JITTER, scaled down for a test).
async fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url);
    config
        .offers(["courier.v2.msgpack", "courier.v2.json", "courier.v1.json"])
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .reconnect_now_max(Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(5));
    tokio::time::timeout(LIMIT, config.connect())
        .await
        .expect("connects in time")
        .expect("connects")
}

/// What every subscriber and publisher saw, for the history checker.
#[derive(Default)]
struct Record {
    history: History,
    /// Resumes that failed (possible loss reported to the application).
    failed_recoveries: usize,
    /// Resumes that succeeded (a subscriber came back after a reconnect).
    recoveries: usize,
    /// Gaps the client had to repair.
    gaps: usize,
    /// The highest seq acknowledged to any publisher.
    top: u64,
    /// The highest seq delivered to each subscriber.
    delivered: Vec<u64>,
    /// Subscribers whose first subscription is active.
    subscribed: usize,
}

type Shared = Arc<Mutex<Record>>;

/// Subscribes subscriber `k` and records its stream until `stop`.
async fn subscriber(url: String, k: usize, record: Shared, stop: Arc<AtomicBool>) {
    let c = client(&url).await;
    let mut sub = tokio::time::timeout(LIMIT, c.subscribe(CHANNEL))
        .await
        .expect("subscribes in time")
        .expect("subscribes");
    let mut stream = k * 1000;
    while !stop.load(Ordering::Relaxed) {
        let Ok(event) = tokio::time::timeout(Duration::from_millis(100), sub.recv()).await else {
            continue;
        };
        let Some(event) = event else { break };
        let mut r = record.lock().unwrap();
        match event {
            SubscriptionEvent::Subscribed { position, recovery } => match recovery {
                Recovery::NotRequested => {
                    r.subscribed += 1;
                    r.history
                        .record_subscribed(k, stream, 0, &position.epoch, position.seq, false)
                }
                Recovery::Recovered { .. } => r.recoveries += 1,
                Recovery::Failed { .. } => {
                    r.failed_recoveries += 1;
                    stream += 1;
                    r.history
                        .record_subscribed(k, stream, 0, &position.epoch, position.seq, true);
                }
            },
            SubscriptionEvent::Message(m) => {
                r.history
                    .record_delivery(k, stream, 0, &m.epoch, m.seq, &m.id);
                r.delivered[k] = r.delivered[k].max(m.seq);
            }
            SubscriptionEvent::Gap { .. } => r.gaps += 1,
            SubscriptionEvent::Ended(e) => panic!("subscriber {k} ended: {e}"),
            _ => {}
        }
    }
    c.close().await;
}

/// Publishes `count` messages one after another (each waits for its ack,
/// across reconnects: the client resends with the same id), with `pause`
/// between them; records every ack.
async fn publisher(
    url: String,
    count: usize,
    pause: Duration,
    record: Shared,
    done: Arc<AtomicUsize>,
) {
    let c = client(&url).await;
    for i in 0..count {
        let ack = tokio::time::timeout(LIMIT, c.publish(CHANNEL, &serde_json::json!({ "i": i })))
            .await
            .expect("publish acknowledged in time")
            .expect("publish acknowledged");
        {
            let mut r = record.lock().unwrap();
            r.history
                .record_ack(0, &ack.id, &ack.epoch, ack.seq, ack.duplicate);
            r.top = r.top.max(ack.seq);
        }
        done.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
    }
    c.close().await;
}

/// Subscribers and publishers through nginx, and the checks at the end.
struct Traffic {
    record: Shared,
    stop: Arc<AtomicBool>,
    published: Arc<AtomicUsize>,
    subscribers: Vec<tokio::task::JoinHandle<()>>,
    publishers: Vec<tokio::task::JoinHandle<()>>,
}

impl Traffic {
    /// `subs` subscribers, then `pubs` publishers of `count` messages each.
    async fn start(url: &str, subs: usize, pubs: usize, count: usize, pause: Duration) -> Traffic {
        let record: Shared = Arc::new(Mutex::new(Record {
            delivered: vec![0; subs],
            ..Record::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let subscribers: Vec<_> = (0..subs)
            .map(|k| tokio::spawn(subscriber(url.to_string(), k, record.clone(), stop.clone())))
            .collect();
        // Every subscriber is subscribed before the first publish.
        let deadline = Instant::now() + LIMIT;
        while record.lock().unwrap().subscribed < subs {
            assert!(Instant::now() < deadline, "subscribers did not subscribe");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let published = Arc::new(AtomicUsize::new(0));
        let publishers = (0..pubs)
            .map(|_| {
                tokio::spawn(publisher(
                    url.to_string(),
                    count,
                    pause,
                    record.clone(),
                    published.clone(),
                ))
            })
            .collect();
        Traffic {
            record,
            stop,
            published,
            subscribers,
            publishers,
        }
    }

    /// Waits until `n` publishes were acknowledged.
    async fn until_published(&self, n: usize) {
        let deadline = Instant::now() + LIMIT;
        while self.published.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "publishes stalled at {}",
                self.published.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Lets the publishers finish, waits until every subscriber has the
    /// last acknowledged message, stops them, and checks the history.
    async fn finish(self, cluster: &Cluster) -> Record {
        for p in self.publishers {
            tokio::time::timeout(LIMIT * 2, p)
                .await
                .expect("publishers finish in time")
                .expect("publisher succeeded");
        }
        let deadline = Instant::now() + LIMIT;
        loop {
            let (top, behind) = {
                let r = self.record.lock().unwrap();
                (r.top, r.delivered.iter().filter(|d| **d < r.top).count())
            };
            if behind == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{behind} subscribers never reached seq {top}\n{}",
                cluster.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.store(true, Ordering::Relaxed);
        for s in self.subscribers {
            tokio::time::timeout(LIMIT, s)
                .await
                .expect("subscribers stop in time")
                .expect("subscriber succeeded");
        }
        let record = Arc::try_unwrap(self.record)
            .ok()
            .expect("tasks are done")
            .into_inner()
            .unwrap();
        let tally = record.history.tally();
        let violations = record.history.violations();
        assert!(
            violations.is_empty() && tally.lost == 0 && tally.duplicated == 0,
            "lost {}, duplicated {}: {violations:#?}\n{}",
            tally.lost,
            tally.duplicated,
            cluster.logs()
        );
        assert_eq!(
            (record.failed_recoveries, record.gaps),
            (0, 0),
            "every resume recovered exactly, without a gap to repair"
        );
        record
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_with_sigkill_loses_nothing_its_clients_resume_on_the_other() {
    let mut cluster = Cluster::start(2);
    let url = cluster.nginx.ws_url();
    // nginx balances round robin: with 8 subscribers both nodes have some.
    let traffic = Traffic::start(&url, 8, 2, 150, Duration::from_millis(5)).await;
    let on_killed = cluster.sessions(0);
    assert!(
        on_killed > 0 && cluster.sessions(1) > 0,
        "sessions on both nodes: {on_killed} and {}",
        cluster.sessions(1)
    );
    traffic.until_published(60).await;
    cluster.nodes[0].kill().expect("SIGKILL");
    let record = traffic.finish(&cluster).await;
    assert!(
        record.recoveries >= on_killed.saturating_sub(2),
        "the killed node's subscribers resumed elsewhere: {} recoveries, {on_killed} sessions were on it",
        record.recoveries
    );
    assert!(
        record.top >= 300,
        "every publish numbered: top seq {}",
        record.top
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_publish_load_loses_no_acknowledged_message() {
    let mut cluster = Cluster::start(2);
    let url = cluster.nginx.ws_url();
    let traffic = Traffic::start(&url, 6, 2, 400, Duration::from_millis(5)).await;
    traffic.until_published(50).await;
    for i in 0..cluster.nodes.len() {
        let before = traffic.published.load(Ordering::Relaxed);
        let status = cluster.nodes[i]
            .terminate(Duration::from_secs(15))
            .expect("drains and exits");
        assert!(
            status.success(),
            "node {i} exited with {status}\n{}",
            cluster.logs()
        );
        cluster.nodes[i].restart().expect("restarts on its port");
        assert_eq!(cluster.nodes[i].healthz().unwrap(), 200);
        // Load continued meanwhile, on the other node.
        traffic.until_published(before + 40).await;
    }
    let record = traffic.finish(&cluster).await;
    assert!(record.recoveries > 0, "subscribers moved between nodes");
    assert!(
        record.top >= 800,
        "every publish numbered: top seq {}",
        record.top
    );
}

/// The embedded reference server's test configuration (short timers, an
/// HS256 secret, a forbidden channel) on the Redis engine, for nodes that
/// the conformance suite tests with the matching profile.
fn conformance_node_config(redis_url: &str) -> String {
    format!(
        "{}\n[engine]\nkind = \"redis\"\nurl = \"{redis_url}\"\n",
        courier_conformance::embedded::config_toml(None)
    )
}

/// Restarts every node in turn (SIGTERM, drain, start on the same port)
/// whenever the suite's `restart_command` asks, by creating `request`; the
/// command returns once the file is gone. Returns the nodes when `stop`.
fn restart_on_request(
    mut nodes: Vec<Node>,
    request: std::path::PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<Node>> {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if request.exists() {
                for node in &mut nodes {
                    node.terminate(Duration::from_secs(10))
                        .expect("node drains");
                    node.restart().expect("node restarts");
                }
                std::fs::remove_file(&request).expect("request file removed");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nodes
    })
}

#[test]
fn the_whole_conformance_suite_passes_against_two_nodes_on_redis_directly_and_through_nginx() {
    let redis = RedisProcess::start().expect("redis-server starts");
    let config = conformance_node_config(&redis.url());
    let nodes: Vec<Node> = (0..2)
        .map(|_| Node::start(env!("CARGO_BIN_EXE_courier"), &config).expect("node starts"))
        .collect();
    let urls: Vec<String> = nodes.iter().map(Node::ws_url).collect();
    let nginx = NginxProcess::start(
        &workspace_root().join(NGINX_CONF),
        &nodes.iter().map(Node::addr).collect::<Vec<_>>(),
    )
    .expect("nginx starts");
    let dir = courier_testkit::ScratchDir::new("cluster-conform").unwrap();
    let request = dir.path().join("restart-request");
    // The restart cases (close.shutdown, resume.after-restart: the epoch
    // survives a restart on Redis) restart the whole deployment, node by node.
    let restart = format!(
        "touch {r} && for i in $(seq 600); do [ -e {r} ] || exit 0; sleep 0.05; done; exit 1",
        r = request.display()
    );
    let profile = dir.path().join("cluster.toml");
    std::fs::write(
        &profile,
        format!(
            "sse_url = \"/sse\"\nrestart_command = \"{restart}\"\n{}",
            courier_conformance::embedded::profile_toml()
        ),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let restarter = restart_on_request(nodes, request, stop.clone());
    // close.precedence through nginx: an oversized first frame's 1009 close
    // arrives (the node's lingering close, docs/deploy.md).
    let runs = [("directly", urls), ("through nginx", vec![nginx.ws_url()])];
    let mut failures = Vec::new();
    for (how, urls) in runs {
        let json = dir.path().join("report.json");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .arg("conform")
            .args(&urls)
            .arg("--profile")
            .arg(&profile)
            .arg("--report-json")
            .arg(&json)
            .output()
            .expect("courier conform runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
                .unwrap_or_default();
        let not_passed: Vec<String> = report["results"]
            .as_array()
            .map(|rs| {
                rs.iter()
                    .filter(|r| r["outcome"] != "pass")
                    .map(|r| format!("{} {}: {}", r["id"], r["outcome"], r["message"]))
                    .collect()
            })
            .unwrap_or_default();
        if out.status.code() != Some(0) || !not_passed.is_empty() {
            failures.push(format!(
                "{how}: exit {:?}, not passed: {not_passed:#?}\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let nodes = restarter.join().expect("restarter");
    let mut logs = String::new();
    for (i, n) in nodes.iter().enumerate() {
        let log = n.log();
        logs.push_str(&format!(
            "--- node {i} ---\n{}\n",
            &log[log.len().saturating_sub(3000)..]
        ));
    }
    assert!(failures.is_empty(), "{}\n{logs}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_drains_on_sigterm_and_restarts_on_its_port_behind_nginx() {
    // The harness itself, on the default memory engine: SIGTERM drains
    // (the client gets 1001 and reconnects through nginx to the restarted
    // node), SIGKILL kills, and a restart keeps the port nginx knows.
    let mut node = Node::start(env!("CARGO_BIN_EXE_courier"), "shutdown_grace_ms = 1000\n")
        .expect("node starts");
    let addr = node.addr();
    let nginx =
        NginxProcess::start(&workspace_root().join(NGINX_CONF), &[addr]).expect("nginx starts");
    assert_eq!(node.healthz().unwrap(), 200);
    let c = client(&nginx.ws_url()).await;
    let mut events = c.events();
    let status = node.terminate(Duration::from_secs(10)).expect("exits");
    assert!(status.success(), "{status}\n{}", node.log());
    let closed = tokio::time::timeout(LIMIT, async {
        while let Some(e) = events.recv().await {
            if let courier_client::ConnectionEvent::Disconnected { code, .. } = e {
                return code;
            }
        }
        0
    })
    .await
    .expect("the client learns of the drain");
    assert_eq!(closed, 1001, "drained with 1001 (CLOSE-SHUTDOWN)");
    node.restart().expect("restarts");
    assert_eq!(node.addr(), addr);
    tokio::time::timeout(LIMIT, async {
        while !c.is_connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the client reconnects through nginx");
    node.kill().expect("SIGKILL");
    assert!(!node.is_running());
    assert!(node.healthz().is_err(), "nothing answers once killed");
    c.close().await;
}

#[test]
fn an_oversized_first_frame_is_closed_with_1009_through_nginx_every_time() {
    // CLOSE-OVERSIZE through a proxy: the node refuses the frame at its
    // header and never reads its payload; without the lingering close the
    // reset destroyed the 1009 close frame about one time in three (the
    // client saw 1006). close.precedence sends such a frame once per
    // version and encoding; five runs make 30 attempts.
    let node = Node::start(env!("CARGO_BIN_EXE_courier"), "").expect("node starts");
    let nginx = NginxProcess::start(&workspace_root().join(NGINX_CONF), &[node.addr()])
        .expect("nginx starts");
    for run in 0..5 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_courier"))
            .arg("conform")
            .arg(nginx.ws_url())
            .args(["--profile", "builtin:courier-serve"])
            .args(["--only", "close.precedence/*"])
            .output()
            .expect("courier conform runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {run}:\n{}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            nginx.log()
        );
    }
}
