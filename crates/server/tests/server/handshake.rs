//! The opening handshake on both of its paths: a plain upgrade answered
//! straight off the socket, and everything else (another request first, a
//! head too long to parse in place, refusals) through hyper. Each must end
//! in the same session or the same HTTP status.

use courier_protocol::v2::envelope::Body;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

const KEY_HEADERS: &str =
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/// A session opened over `up` works: hello → welcome, subscribe, publish
/// and the message comes back.
async fn works(up: Upgrade<TcpStream>) {
    assert_eq!(up.status, 101, "{}", up.head);
    // RFC 6455 4.2.2: the accept value for the RFC's sample key.
    assert_eq!(
        up.header("sec-websocket-accept").as_deref(),
        Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    );
    assert_eq!(
        up.header("sec-websocket-protocol").as_deref(),
        Some("courier.v2.json")
    );
    let mut c = Client::hello(up.ws.unwrap(), v2_json(), "", &[])
        .await
        .unwrap();
    c.subscribe("s1", "room", None).await.unwrap();
    c.publish("p1", "room", serde_json::json!({"n": 1}))
        .await
        .unwrap();
    let m = c.message().await.unwrap();
    assert_eq!(m.seq, 1);
}

#[tokio::test]
async fn an_upgrade_after_another_request_on_the_connection() {
    let s = server(|_| {}).await;
    let mut tcp = TcpStream::connect(s.local_addr()).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // "ok\n" after a head that keeps the connection open.
    let mut got = Vec::new();
    while !got.ends_with(b"\r\n\r\nok\n") {
        let mut b = [0u8; 1];
        assert_eq!(tcp.read(&mut b).await.unwrap(), 1, "{got:?}");
        got.push(b[0]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"));
    let up = upgrade_on(tcp, "t", &["courier.v2.json"], &[])
        .await
        .unwrap();
    works(up).await;
}

#[tokio::test]
async fn an_upgrade_with_a_head_too_long_to_parse_in_place() {
    let s = server(|_| {}).await;
    // A browser with many cookies: over the 16 KiB parsed in place.
    let cookie = "c".repeat(20 * 1024);
    let up = upgrade(&s, &["courier.v2.json"], &[("Cookie", &cookie)])
        .await
        .unwrap();
    works(up).await;
}

#[tokio::test]
async fn a_plain_upgrade_with_a_query() {
    let s = server(|_| {}).await;
    let mut tcp = TcpStream::connect(s.local_addr()).await.unwrap();
    let req = format!(
        "GET /ws?client=t HTTP/1.1\r\nHost: t\r\n{KEY_HEADERS}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: courier.v2.json\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let up = read_upgrade(tcp).await.unwrap();
    works(up).await;
}

/// A client that sends its `hello` in the same write as the request head
/// (RFC 6455 asks clients to wait for the `101`, but the server must not
/// lose what arrived): the frame behind the head is read as the session's
/// first.
#[tokio::test]
async fn a_frame_sent_with_the_request_head_is_not_lost() {
    let s = server(|_| {}).await;
    let hello = serde_json::json!({"type": "hello", "client": "eager"}).to_string();
    let mut bytes = format!(
        "GET /ws HTTP/1.1\r\nHost: t\r\n{KEY_HEADERS}Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: courier.v2.json\r\n\r\n"
    )
    .into_bytes();
    let key = [1u8, 2, 3, 4];
    bytes.extend_from_slice(&[0x81, 0x80 | hello.len() as u8]);
    bytes.extend_from_slice(&key);
    bytes.extend(hello.bytes().enumerate().map(|(i, b)| b ^ key[i % 4]));
    let mut tcp = TcpStream::connect(s.local_addr()).await.unwrap();
    tcp.write_all(&bytes).await.unwrap();
    let up = read_upgrade(tcp).await.unwrap();
    assert_eq!(up.status, 101);
    let mut c = Client::raw(up.ws.unwrap(), v2_json());
    match c.recv().await.unwrap().body {
        Some(Body::Welcome(w)) => assert!(!w.session_id.is_empty()),
        other => panic!("expected welcome, got {other:?}"),
    }
    c.subscribe("s1", "room", None).await.unwrap();
}

#[tokio::test]
async fn refused_upgrades_get_their_http_status() {
    let s = server(|_| {}).await;
    let up = upgrade(&s, &["courier.v2.json"], &[]).await.unwrap();
    assert_eq!(up.status, 101);

    let status = |req: String| {
        let addr = s.local_addr();
        async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let mut b = [0u8; 512];
            while !out.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = tcp.read(&mut b).await.unwrap();
                assert!(n > 0, "closed without a response");
                out.extend_from_slice(&b[..n]);
            }
            String::from_utf8_lossy(&out).to_string()
        }
    };
    // RFC 6455 4.4: another version gets 426 and the versions served.
    let head = status(format!(
        "GET /ws HTTP/1.1\r\nHost: t\r\n{KEY_HEADERS}Sec-WebSocket-Version: 8\r\n\r\n"
    ))
    .await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
    // Not an upgrade at all.
    let head = status("GET /ws HTTP/1.1\r\nHost: t\r\n\r\n".into()).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // An upgrade request with a body is hyper's to answer; not a 101 here.
    let head = status(format!(
        "POST /ws HTTP/1.1\r\nHost: t\r\n{KEY_HEADERS}Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
    ))
    .await;
    assert!(head.starts_with("HTTP/1.1 405"), "{head}");
}
