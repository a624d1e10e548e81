//! Credentials against the reference server with HS256 JWTs: an expired
//! token at hello (4300) makes the client ask its provider before
//! reconnecting; tokens are refreshed in band before they expire and when
//! the server sends `reauth_request`; a rejected refresh fails only itself.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use courier_client::{Client, ErrorCode, RequestError, TokenReason};
use support::{config, server};

const SECRET: &str = "client-test-secret";

fn jwt(sub: &str, expires_in_secs: i64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = serde_json::json!({ "sub": sub, "exp": now + expires_in_secs });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

type Calls = Arc<Mutex<Vec<TokenReason>>>;

/// A provider that records its calls and answers with `token(call_number)`.
fn provider(
    calls: Calls,
    token: impl Fn(usize) -> String + Send + Sync + 'static,
) -> impl courier_client::TokenProvider {
    let token = Arc::new(token);
    move |reason: TokenReason| {
        let (calls, token) = (calls.clone(), token.clone());
        async move {
            let n = {
                let mut c = calls.lock().unwrap();
                c.push(reason);
                c.len()
            };
            Ok(Some(token(n)))
        }
    }
}

async fn wait_for_calls(calls: &Calls, n: usize) {
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        while calls.lock().unwrap().len() < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "provider calls: {:?}", calls.lock().unwrap());
}

#[tokio::test]
async fn expired_token_at_hello_is_replaced_before_reconnecting() {
    let srv = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let calls = Calls::default();
    let mut c = config(&srv.ws_url());
    // First token already expired: AUTH-EXPIRED-AT-HELLO closes with 4300.
    c.token_provider(provider(calls.clone(), |n| {
        if n == 1 {
            jwt("alice", -60)
        } else {
            jwt("alice", 3600)
        }
    }));
    let client = Client::connect(c).await.unwrap();
    assert_eq!(
        *calls.lock().unwrap(),
        [TokenReason::Connect, TokenReason::Expired]
    );
    client.subscribe("private").await.unwrap();
    client.close().await;
}

#[tokio::test]
async fn tokens_are_refreshed_in_band_before_they_expire() {
    let srv = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let calls = Calls::default();
    let mut c = config(&srv.ws_url());
    // The first token expires in 2 s; without a refresh the server closes
    // with 4300 at that time (AUTH-EXPIRY).
    c.token_provider(provider(calls.clone(), |n| {
        if n == 1 {
            jwt("alice", 2)
        } else {
            jwt("alice", 3600)
        }
    }));
    c.refresh_margin(Duration::from_millis(1500));
    let client = Client::connect(c).await.unwrap();
    let mut events = client.events();
    wait_for_calls(&calls, 2).await;
    assert_eq!(calls.lock().unwrap()[1], TokenReason::ExpiringSoon);
    // Past the first token's expiry the session is still open: the
    // refreshed token was accepted in band.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(client.is_connected());
    assert!(
        events.try_next_now().is_none(),
        "no 4300 close, no reconnect"
    );
    client.close().await;
}

#[tokio::test]
async fn reauth_request_is_answered_with_a_fresh_token() {
    let srv = server(|c| {
        c.auth.hs256_secret = Some(SECRET.into());
        c.auth.reauth_after_ms = Some(200);
        c.auth.reauth_deadline_ms = 1000;
    })
    .await;
    let calls = Calls::default();
    let mut c = config(&srv.ws_url());
    c.token_provider(provider(calls.clone(), |_| jwt("alice", 3600)));
    let client = Client::connect(c).await.unwrap();
    let mut events = client.events();
    wait_for_calls(&calls, 2).await;
    assert!(matches!(
        calls.lock().unwrap()[1],
        TokenReason::ReauthRequested { .. }
    ));
    // Past the deadline the session is still open (no 4301).
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert!(client.is_connected());
    assert!(events.try_next_now().is_none(), "no 4301 close");
    client.close().await;
}

#[tokio::test]
async fn a_rejected_refresh_fails_only_itself() {
    let srv = server(|c| c.auth.hs256_secret = Some(SECRET.into())).await;
    let mut c = config(&srv.ws_url());
    c.token(jwt("alice", 3600));
    let client = Client::connect(c).await.unwrap();
    let err = client.refresh(jwt("mallory", 3600)).await.unwrap_err();
    assert!(
        matches!(
            err,
            RequestError::Server {
                code: ErrorCode::InvalidToken,
                ..
            }
        ),
        "{err:?}"
    );
    client.refresh(jwt("alice", 7200)).await.unwrap();
    client.subscribe("still-open").await.unwrap();
    client.close().await;
}
