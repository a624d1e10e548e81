//! The server starts; a client publishes a typed chat line and another reads it back in order;
//! `greet` answers and refuses an empty name.

use std::time::Duration;

use courier_client::ClientConfig;
use futures_util::StreamExt;

use __CRATE__::payloads::v1::{ChatMessage, GreetReply, GreetRequest};

#[tokio::test]
async fn chat_and_greet() {
    let config = courier_server::ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let mut builder = __CRATE__::server(config);
    let server = builder.start().await.expect("server starts");

    let alice = ClientConfig::new(server.ws_url())
        .connect()
        .await
        .expect("alice connects");
    let bob = ClientConfig::new(server.ws_url())
        .connect()
        .await
        .expect("bob connects");
    let mut room = bob
        .subscribe("room.lobby")
        .await
        .expect("bob subscribes")
        .typed::<ChatMessage>();
    let line = ChatMessage {
        id: "m-1".into(),
        author: "alice".into(),
        text: "hello".into(),
        sent_at_ms: 1,
    };
    alice.publish("room.lobby", &line).await.expect("published");
    let (message, got) = tokio::time::timeout(Duration::from_secs(5), room.next())
        .await
        .expect("delivered in time")
        .expect("subscription open")
        .expect("a ChatMessage");
    assert_eq!(got, line);
    assert_eq!(message.seq, 1);

    let reply: GreetReply = bob
        .rpc("greet", &GreetRequest { name: "bob".into() })
        .await
        .expect("greet answers");
    assert_eq!(reply.greeting, "Hello, bob!");
    let refused = bob
        .rpc::<_, GreetReply>("greet", &GreetRequest::default())
        .await;
    assert!(refused.is_err(), "an empty name is refused: {refused:?}");

    alice.close().await;
    bob.close().await;
    server.shutdown().await;
}
