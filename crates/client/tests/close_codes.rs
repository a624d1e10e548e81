//! Close-code reactions (CLOSE-RANGES) against a scripted server on
//! loopback: terminal codes stop the client, 4100–4199 back off,
//! 4200–4299 reconnect now, 4300–4399 refresh credentials first,
//! `retry_after_ms` is honoured, version mismatches are terminal, and the
//! heartbeat deadline detects a silent server.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use courier_client::{
    Client, ClientConfig, ClientError, ConnectionEvent, Events, PublishError, Subprotocol,
    TokenReason,
};
use support::script::{ScriptServer, Select, Step};

const LIMIT: Duration = Duration::from_secs(10);

fn welcome() -> Step {
    Step::Welcome {
        interval_ms: 30_000,
        grace_ms: 10_000,
    }
}

fn disconnect(code: u16) -> Step {
    Step::Disconnect {
        code,
        reason: "scripted",
        retry_after_ms: None,
    }
}

fn hold() -> Step {
    Step::Silent(Duration::from_secs(20))
}

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url);
    c.backoff(Duration::from_millis(40), Duration::from_millis(200))
        .reconnect_now_max(Duration::from_millis(40))
        .connect_timeout(Duration::from_secs(3));
    c
}

/// Waits for the first event matching `pred`, returning the ones before it too.
async fn until(
    events: &mut Events,
    pred: impl Fn(&ConnectionEvent) -> bool,
) -> Vec<ConnectionEvent> {
    let mut seen = Vec::new();
    let outcome = tokio::time::timeout(LIMIT, async {
        while let Some(e) = events.recv().await {
            let done = pred(&e);
            seen.push(e);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "timed out; events so far: {seen:?}");
    seen
}

fn is_terminal(e: &ConnectionEvent) -> bool {
    matches!(e, ConnectionEvent::Terminal(_))
}

#[tokio::test]
async fn terminal_codes_stop_without_reconnecting_in_every_encoding() {
    let codes = [1002u16, 1007, 1009, 4000, 4001, 4003, 4004, 4005, 4006];
    for (i, code) in codes.into_iter().enumerate() {
        let sp = Subprotocol::ALL[i % Subprotocol::ALL.len()];
        let server = ScriptServer::start(
            Select::First,
            vec![vec![welcome(), disconnect(code)], vec![welcome(), hold()]],
        )
        .await;
        let client = Client::start(config(&server.url).subprotocols([sp]).clone()).unwrap();
        let mut events = client.events();
        let seen = until(&mut events, is_terminal).await;
        assert!(
            matches!(seen[0], ConnectionEvent::Connected { subprotocol, .. } if subprotocol == sp),
            "{seen:?}"
        );
        assert_eq!(
            seen[1],
            ConnectionEvent::Disconnected {
                code,
                reason: "scripted".into()
            }
        );
        let ConnectionEvent::Terminal(err) = &seen[2] else {
            panic!("{seen:?}")
        };
        assert_eq!(
            **err,
            ClientError::TerminalClose {
                code,
                reason: "scripted".into()
            }
        );
        // Every later call fails with the terminal error; nothing reconnects.
        let publish = client.publish("chat", "x").await;
        assert!(
            matches!(publish, Err(PublishError::Stopped(_))),
            "{publish:?}"
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(server.connections(), 1, "code {code} must not reconnect");
        // A stopped client's event stream ends.
        assert_eq!(client.events().recv().await, None);
    }
}

#[tokio::test]
async fn terminal_close_before_welcome_fails_connect() {
    let server = ScriptServer::start(Select::First, vec![vec![disconnect(4004)]]).await;
    let err = Client::connect(config(&server.url)).await.unwrap_err();
    assert_eq!(
        err,
        ClientError::TerminalClose {
            code: 4004,
            reason: "scripted".into()
        }
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn backoff_range_reconnects_after_a_jittered_exponential_delay() {
    for code in [4100u16, 4101, 4102] {
        // Three closes before welcome, then a session.
        let s = vec![disconnect(code)];
        let server = ScriptServer::start(
            Select::First,
            vec![s.clone(), s.clone(), s, vec![welcome(), hold()]],
        )
        .await;
        let client = Client::start(config(&server.url)).unwrap();
        let mut events = client.events();
        let seen = until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        let delays: Vec<(u32, Duration)> = seen
            .iter()
            .filter_map(|e| match e {
                ConnectionEvent::Reconnecting { attempt, delay } => Some((*attempt, *delay)),
                _ => None,
            })
            .collect();
        assert_eq!(
            delays.iter().map(|d| d.0).collect::<Vec<_>>(),
            [1, 2, 3],
            "{seen:?}"
        );
        for (attempt, delay) in &delays {
            // CLIENT-BACKOFF-JITTER: uniform in [0, min(cap, base * 2^n)].
            let window = Duration::from_millis(40 << (attempt - 1)).min(Duration::from_millis(200));
            assert!(
                *delay <= window,
                "attempt {attempt}: {delay:?} > {window:?}"
            );
        }
        assert_eq!(server.connections(), 4);
        // The gaps between connections are at least the announced delays.
        let accepted = server.seen.lock().unwrap().accepted.clone();
        for (i, (_, delay)) in delays.iter().enumerate() {
            assert!(
                accepted[i + 1] - accepted[i] >= *delay,
                "connection {} came early",
                i + 1
            );
        }
        client.close().await;
    }
}

#[tokio::test]
async fn max_attempts_ends_in_a_terminal_error() {
    let server = ScriptServer::start(Select::First, vec![vec![disconnect(4102)]]).await;
    let mut c = config(&server.url);
    c.max_attempts(2);
    let err = Client::connect(c).await.unwrap_err();
    assert!(
        matches!(err, ClientError::AttemptsExhausted { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(
        server.connections(),
        3,
        "the first connection and two retries"
    );
}

#[tokio::test]
async fn reconnect_now_range_and_going_away_reconnect_within_the_short_window() {
    for code in [1001u16, 4200, 4201] {
        let server = ScriptServer::start(
            Select::First,
            vec![vec![welcome(), disconnect(code)], vec![welcome(), hold()]],
        )
        .await;
        let mut c = config(&server.url);
        // A long backoff proves the short reconnect-now window is used instead.
        c.backoff(Duration::from_secs(30), Duration::from_secs(30));
        let client = Client::start(c).unwrap();
        let mut events = client.events();
        until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        let seen = until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        let ConnectionEvent::Reconnecting { delay, .. } = seen[1] else {
            panic!("{seen:?}")
        };
        assert!(delay <= Duration::from_millis(40), "{delay:?}");
        client.close().await;
    }
}

#[tokio::test]
async fn credentials_range_calls_the_token_provider_before_reconnecting() {
    for code in [4300u16, 4301] {
        let server = ScriptServer::start(
            Select::First,
            vec![vec![welcome(), disconnect(code)], vec![welcome(), hold()]],
        )
        .await;
        let calls: Arc<Mutex<Vec<(TokenReason, Instant)>>> = Arc::default();
        let calls2 = calls.clone();
        let mut c = config(&server.url);
        c.token_provider(move |reason: TokenReason| {
            let calls = calls2.clone();
            async move {
                let mut calls = calls.lock().unwrap();
                calls.push((reason, Instant::now()));
                Ok(Some(format!("token-{}", calls.len())))
            }
        });
        let client = Client::start(c).unwrap();
        let mut events = client.events();
        until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        let calls = calls.lock().unwrap().clone();
        let reasons: Vec<TokenReason> = calls.iter().map(|c| c.0.clone()).collect();
        assert_eq!(reasons, [TokenReason::Connect, TokenReason::Expired]);
        let (accepted, tokens) = {
            let seen = server.seen.lock().unwrap();
            (seen.accepted.clone(), seen.tokens.clone())
        };
        assert!(
            calls[1].1 < accepted[1],
            "credentials are refreshed before reconnecting"
        );
        assert_eq!(tokens, ["token-1", "token-2"]);
        client.close().await;
    }
}

#[tokio::test]
async fn credentials_range_without_new_credentials_is_terminal() {
    let server = ScriptServer::start(
        Select::First,
        vec![vec![welcome(), disconnect(4300)], vec![welcome(), hold()]],
    )
    .await;
    let mut c = config(&server.url);
    c.token_provider(|reason: TokenReason| async move {
        Ok(match reason {
            TokenReason::Connect => Some("first".to_string()),
            _ => None,
        })
    });
    let client = Client::start(c).unwrap();
    let mut events = client.events();
    let seen = until(&mut events, is_terminal).await;
    let Some(ConnectionEvent::Terminal(err)) = seen.last() else {
        panic!()
    };
    assert!(matches!(**err, ClientError::NoCredentials(_)), "{err:?}");
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn retry_after_is_honoured_exactly_in_every_encoding() {
    for sp in Subprotocol::ALL
        .into_iter()
        .filter(|p| p.version == courier_protocol::Version::V2)
    {
        let retry = Step::Disconnect {
            code: 4101,
            reason: "rate limited",
            retry_after_ms: Some(400),
        };
        let server = ScriptServer::start(
            Select::First,
            vec![vec![welcome(), retry], vec![welcome(), hold()]],
        )
        .await;
        let client = Client::start(config(&server.url).subprotocols([sp]).clone()).unwrap();
        let mut events = client.events();
        until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        let seen = until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        assert!(
            seen.contains(&ConnectionEvent::Reconnecting {
                attempt: 1,
                delay: Duration::from_millis(400)
            }),
            "{sp}: {seen:?}"
        );
        let accepted = server.seen.lock().unwrap().accepted.clone();
        assert!(
            accepted[1] - accepted[0] >= Duration::from_millis(400),
            "{sp}: reconnected too early"
        );
        client.close().await;
    }
}

#[tokio::test]
async fn disconnect_notice_wins_over_a_lost_connection() {
    // CLOSE-NOTICE-WINS: a disconnect 4004, then the TCP connection drops
    // without a close frame (1006): the notice's terminal code decides.
    let notice = vec![welcome(), Step::Notice { code: 4004 }, Step::Drop];
    let server = ScriptServer::start(Select::First, vec![notice, vec![welcome(), hold()]]).await;
    let client = Client::start(config(&server.url)).unwrap();
    let mut events = client.events();
    let seen = until(&mut events, is_terminal).await;
    assert!(
        matches!(seen[1], ConnectionEvent::Disconnected { code: 4004, .. }),
        "{seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(server.connections(), 1);

    // Without a notice, the same drop backs off and reconnects.
    let dropped = vec![
        welcome(),
        Step::Silent(Duration::from_millis(50)),
        Step::Drop,
    ];
    let server = ScriptServer::start(Select::First, vec![dropped, vec![welcome(), hold()]]).await;
    let client = Client::start(config(&server.url)).unwrap();
    let mut events = client.events();
    let seen = until(&mut events, |e| {
        matches!(e, ConnectionEvent::Reconnecting { .. })
    })
    .await;
    assert!(
        matches!(seen[1], ConnectionEvent::Disconnected { code: 1006, .. }),
        "{seen:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_silent_server_is_detected_by_the_heartbeat_deadline() {
    // Welcome promises a ping every 150 ms (+100 ms grace), then silence
    // with the TCP connection open: only the deadline can notice.
    let silent = vec![
        Step::Welcome {
            interval_ms: 150,
            grace_ms: 100,
        },
        Step::Silent(Duration::from_secs(20)),
    ];
    let server = ScriptServer::start(Select::First, vec![silent, vec![welcome(), hold()]]).await;
    let client = Client::start(config(&server.url)).unwrap();
    let mut events = client.events();
    let connected_at = {
        until(&mut events, |e| {
            matches!(e, ConnectionEvent::Connected { .. })
        })
        .await;
        Instant::now()
    };
    let seen = until(&mut events, |e| {
        matches!(e, ConnectionEvent::Connected { .. })
    })
    .await;
    assert!(
        matches!(seen[0], ConnectionEvent::Disconnected { code: 4200, .. }),
        "{seen:?}"
    );
    let detected = server.seen.lock().unwrap().accepted[1] - connected_at;
    assert!(
        detected >= Duration::from_millis(240),
        "detected too early: {detected:?}"
    );
    assert!(
        detected < Duration::from_secs(3),
        "detected too late: {detected:?}"
    );
    client.close().await;
}

#[tokio::test]
async fn no_subprotocol_selected_is_a_terminal_version_error_and_nothing_is_sent() {
    let server = ScriptServer::start(Select::None, vec![vec![]]).await;
    let err = Client::connect(config(&server.url)).await.unwrap_err();
    let ClientError::UnsupportedVersion { supported, .. } = err else {
        panic!("{err:?}")
    };
    assert_eq!(supported, [Subprotocol::ALL[0]]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        server.seen.lock().unwrap().frames,
        [0],
        "VER-CLIENT-VERIFY: no frame after a refused offer"
    );
    assert_eq!(server.connections(), 1);
}

#[tokio::test]
async fn a_subprotocol_that_was_not_offered_is_terminal() {
    let server = ScriptServer::start(
        Select::Bogus("courier.v2.proto"),
        vec![vec![welcome(), hold()]],
    )
    .await;
    let err = Client::connect(config(&server.url).offers(["courier.v2.json"]).clone())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::UnexpectedSubprotocol("courier.v2.proto".into())
    );
    assert_eq!(server.connections(), 1);
}
