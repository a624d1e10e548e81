//! Test support: a scripted WebSocket server, a fault-injecting TCP proxy
//! and a reference-server launcher.
#![allow(dead_code)]

pub mod proxy;
pub mod script;

use std::time::Duration;

use courier_client::{ClientConfig, Events};

/// A reference server on a free loopback port with short heartbeats.
pub async fn server(
    tweak: impl FnOnce(&mut courier_server::ServerConfig),
) -> courier_server::RunningServer {
    let mut config = courier_server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        heartbeat_interval_ms: 200,
        heartbeat_grace_ms: 200,
        shutdown_grace_ms: 500,
        ..Default::default()
    };
    tweak(&mut config);
    courier_server::start(config).await.expect("server starts")
}

/// A client configuration with test-sized timers.
pub fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.backoff(Duration::from_millis(20), Duration::from_millis(200))
        .reconnect_now_max(Duration::from_millis(20))
        .connect_timeout(Duration::from_secs(3))
        .request_timeout(Duration::from_secs(3));
    c
}

/// Waits (bounded) for an event matching `pred`.
pub async fn wait_event(
    events: &mut Events,
    pred: impl Fn(&courier_client::ConnectionEvent) -> bool,
) -> Vec<courier_client::ConnectionEvent> {
    let mut seen = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(e) = events.recv().await {
            let done = pred(&e);
            seen.push(e);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(r.is_ok(), "timed out waiting for an event; saw {seen:?}");
    seen
}
