//! Every connection the suite holds keeps itself alive: against a server
//! with a short heartbeat, a connection the case does not read for several
//! deadlines still answers `ping` and stays open, while one told to stay
//! silent is closed with 4200 and that close is recorded as one nobody asked for.

use std::time::Duration;

use courier_conformance::case::hello;
use courier_conformance::conn::{Conn, Transcript};
use courier_conformance::embedded::{config_toml, Embedded, SECRET};
use courier_conformance::profile::TokenKind;
use courier_conformance::tokens;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, Subprotocol};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_connections_answer_pings_and_silent_ones_are_reported() {
    let toml = config_toml(None)
        .replace("heartbeat_interval_ms = 500", "heartbeat_interval_ms = 150")
        .replace("heartbeat_grace_ms = 500", "heartbeat_grace_ms = 100");
    let server = Embedded::start(&toml).await.expect("server starts");
    let source = courier_conformance::profile::TokenSource::Hs256 {
        secret: SECRET.into(),
        audience: None,
        issuer: None,
        forbidden_scope: String::new(),
    };
    let token = tokens::fetch(&source, TokenKind::Valid).await.unwrap();
    let transcript = Transcript::new();
    let sp = Subprotocol::ALL[0].name();
    let step = Duration::from_secs(2);
    let open = |label: &'static str| {
        let (url, tr, token) = (server.ws_url(), transcript.clone(), token.clone());
        async move {
            let mut c = Conn::connect(&url, &[sp], label, tr, step).await.unwrap();
            c.send_body(hello(&token, &[])).await.unwrap();
            let w = c.recv("welcome").await.unwrap();
            assert!(matches!(w.body, Some(Body::Welcome(_))));
            c
        }
    };
    let mut idle = open("idle").await;
    let mut silent = open("silent").await;
    silent.set_auto_pong(false);
    // Four heartbeat deadlines without reading either connection.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    idle.send_body(Body::Ping(v2::Ping { ts: 7 }))
        .await
        .unwrap();
    let ts = idle
        .take("pong", |e| match &e.body {
            Some(Body::Pong(p)) => Some(p.ts),
            _ => None,
        })
        .await
        .expect("the unread connection is still open");
    assert_eq!(ts, 7);
    assert!(idle.pings().len() >= 3, "pings were seen and answered");
    let unasked = transcript.unexpected_closes();
    assert_eq!(unasked.len(), 1, "{unasked:?}");
    assert_eq!(unasked[0].code, Some(4200));
    let text = unasked[0].describe();
    assert!(
        text.contains("`silent`") && text.contains("4200") && text.contains("heartbeat"),
        "{text}"
    );
    // Reading the close through the case's API marks it as asked for.
    silent.expect_close(step).await.expect("closed");
    assert!(transcript.unexpected_closes().is_empty());
    server.shutdown().await;
}
