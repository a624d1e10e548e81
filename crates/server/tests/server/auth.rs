//! AUTH-* and AUTHZ-*: HS256 and RS256 tokens, audience, expiry, refresh,
//! server-requested re-auth and per-channel rules.

use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::ErrorCode;
use courier_protocol::{close, v2};
use courier_server::ChannelRule;
use serde_json::json;

use crate::common::*;

async fn hs_server() -> courier_server::RunningServer {
    server(|c| {
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.audience = Some("courier-tests".into());
    })
    .await
}

#[tokio::test]
async fn hs256_token_opens_a_session_with_user_and_expiry() {
    let s = hs_server().await;
    let exp = now_s() + 3600;
    let token = hs256(json!({"sub": "alice", "aud": "courier-tests", "exp": exp}));
    for name in ["courier.v2.json", "courier.v1.proto"] {
        let c = Client::open(&s, name, &token, &[]).await.unwrap();
        assert_eq!(c.welcome.user, "alice");
        assert_eq!(c.welcome.token_expires_at_ms, Some(exp * 1000));
    }
}

#[tokio::test]
async fn bad_credentials_close_4004_and_expired_4300() {
    let s = hs_server().await;
    let cases = [
        ("", close::AUTH_FAILED),
        ("not-a-jwt", close::AUTH_FAILED),
        (
            hs256(json!({"sub": "alice", "aud": "someone-else", "exp": now_s() + 60})).leak()
                as &str,
            close::AUTH_FAILED,
        ),
        (
            hs256(json!({"sub": "alice", "exp": now_s() + 60})).leak(),
            close::AUTH_FAILED,
        ),
        (
            rs256(
                "rs256_private.pem",
                json!({"sub": "alice", "aud": "courier-tests"}),
            )
            .leak(),
            close::AUTH_FAILED,
        ),
        (
            hs256(json!({"sub": "alice", "aud": "courier-tests", "exp": now_s() - 10})).leak(),
            close::TOKEN_EXPIRED,
        ),
    ];
    for (token, code) in cases {
        let mut c = raw_client(&s, "courier.v2.json").await;
        c.send(Body::Hello(v2::Hello {
            token: token.into(),
            ..Default::default()
        }))
        .await
        .unwrap();
        let closed = expect_close(&mut c, code).await;
        // A short, stable reason: the JWT library's detail is only logged.
        let expected = if code == close::AUTH_FAILED {
            "invalid credentials"
        } else {
            "credentials expired"
        };
        assert_eq!(closed.reason, expected, "token {token:?}");
    }
}

#[tokio::test]
async fn rs256_with_the_configured_public_key() {
    let s = server(|c| c.auth.rs256_public_key_pem = Some(fixture("rs256_public.pem"))).await;
    let good = rs256(
        "rs256_private.pem",
        json!({"sub": "bob", "exp": now_s() + 60, "scope": "a b"}),
    );
    let c = Client::open(&s, "courier.v2.msgpack", &good, &[])
        .await
        .unwrap();
    assert_eq!(c.welcome.user, "bob");
    let forged = rs256(
        "rs256_other_private.pem",
        json!({"sub": "bob", "exp": now_s() + 60}),
    );
    let mut c = raw_client(&s, "courier.v2.msgpack").await;
    c.send(Body::Hello(v2::Hello {
        token: forged,
        ..Default::default()
    }))
    .await
    .unwrap();
    expect_close(&mut c, close::AUTH_FAILED).await;
    // A public key file works the same way.
    let path = format!(
        "{}/tests/server/fixtures/rs256_public.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let s = server(|c| c.auth.rs256_public_key_file = Some(path.into())).await;
    let c = Client::open(&s, "courier.v2.proto", &good, &[])
        .await
        .unwrap();
    assert_eq!(c.welcome.user, "bob");
}

#[tokio::test]
async fn refresh_replaces_credentials_for_the_same_user_only() {
    let s = hs_server().await;
    let tok = |sub: &str, exp: u64| hs256(json!({"sub": sub, "aud": "courier-tests", "exp": exp}));
    let mut c = Client::open(&s, "courier.v2.json", &tok("alice", now_s() + 60), &[])
        .await
        .unwrap();
    let later = now_s() + 7200;
    c.send(Body::Refresh(v2::Refresh {
        id: "r1".into(),
        token: tok("alice", later),
    }))
    .await
    .unwrap();
    match c.recv_body().await.unwrap() {
        Body::Refreshed(r) => assert_eq!(
            (r.id.as_str(), r.token_expires_at_ms),
            ("r1", Some(later * 1000))
        ),
        other => panic!("{other:?}"),
    }
    for (id, token) in [
        ("r2", tok("mallory", later)),
        ("r3", tok("alice", now_s() - 5)),
        ("r4", "garbage".to_string()),
    ] {
        c.send(Body::Refresh(v2::Refresh {
            id: id.into(),
            token,
        }))
        .await
        .unwrap();
        let e = c.error().await.unwrap();
        assert_eq!(
            (e.id.as_str(), e.code),
            (id, ErrorCode::InvalidToken as i32)
        );
    }
    // The session is unaffected by the failed refreshes.
    c.send(Body::Ping(v2::Ping { ts: 5 })).await.unwrap();
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::Pong(v2::Pong { ts: 5 })
    ));
}

#[tokio::test]
async fn session_expiry_closes_4300() {
    let s = hs_server().await;
    // `exp` has one-second resolution: this token expires within 1–2 s.
    let token = hs256(json!({"sub": "alice", "aud": "courier-tests", "exp": now_s() + 1}));
    let mut c = Client::open(&s, "courier.v2.json", &token, &[])
        .await
        .unwrap();
    expect_close(&mut c, close::TOKEN_EXPIRED).await;
}

#[tokio::test]
async fn reauth_request_then_4301_without_refresh() {
    let s = server(|c| {
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.reauth_after_ms = Some(100);
        c.auth.reauth_deadline_ms = 200;
    })
    .await;
    let token = hs256(json!({"sub": "alice", "exp": now_s() + 600}));
    let mut c = Client::open(&s, "courier.v2.json", &token, &["reauth"])
        .await
        .unwrap();
    assert_eq!(c.welcome.features, vec!["reauth".to_string()]);
    match c.recv_body().await.unwrap() {
        Body::ReauthRequest(r) => assert_eq!(r.deadline_ms, 200),
        other => panic!("{other:?}"),
    }
    expect_close(&mut c, close::REAUTH_TIMEOUT).await;

    // With a refresh in time the session continues (and is asked again later).
    let mut c = Client::open(&s, "courier.v2.msgpack", &token, &["reauth"])
        .await
        .unwrap();
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::ReauthRequest(_)
    ));
    c.send(Body::Refresh(v2::Refresh {
        id: "r".into(),
        token: token.clone(),
    }))
    .await
    .unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::Refreshed(_)));
    assert!(matches!(
        c.recv_body().await.unwrap(),
        Body::ReauthRequest(_)
    ));

    // v1 sessions and sessions without the feature are never asked.
    let mut c = Client::open(&s, "courier.v1.json", &token, &["reauth"])
        .await
        .unwrap();
    assert!(c.welcome.features.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    c.send(Body::Ping(v2::Ping { ts: 1 })).await.unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::Pong(_)));
}

#[tokio::test]
async fn channel_rules_answer_forbidden_per_operation() {
    let s = server(|c| {
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.allow_anonymous = Some(true);
        c.channels = vec![
            ChannelRule {
                pattern: "private.*".into(),
                subscribe: Some("private:read".into()),
                publish: Some("private:write".into()),
                ..Default::default()
            },
            ChannelRule {
                pattern: "inbox.{sub}".into(),
                subscribe: Some(String::new()),
                publish: Some(String::new()),
                ..Default::default()
            },
            ChannelRule {
                pattern: "inbox.*".into(),
                subscribe: Some("admin".into()),
                publish: Some("admin".into()),
                ..Default::default()
            },
            ChannelRule {
                pattern: "members.*".into(),
                subscribe: Some(String::new()),
                ..Default::default()
            },
        ];
    })
    .await;
    let reader = hs256(json!({"sub": "alice", "scope": "private:read"}));
    let mut c = Client::open(&s, "courier.v2.json", &reader, &[])
        .await
        .unwrap();
    assert!(c.subscribe("s1", "private.x", None).await.is_ok());
    c.send(Body::Publish(v2::Publish {
        id: "p1".into(),
        channel: "private.x".into(),
        payload: payload(json!(1)),
    }))
    .await
    .unwrap();
    let e = c.error().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.code, e.channel.as_str()),
        ("p1", ErrorCode::Forbidden as i32, "private.x")
    );
    assert!(c.subscribe("s2", "inbox.alice", None).await.is_ok());
    c.send(Body::Subscribe(v2::Subscribe {
        id: "s3".into(),
        channel: "inbox.bob".into(),
        resume: None,
    }))
    .await
    .unwrap();
    let e = c.error().await.unwrap();
    assert_eq!(
        (e.id.as_str(), e.code, e.channel.as_str()),
        ("s3", ErrorCode::Forbidden as i32, "inbox.bob")
    );
    // Denials do not close the session (AUTHZ-DENIAL-IS-ERROR).
    assert_eq!(c.publish("p2", "public", json!(1)).await.unwrap().seq, 1);

    let mut anon = Client::json(&s).await.unwrap();
    anon.send(Body::Subscribe(v2::Subscribe {
        id: "a".into(),
        channel: "members.x".into(),
        resume: None,
    }))
    .await
    .unwrap();
    assert_eq!(
        anon.error().await.unwrap().code,
        ErrorCode::Forbidden as i32
    );
    assert!(anon.subscribe("b", "open", None).await.is_ok());

    // Permissions follow refreshed credentials (AUTHZ-PER-OPERATION).
    let writer = hs256(json!({"sub": "alice", "scope": "private:read private:write"}));
    c.send(Body::Refresh(v2::Refresh {
        id: "r".into(),
        token: writer,
    }))
    .await
    .unwrap();
    assert!(matches!(c.recv_body().await.unwrap(), Body::Refreshed(_)));
    let ack = c.publish("p3", "private.x", json!(2)).await.unwrap();
    assert_eq!(ack.seq, 1);
}
