//! Liveness and the session's traffic on the client side: `pong`, the
//! heartbeat deadline, any frame as proof of life (session.md §7), replies
//! with unknown ids, unsubscribing, unique rpc ids, the offline queue, frame
//! sizes, re-authentication and denials.

use std::time::{Duration, Instant};

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use serde_json::json;

use super::seq::{delivered_up_to, send_msgs, subscribed};
use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::server::Peer;
use crate::client::{
    check_frames, expect_subscribe, handshake, message, ClientCaseDef, ClientCtx, Session, Welcome,
    TOKENS,
};
use crate::spec::Level;

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.hb.pong",
        title: "A server ping is answered promptly with a pong echoing its ts",
        requirements: &["HB-PONG"],
        axes: Axes::Each,
        run: |cx| Box::pin(pong(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.hb.deadline",
        title: "A link silent for interval + grace is closed by the client, which reconnects as after 4200",
        requirements: &["HB-CLIENT-DEADLINE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(deadline(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.hb.any-frame",
        title: "Messages without pings keep the link alive past the deadline",
        requirements: &["HB-ANY-FRAME"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(any_frame(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.order.unknown-ids",
        title: "Replies whose id matches no request in flight are ignored; the real reply still resolves its request",
        requirements: &["ORDER-UNKNOWN-IDS-IGNORED"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(unknown_ids(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.order.unsubscribe-final",
        title: "Messages of a channel arriving after the client unsubscribed are discarded",
        requirements: &["ORDER-UNSUBSCRIBE-FINAL"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(unsubscribe_final(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.rpc.id-unique",
        title: "Concurrent rpc_requests carry distinct ids, and each answer resolves its own call",
        requirements: &["RPC-ID-UNIQUE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(rpc_ids(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.queue.offline",
        title: "Publishes made offline and those unacknowledged at a drop are sent after reconnecting, in order, with their original ids",
        requirements: &["CLIENT-OFFLINE-QUEUE", "DEDUP-ID-UNIQUE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(offline(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.queue.bounded",
        title: "A full offline queue refuses the next publish with an error and drops none of the queued ones",
        requirements: &["CLIENT-OFFLINE-QUEUE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(bounded(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.limit.message-size",
        title: "A publish over max_message_bytes is refused locally, never sent",
        requirements: &["LIMIT-MESSAGE-SIZE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(message_size(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.limit.server-frame",
        title: "A server frame up to twice max_message_bytes is accepted and delivered",
        requirements: &["LIMIT-SERVER-FRAME"],
        axes: Axes::Each,
        run: |cx| Box::pin(server_frame(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.auth.reauth",
        title: "reauth_request is answered with a refresh carrying new credentials before the deadline; with none, 4301 stops the client",
        requirements: &["AUTH-REAUTH-CLIENT"],
        axes: Axes::PerVersion,
        versions: &[2],
        run: |cx| Box::pin(reauth(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.auth.refresh-early",
        title: "Credentials about to expire are refreshed in band about 30 s before token_expires_at_ms",
        requirements: &["AUTH-REFRESH-EARLY"],
        level: Level::Should,
        axes: Axes::PerVersion,
        run: |cx| Box::pin(refresh_early(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.authz.no-auto-retry",
        title: "A subscription denied with FORBIDDEN is reported, not retried, and not resubscribed after a reconnect",
        requirements: &["AUTHZ-NO-AUTO-RETRY"],
        level: Level::Should,
        axes: Axes::PerVersion,
        run: |cx| Box::pin(no_auto_retry(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.enc.unknown-enum",
        title: "An error with an unknown code is read as UNSPECIFIED: the request fails, the session goes on",
        requirements: &["ENC-UNKNOWN-ENUM"],
        axes: Axes::Each,
        run: |cx| Box::pin(unknown_enum(cx)),
        ..BASE
    },
];

async fn pong(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    for ts in [1_700_000_000_123u64, 42] {
        s.peer.send(Body::Ping(v2::Ping { ts })).await?;
        let got = s
            .peer
            .expect("pong", |b| match b {
                Body::Pong(p) => Some(p.ts),
                _ => None,
            })
            .await?;
        check!(got == ts, "the pong carries ts {got}; the ping's was {ts}");
    }
    check_frames(&s.peer)
}

async fn deadline(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let (interval, grace) = (cx.scaled(300), cx.scaled(200));
    let w = Welcome {
        heartbeat_interval_ms: interval,
        heartbeat_grace_ms: grace,
        ..Welcome::default()
    };
    let r = driver.send(cx.connect_cmd(&server)).await?;
    let mut peer = server.accept().await?;
    handshake(&mut peer, &w).await?;
    // The welcome is the last frame the client receives: its deadline runs
    // from there, not from when the driver reports the session open.
    let silent_since = Instant::now();
    peer.black_hole();
    let opened = driver.result(r, cx.step()).await?;
    check!(
        opened["ok"] == json!(true),
        "the client did not report its session open: {}",
        opened["error"]
    );
    let limit = Duration::from_millis(interval + grace);
    let closed = peer.wait_closed(limit + cx.ms(1500)).await;
    let waited = silent_since.elapsed();
    let Some(_) = closed else {
        // A client may also just open a new connection and drop the old one later.
        return Err(fail(format!(
            "the link was silent for {waited:?} and the client kept it; its deadline is interval {interval} + grace {grace} ms"
        )));
    };
    check!(
        waited + cx.ms(30) >= limit,
        "the client gave up on the link after {waited:?} of silence, before interval + grace = {limit:?}"
    );
    check!(
        waited <= limit + cx.ms(400),
        "the client noticed the dead link only after {waited:?}; the deadline is {limit:?}"
    );
    let since = Instant::now();
    let mut again = server
        .accept_within(cx.ms(1500))
        .await?
        .ok_or_else(|| fail("the client did not reconnect after declaring the link dead"))?;
    let delay = again.accepted_at.saturating_duration_since(since);
    check!(
        delay <= cx.ms(100 + 60),
        "the client reconnected {delay:?} after the dead link; as after 4200 it must be within the reconnect window (100 ms here)"
    );
    handshake(&mut again, &w).await?;
    Ok(())
}

async fn any_frame(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let (interval, grace) = (cx.scaled(300), cx.scaled(200));
    let w = Welcome {
        heartbeat_interval_ms: interval,
        heartbeat_grace_ms: grace,
        ..Welcome::default()
    };
    let cmd = cx.connect_cmd(&server);
    let (peer, hello) = cx.open(&mut server, &mut driver, cmd, w).await?;
    let mut s = Session {
        server,
        driver,
        peer,
        hello,
    };
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    cx.note("no ping for 3 deadlines, only a message every 150 ms");
    for seq in 1..=10u64 {
        send_msgs(&mut s.peer, "room", "e1", [seq]).await?;
        tokio::time::sleep(cx.ms(150)).await;
    }
    if let Some(c) = s.peer.wait_closed(Duration::ZERO).await {
        return Err(fail(format!(
            "the client closed a link on which messages kept arriving ({:?}): any frame proves liveness",
            c.code
        )));
    }
    delivered_up_to(&cx, &mut s, "room", 10).await?;
    check!(
        s.driver.of_kind("disconnected").is_empty(),
        "the client reported a disconnect while messages kept arriving"
    );
    Ok(())
}

/// Waits for the client's publish (alone or in a batch).
async fn expect_publish(peer: &mut Peer) -> Result<v2::Publish, CaseError> {
    peer.expect("publish", |b| match b {
        Body::Publish(p) => Some(p.clone()),
        Body::Batch(batch) => batch.envelopes.iter().find_map(|e| match &e.body {
            Some(Body::Publish(p)) => Some(p.clone()),
            _ => None,
        }),
        _ => None,
    })
    .await
}

fn ack(p: &v2::Publish, seq: u64) -> Body {
    Body::PublishAck(v2::PublishAck {
        id: p.id.clone(),
        channel: p.channel.clone(),
        epoch: "e1".into(),
        seq,
        duplicate: false,
    })
}

async fn unknown_ids(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    let r = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": 1}}))
        .await?;
    let p = expect_publish(&mut s.peer).await?;
    cx.note("replies to requests the client never sent");
    s.peer
        .send(Body::PublishAck(v2::PublishAck {
            id: format!("{}-not-mine", p.id),
            channel: "room".into(),
            epoch: "e1".into(),
            seq: 99,
            duplicate: false,
        }))
        .await?;
    s.peer
        .send(Body::Error(v2::Error {
            id: "never-sent-1".into(),
            code: v2::ErrorCode::Forbidden as i32,
            message: "unknown".into(),
            channel: "room".into(),
            retry_after_ms: None,
        }))
        .await?;
    s.peer
        .send(Body::UnsubscribeAck(v2::UnsubscribeAck {
            id: "never-sent-2".into(),
            channel: "nowhere".into(),
        }))
        .await?;
    s.peer
        .send(Body::SubscribeAck(v2::SubscribeAck {
            id: "never-sent-3".into(),
            channel: "nowhere".into(),
            position: Some(v2::StreamPosition {
                epoch: "e9".into(),
                seq: 9,
            }),
            recovery: None,
        }))
        .await?;
    s.peer.send(ack(&p, 7)).await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(true) && res["seq"] == json!(7),
        "the publish resolved with {res}; expected its own ack (seq 7), not the one for another id (seq 99)"
    );
    s.peer.collect(cx.ms(200)).await?;
    check!(
        s.driver.of_kind("disconnected").is_empty() && s.driver.of_kind("terminal").is_empty(),
        "replies with unknown ids ended the session"
    );
    check_frames(&s.peer)
}

async fn unsubscribe_final(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    send_msgs(&mut s.peer, "room", "e1", [1]).await?;
    delivered_up_to(&cx, &mut s, "room", 1).await?;
    let r = s
        .driver
        .send(json!({"cmd": "unsubscribe", "channel": "room"}))
        .await?;
    let unsub = s
        .peer
        .expect("unsubscribe", |b| match b {
            Body::Unsubscribe(u) => Some(u.clone()),
            _ => None,
        })
        .await?;
    cx.note("message 2 before the unsubscribe_ack, message 3 after it");
    send_msgs(&mut s.peer, "room", "e1", [2]).await?;
    s.peer
        .send(Body::UnsubscribeAck(v2::UnsubscribeAck {
            id: unsub.id.clone(),
            channel: unsub.channel.clone(),
        }))
        .await?;
    send_msgs(&mut s.peer, "room", "e1", [3]).await?;
    s.driver.result(r, cx.step()).await?;
    s.driver.settle(cx.ms(300)).await;
    let got = s.driver.delivered("room");
    check!(
        got == [1],
        "delivered {got:?} on `room`; after the unsubscribe nothing may be delivered"
    );
    check_frames(&s.peer)
}

async fn rpc_ids(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["features"] = json!(["rpc"]);
    let (mut peer, _) = cx
        .open(&mut server, &mut driver, cmd, Welcome::default())
        .await?;
    let mut refs = Vec::new();
    for n in 0..3 {
        refs.push(
            driver
                .send(json!({"cmd": "rpc", "method": "echo", "payload": {"n": n}}))
                .await?,
        );
    }
    let mut reqs = Vec::new();
    for _ in 0..3 {
        reqs.push(
            peer.expect("rpc_request", |b| match b {
                Body::RpcRequest(r) => Some(r.clone()),
                _ => None,
            })
            .await?,
        );
    }
    let mut ids: Vec<&str> = reqs.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    check!(
        ids.len() == 3,
        "three concurrent rpc_requests carried ids {:?}",
        reqs.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    // Answer in reverse order, each with its own request's payload.
    for r in reqs.iter().rev() {
        peer.send(Body::RpcResponse(v2::RpcResponse {
            id: r.id.clone(),
            payload: r.payload.clone(),
        }))
        .await?;
    }
    for (n, r) in refs.into_iter().enumerate() {
        let res = driver.result(r, cx.step()).await?;
        check!(
            res["ok"] == json!(true) && res["payload"] == json!({"n": n}),
            "rpc call {n} resolved with {res}; expected its own answer {{\"n\": {n}}}"
        );
    }
    Ok(())
}

async fn offline(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    let r1 = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": 1}}))
        .await?;
    let p1 = expect_publish(&mut s.peer).await?;
    cx.note("the link drops before publish 1 is acknowledged");
    s.peer.drop_link().await;
    s.driver
        .wait("the disconnected event", cx.step(), |e| {
            e.kind() == "disconnected"
        })
        .await?;
    let r2 = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": 2}}))
        .await?;
    let r3 = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": 3}}))
        .await?;
    tokio::time::sleep(cx.ms(100)).await;
    let mut peer = s
        .server
        .accept_within(cx.ms(3000))
        .await?
        .ok_or_else(|| fail("the client did not reconnect"))?;
    handshake(&mut peer, &Welcome::default()).await?;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(expect_publish(&mut peer).await?);
    }
    let payloads: Vec<serde_json::Value> = got
        .iter()
        .map(|p| courier_protocol::wire::payload::to_json(&p.payload).unwrap_or_default())
        .collect();
    check!(
        payloads == [json!({"n": 1}), json!({"n": 2}), json!({"n": 3})],
        "after reconnecting the client sent payloads {payloads:?}; expected n = 1, 2, 3 in order"
    );
    check!(
        got[0].id == p1.id,
        "publish 1 was resent with id {:?}; it was first sent with {:?}",
        got[0].id,
        p1.id
    );
    let mut ids: Vec<&str> = got.iter().map(|p| p.id.as_str()).collect();
    check!(
        ids.iter().all(|i| !i.is_empty()),
        "a publish carried an empty id"
    );
    ids.sort();
    ids.dedup();
    check!(
        ids.len() == 3,
        "three distinct publishes carried ids {:?} (DEDUP-ID-UNIQUE)",
        got.iter().map(|p| &p.id).collect::<Vec<_>>()
    );
    for (n, p) in got.iter().enumerate() {
        peer.send(ack(p, n as u64 + 1)).await?;
    }
    for (n, r) in [r1, r2, r3].into_iter().enumerate() {
        let res = s.driver.result(r, cx.step()).await?;
        check!(
            res["ok"] == json!(true) && res["seq"] == json!(n + 1),
            "publish {} resolved with {res}",
            n + 1
        );
    }
    check_frames(&peer)
}

async fn bounded(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["offline_queue"] = json!(3);
    let (mut peer, _) = cx
        .open(&mut server, &mut driver, cmd, Welcome::default())
        .await?;
    peer.drop_link().await;
    driver
        .wait("the disconnected event", cx.step(), |e| {
            e.kind() == "disconnected"
        })
        .await?;
    let mut refs = Vec::new();
    for n in 1..=4 {
        refs.push(
            driver
                .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": n}}))
                .await?,
        );
    }
    let fourth = driver.result(refs[3], cx.step()).await?;
    check!(
        fourth["ok"] == json!(false),
        "a fourth publish into an offline queue of 3 resolved with {fourth}; it must be refused"
    );
    let mut peer = server
        .accept_within(cx.ms(3000))
        .await?
        .ok_or_else(|| fail("the client did not reconnect"))?;
    handshake(&mut peer, &Welcome::default()).await?;
    for n in 1..=3u64 {
        let p = expect_publish(&mut peer).await?;
        let payload = courier_protocol::wire::payload::to_json(&p.payload).unwrap_or_default();
        check!(
            payload == json!({"n": n}),
            "queued publish {n} arrived as {payload}"
        );
        peer.send(ack(&p, n)).await?;
    }
    for r in &refs[..3] {
        let res = driver.result(*r, cx.step()).await?;
        check!(
            res["ok"] == json!(true),
            "a queued publish resolved with {res}"
        );
    }
    Ok(())
}

async fn message_size(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let w = Welcome {
        max_message_bytes: 1024,
        ..Welcome::default()
    };
    let cmd = cx.connect_cmd(&server);
    let (mut peer, _) = cx.open(&mut server, &mut driver, cmd, w).await?;
    let big = "x".repeat(3000);
    let res = driver
        .call(json!({"cmd": "publish", "channel": "room", "payload": {"text": big}}))
        .await?;
    check!(
        res["ok"] == json!(false),
        "a publish of 3000 bytes over a 1024-byte limit resolved with {}",
        res["ok"]
    );
    peer.collect(cx.ms(200)).await?;
    check!(
        peer.largest_frame() <= 1024,
        "the client sent a frame of {} bytes; welcome.limits.max_message_bytes is 1024",
        peer.largest_frame()
    );
    Ok(())
}

async fn server_frame(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let w = Welcome {
        max_message_bytes: 1024,
        ..Welcome::default()
    };
    let cmd = cx.connect_cmd(&server);
    let (peer, hello) = cx.open(&mut server, &mut driver, cmd, w).await?;
    let mut s = Session {
        server,
        driver,
        peer,
        hello,
    };
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    cx.note("a message frame of about 1.8 KiB: over max_message_bytes, under twice it");
    s.peer
        .send(message(
            "room",
            "e1",
            1,
            "big",
            json!({"text": "y".repeat(1700)}),
        ))
        .await?;
    delivered_up_to(&cx, &mut s, "room", 1).await?;
    Ok(())
}

async fn reauth(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["features"] = json!(["reauth"]);
    let (mut peer, _) = cx
        .open(&mut server, &mut driver, cmd.clone(), Welcome::default())
        .await?;
    let deadline = cx.scaled(1500);
    peer.send(Body::ReauthRequest(v2::ReauthRequest {
        deadline_ms: deadline,
        reason: "key rotation".into(),
    }))
    .await?;
    let sent = Instant::now();
    let refresh = peer
        .expect("refresh", |b| match b {
            Body::Refresh(r) => Some(r.clone()),
            _ => None,
        })
        .await?;
    check!(
        sent.elapsed() < Duration::from_millis(deadline),
        "the refresh came {:?} after reauth_request; its deadline was {deadline} ms",
        sent.elapsed()
    );
    check!(
        refresh.token == TOKENS[1],
        "the refresh carries {:?}; expected new credentials from the application ({:?})",
        refresh.token,
        TOKENS[1]
    );
    peer.send(Body::Refreshed(v2::Refreshed {
        id: refresh.id.clone(),
        token_expires_at_ms: None,
    }))
    .await?;
    cx.note("a second client whose application has no new credentials");
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["features"] = json!(["reauth"]);
    cmd["tokens"] = json!([TOKENS[0], null]);
    let (mut peer, _) = cx
        .open(&mut server, &mut driver, cmd, Welcome::default())
        .await?;
    peer.send(Body::ReauthRequest(v2::ReauthRequest {
        deadline_ms: cx.scaled(400),
        reason: "key rotation".into(),
    }))
    .await?;
    let extra = peer.collect(cx.ms(400)).await?;
    if extra
        .iter()
        .any(|e| matches!(e.body, Some(Body::Refresh(_))))
    {
        return Err(fail(
            "the client sent a refresh though the application had no credentials",
        ));
    }
    peer.disconnect(4301, "re-authentication timeout", None)
        .await;
    driver
        .wait("a terminal event", cx.step(), |e| e.kind() == "terminal")
        .await?;
    super::session::no_reconnect(&mut server, cx.ms(1200), "4301 with no credentials").await
}

async fn refresh_early(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let w = Welcome {
        token_expires_at_ms: Some(now_ms + 31_000),
        ..Welcome::default()
    };
    let cmd = cx.connect_cmd(&server);
    let (mut peer, _) = cx.open(&mut server, &mut driver, cmd, w).await?;
    let refresh = peer
        .expect("refresh", |b| match b {
            Body::Refresh(r) => Some(r.clone()),
            _ => None,
        })
        .await
        .map_err(|_| fail("credentials expiring in 31 s were not refreshed within 2 s; the spec asks for about 30 s of margin"))?;
    check!(
        refresh.token == TOKENS[1],
        "the refresh carries {:?}, not new credentials",
        refresh.token
    );
    Ok(())
}

async fn no_auto_retry(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    let r = s
        .driver
        .send(json!({"cmd": "subscribe", "channel": "secret"}))
        .await?;
    let sub = expect_subscribe(&mut s.peer, "secret").await?;
    s.peer
        .send(Body::Error(v2::Error {
            id: sub.id.clone(),
            code: v2::ErrorCode::Forbidden as i32,
            message: "forbidden".into(),
            channel: "secret".into(),
            retry_after_ms: None,
        }))
        .await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(false),
        "a denied subscribe resolved with {res}"
    );
    let again = s.peer.collect(cx.ms(400)).await?;
    check!(
        !again
            .iter()
            .any(|e| matches!(&e.body, Some(Body::Subscribe(x)) if x.channel == "secret")),
        "the client subscribed to `secret` again after FORBIDDEN"
    );
    s.peer.drop_link().await;
    let mut peer = s
        .server
        .accept_within(cx.ms(3000))
        .await?
        .ok_or_else(|| fail("the client did not reconnect"))?;
    handshake(&mut peer, &Welcome::default()).await?;
    let after = peer.collect(cx.ms(400)).await?;
    check!(
        !after
            .iter()
            .any(|e| matches!(&e.body, Some(Body::Subscribe(x)) if x.channel == "secret")),
        "after reconnecting the client subscribed again to `secret`, which was denied"
    );
    Ok(())
}

async fn unknown_enum(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    let r = s
        .driver
        .send(json!({"cmd": "publish", "channel": "room", "payload": {"n": 1}}))
        .await?;
    let p = expect_publish(&mut s.peer).await?;
    cx.note("error code 999, which no version defines");
    s.peer
        .send(Body::Error(v2::Error {
            id: p.id.clone(),
            code: 999,
            message: "from the future".into(),
            channel: "room".into(),
            retry_after_ms: None,
        }))
        .await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(false),
        "a publish answered with an error of an unknown code resolved with {res}"
    );
    s.peer.collect(cx.ms(200)).await?;
    check!(
        s.driver.of_kind("disconnected").is_empty(),
        "an error with an unknown code ended the session"
    );
    check_frames(&s.peer)
}
