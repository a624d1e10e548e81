//! `wss://` against the reference server with a certificate generated at
//! test time (rcgen): round trips in every encoding, trust from a PEM file
//! with the web roots disabled, a black-holed TLS link resumed through a TCP
//! proxy, and the failures (unknown issuer, wrong name, TLS to a plain port,
//! unusable trust settings) surfacing as errors instead of hangs.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use courier_client::{
    Client, ClientConfig, ClientError, ConnectionEvent, Recovery, Subprotocol, SubscriptionEvent,
};
use support::proxy::Proxy;
use support::{config, server, wait_event};

const LIMIT: Duration = Duration::from_secs(10);

/// A self-signed certificate for `names`, written to a fresh directory.
struct TestCert {
    cert: rcgen::CertifiedKey<rcgen::KeyPair>,
    dir: PathBuf,
}

impl TestCert {
    fn new(names: &[&str]) -> TestCert {
        let cert = rcgen::generate_simple_self_signed(
            names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let dir = std::env::temp_dir().join(format!(
            "courier-client-tls-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
        TestCert { cert, dir }
    }

    fn server_tls(&self) -> courier_server::TlsConfig {
        courier_server::TlsConfig {
            cert_file: self.dir.join("cert.pem"),
            key_file: self.dir.join("key.pem"),
        }
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads `count` messages (bounded), returning them and the other events.
async fn collect(
    sub: &mut courier_client::Subscription,
    count: usize,
) -> (Vec<courier_client::Message>, Vec<SubscriptionEvent>) {
    let (mut messages, mut others) = (Vec::new(), Vec::new());
    let r = tokio::time::timeout(LIMIT, async {
        while messages.len() < count {
            match sub.recv().await {
                Some(SubscriptionEvent::Message(m)) => messages.push(m),
                Some(other) => others.push(other),
                None => return,
            }
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "timed out with {} of {count} messages; other events {others:?}",
        messages.len()
    );
    (messages, others)
}

#[tokio::test]
async fn wss_round_trip_in_every_encoding() {
    // An IP SAN: the server's own `wss://127.0.0.1:PORT/ws` URL verifies.
    let cert = TestCert::new(&["127.0.0.1"]);
    let srv = server(|c| c.tls = Some(cert.server_tls())).await;
    let url = srv.ws_url();
    assert!(url.starts_with("wss://127.0.0.1:"), "{url}");
    for sp in Subprotocol::ALL {
        let client = Client::connect(
            config(&url)
                .subprotocols([sp])
                .add_root_certificate(cert.cert.cert.der().clone())
                .clone(),
        )
        .await
        .unwrap_or_else(|e| panic!("{sp}: {e}"));
        let channel = format!("tls-{sp}");
        let mut sub = client.subscribe(&channel).await.unwrap();
        let value = serde_json::json!({ "text": format!("over TLS in {sp}") });
        let ack = client.publish(&channel, &value).await.unwrap();
        let (messages, _) = collect(&mut sub, 1).await;
        assert_eq!(messages[0].seq, ack.seq);
        assert_eq!(messages[0].decode::<serde_json::Value>().unwrap(), value);
        client.close().await;
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn private_ca_from_pem_with_web_roots_off_survives_a_black_holed_link() {
    // A DNS SAN, checked through SNI; the client reaches the server through a
    // TCP proxy that forwards the TLS bytes untouched until it black-holes.
    let cert = TestCert::new(&["localhost"]);
    let srv = server(|c| c.tls = Some(cert.server_tls())).await;
    let proxy = Proxy::start(srv.local_addr().to_string()).await;
    let url = proxy.url.replace("ws://127.0.0.1", "wss://localhost");
    let pem = std::fs::read(cert.dir.join("cert.pem")).unwrap();
    let mut cfg = config(&url);
    cfg.web_roots(false)
        .add_root_certificates_pem(&pem)
        .unwrap()
        .subprotocols([Subprotocol::ALL[1]]);
    let client = Client::connect(cfg).await.unwrap();
    let mut events = client.events();
    let mut sub = client.subscribe("tls-hole").await.unwrap();
    for n in 1..=3u64 {
        client.publish("tls-hole", &n).await.unwrap();
    }
    let (first, _) = collect(&mut sub, 3).await;

    // Nothing arrives any more: only the heartbeat deadline (400 ms with the
    // test server's timers) notices, then the client reconnects over a new
    // TLS link and resumes from seq 3.
    proxy.blackhole();
    wait_event(&mut events, |e| {
        matches!(e, ConnectionEvent::Disconnected { .. })
    })
    .await;
    let publisher = Client::connect(
        config(&srv.ws_url().replace("wss://127.0.0.1", "wss://localhost"))
            .add_root_certificate(cert.cert.cert.der().clone())
            .clone(),
    )
    .await
    .unwrap();
    for n in 4..=5u64 {
        publisher.publish("tls-hole", &n).await.unwrap();
    }
    let (rest, others) = collect(&mut sub, 2).await;
    assert!(
        others.iter().any(|e| matches!(
            e,
            SubscriptionEvent::Subscribed {
                recovery: Recovery::Recovered { .. },
                ..
            }
        )),
        "{others:?}"
    );
    let seqs: Vec<u64> = first.iter().chain(&rest).map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let values: Vec<u64> = first
        .iter()
        .chain(&rest)
        .map(|m| m.decode().unwrap())
        .collect();
    assert_eq!(values, vec![1, 2, 3, 4, 5]);
    assert!(proxy.links.load(std::sync::atomic::Ordering::SeqCst) >= 2);
    client.close().await;
    publisher.close().await;
    srv.shutdown().await;
}

/// Connects with one retry and returns the terminal error.
async fn give_up(mut cfg: ClientConfig) -> ClientError {
    cfg.max_attempts(1);
    tokio::time::timeout(LIMIT, Client::connect(cfg))
        .await
        .expect("the attempt limit ends the client")
        .expect_err("the connection cannot succeed")
}

#[tokio::test]
async fn untrusted_certificates_fail_with_the_tls_reason() {
    let cert = TestCert::new(&["localhost"]);
    let srv = server(|c| c.tls = Some(cert.server_tls())).await;
    let by_name = srv.ws_url().replace("wss://127.0.0.1", "wss://localhost");

    // Web roots only: a self-signed certificate has an unknown issuer.
    // TLS failures are transient (back off, like 1006), so a server whose
    // certificate gets fixed is picked up; the reason travels in the error.
    let err = give_up(config(&by_name)).await;
    match &err {
        ClientError::AttemptsExhausted { attempts: 1, last } => {
            assert!(last.contains("UnknownIssuer"), "{last}")
        }
        other => panic!("{other:?}"),
    }

    // Trusted, but the URL names a host the certificate is not for.
    let mut cfg = config(&srv.ws_url());
    cfg.add_root_certificate(cert.cert.cert.der().clone());
    match give_up(cfg).await {
        ClientError::AttemptsExhausted { last, .. } => {
            assert!(last.contains("not valid for name"), "{last}")
        }
        other => panic!("{other:?}"),
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn tls_to_a_plain_port_fails_and_bad_trust_settings_fail_up_front() {
    let srv = server(|_| {}).await;
    let url = srv.ws_url().replace("ws://", "wss://");
    let mut events_seen = Vec::new();
    let mut cfg = config(&url);
    cfg.max_attempts(1);
    let client = Client::start(cfg).unwrap();
    let mut events = client.events();
    events_seen
        .extend(wait_event(&mut events, |e| matches!(e, ConnectionEvent::Terminal(_))).await);
    assert!(
        events_seen.iter().any(|e| matches!(
            e,
            ConnectionEvent::Disconnected { code: 1006, reason } if reason.contains("TLS handshake")
        )),
        "{events_seen:?}"
    );
    srv.shutdown().await;

    // Checked by `start`, before any socket is opened.
    let mut cfg = ClientConfig::new("wss://localhost:1/ws");
    cfg.web_roots(false);
    assert!(matches!(
        Client::start(cfg.clone()),
        Err(ClientError::Config(_))
    ));
    cfg.add_root_certificate(vec![1, 2, 3]);
    assert!(matches!(Client::start(cfg), Err(ClientError::Config(_))));
    let mut cfg = ClientConfig::new("wss://localhost:1/ws");
    assert!(matches!(
        cfg.add_root_certificates_pem(b"-----BEGIN NOTHING-----"),
        Err(ClientError::Config(_))
    ));
    assert!(cfg.root_certificates.is_empty());
}
