//! Several `courier serve` nodes behind Debian's nginx, run with the
//! repository's `deploy/nginx/courier.conf`: the harness (a node drained
//! with SIGTERM, restarted on its port, killed with SIGKILL). Real
//! processes throughout: the `courier` binary of this workspace, nginx, and
//! a `courier-client` client connecting through nginx.

use std::time::Duration;

use courier_client::{Client, ClientConfig};
use courier_testkit::{workspace_root, NginxProcess, Node, NGINX_CONF};

/// Bound on every wait: a hung step fails the test instead of the CI job.
const LIMIT: Duration = Duration::from_secs(30);

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
