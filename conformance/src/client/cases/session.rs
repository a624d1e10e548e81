//! The session's opening and end on the client side: `hello` first and
//! once, only client types, the verification of the selected subprotocol,
//! the application's close (session.md §2–3, negotiation.md, close-codes.md).

use std::time::Duration;

use courier_protocol::subprotocol::mismatch_reason;
use courier_protocol::v2::envelope::Body;
use courier_protocol::Subprotocol;
use serde_json::json;

use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::server::{ScriptServer, Select};
use crate::client::{check_frames, ClientCaseDef, ClientCtx, TOKENS};

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.session.hello",
        title: "The client sends hello first and once, with the application's token, then only client types",
        requirements: &["HELLO-FIRST", "HELLO-ONCE", "SESSION-CLIENT-TYPES", "BATCH-NOT-HANDSHAKE"],
        axes: Axes::Each,
        run: |cx| Box::pin(hello(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.ver.unoffered-subprotocol",
        title: "A handshake selecting a subprotocol the client did not offer is a terminal failure: no frame, no reconnect",
        requirements: &["VER-CLIENT-VERIFY"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(unoffered(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.ver.no-subprotocol",
        title: "A handshake selecting no subprotocol: the client sends nothing and reports the 4002 close as terminal",
        requirements: &["VER-CLIENT-VERIFY", "VER-ACCEPT-THEN-CLOSE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(no_subprotocol(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.normal",
        title: "Closing on the application's request sends 1000 and never reconnects",
        requirements: &["CLOSE-CLIENT-NORMAL"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(normal(cx)),
        ..BASE
    },
];

/// Fails if the client connects to `server` within `d`.
pub(crate) async fn no_reconnect(
    server: &mut ScriptServer,
    d: Duration,
    after: &str,
) -> Result<(), CaseError> {
    if server.accept_tcp(d).await.is_some() {
        return Err(fail(format!(
            "the client connected again after {after}; it must not reconnect"
        )));
    }
    Ok(())
}

async fn hello(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    check!(
        s.hello.token == TOKENS[0],
        "hello.token is {:?}; expected the application's token {:?}",
        s.hello.token,
        TOKENS[0]
    );
    let connected = s
        .driver
        .wait("the connected event", cx.step(), |e| {
            e.kind() == "connected"
        })
        .await?;
    check!(
        connected.v["subprotocol"] == cx.sp().name(),
        "the driver reports subprotocol {}; the server selected {}",
        connected.v["subprotocol"],
        cx.sp()
    );
    // Some traffic, so that every type the client sends is seen.
    let r = s
        .driver
        .send(json!({"cmd": "subscribe", "channel": "room"}))
        .await?;
    let sub = crate::client::expect_subscribe(&mut s.peer, "room").await?;
    s.peer
        .send(crate::client::subscribe_ack(&sub, "e1", 0, None))
        .await?;
    s.driver.result(r, cx.step()).await?;
    let r = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"text": "hi"}}))
        .await?;
    let publish = s
        .peer
        .expect("publish", |b| match b {
            Body::Publish(p) => Some(p.clone()),
            Body::Batch(batch) => batch.envelopes.iter().find_map(|e| match &e.body {
                Some(Body::Publish(p)) => Some(p.clone()),
                _ => None,
            }),
            _ => None,
        })
        .await?;
    s.peer
        .send(Body::PublishAck(courier_protocol::v2::PublishAck {
            id: publish.id.clone(),
            channel: publish.channel.clone(),
            epoch: "e1".into(),
            seq: 1,
            duplicate: false,
        }))
        .await?;
    s.driver.result(r, cx.step()).await?;
    s.driver
        .call_ok(json!({"cmd": "unsubscribe", "channel": "room"}))
        .await?;
    s.peer.collect(cx.ms(200)).await?;
    check_frames(&s.peer)
}

/// A subprotocol of the instance's version that the client does not offer.
fn other_than(sp: Subprotocol) -> Subprotocol {
    Subprotocol::ALL
        .into_iter()
        .find(|o| o.version == sp.version && *o != sp)
        .expect("three encodings per version")
}

async fn unoffered(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let forced = other_than(cx.sp());
    server.select = Select::Force(forced.name().into());
    cx.note(format!(
        "the server selects {forced}, which the client does not offer"
    ));
    let r = driver.send(cx.connect_cmd(&server)).await?;
    // The client may refuse the upgrade response itself (then the
    // handshake fails on our side) or accept the socket and close it.
    let peer = match server.accept_tcp(cx.step()).await {
        Some((tcp, at)) => server.upgrade(tcp, at).await.ok(),
        None => return Err(fail("the client did not connect")),
    };
    let res = driver.result(r, cx.step()).await?;
    check!(
        res["ok"] != json!(true),
        "the client reported its session open over {forced}, which it did not offer"
    );
    driver
        .wait("a terminal event", cx.step(), |e| e.kind() == "terminal")
        .await?;
    if let Some(mut peer) = peer {
        peer.wait_closed(cx.ms(500)).await;
        check!(
            peer.frames_received() == 0,
            "the client sent {} frame(s) over a subprotocol it did not offer",
            peer.frames_received()
        );
    }
    no_reconnect(&mut server, cx.ms(1200), "a subprotocol it did not offer").await
}

async fn no_subprotocol(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    server.select = Select::Nothing;
    let r = driver.send(cx.connect_cmd(&server)).await?;
    let mut peer = server.accept().await?;
    let reason = mismatch_reason(&[Subprotocol::ALL[2]]);
    cx.note("no subprotocol selected: the server closes with 4002 at once");
    peer.close(4002, &reason).await;
    peer.wait_closed(cx.step()).await;
    check!(
        peer.frames_received() == 0,
        "the client sent {} frame(s) on a connection without a subprotocol",
        peer.frames_received()
    );
    let res = driver.result(r, cx.step()).await?;
    check!(
        res["ok"] != json!(true),
        "the client reported a session open"
    );
    let t = driver
        .wait("a terminal event", cx.step(), |e| e.kind() == "terminal")
        .await?;
    check!(
        t.v["code"] == json!(4002),
        "the terminal event carries code {}; expected 4002",
        t.v["code"]
    );
    no_reconnect(&mut server, cx.ms(1200), "4002").await
}

async fn normal(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    let r = s.driver.send(json!({"cmd": "close"})).await?;
    let close = s
        .peer
        .wait_closed(cx.step())
        .await
        .ok_or_else(|| fail("the client did not close the connection on `close`"))?;
    check!(
        close.code == Some(1000),
        "the client closed with {:?}; expected 1000",
        close.code
    );
    s.driver.result(r, cx.step()).await?;
    no_reconnect(&mut s.server, cx.ms(1200), "the application's close").await?;
    check_frames(&s.peer)
}
