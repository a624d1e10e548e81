//! Optional features: gating when not negotiated, presence, ephemeral
//! messages and version 2 batches (session.md §3, features.md, versions.md §2);
//! RPC is in `rpc`.
//! Cases of a feature the profile does not declare are `unsupported`.

use courier_protocol::close;
use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::util::{
    check_close, error_name, expect_no_message, next_message, payload, publish, reply, subscribe,
    sync, unsubscribe,
};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseResult, Ctx};
use crate::check;
use crate::conn::Conn;
use crate::profile::TokenKind;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "features.gated",
        title: "Requests of features not enabled for the session are answered with UNSUPPORTED",
        requirements: &["FEATURE-GATED"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(gated(cx)),
        ..BASE
    },
    CaseDef {
        id: "presence.join-leave",
        title: "Subscribers with presence see a join and a leave of another session, once each",
        requirements: &["PRESENCE-JOIN-LEAVE"],
        axes: Axes::PerVersion,
        needs: &["presence"],
        run: |cx| Box::pin(presence_join_leave(cx)),
        ..BASE
    },
    CaseDef {
        id: "presence.query",
        title: "presence_query lists every member in join order; unsubscribed channels give NOT_SUBSCRIBED",
        requirements: &["PRESENCE-QUERY", "PRESENCE-CONSISTENT"],
        axes: Axes::PerVersion,
        needs: &["presence"],
        run: |cx| Box::pin(presence_query(cx)),
        ..BASE
    },
    CaseDef {
        id: "ephemeral.relay",
        title: "An ephemeral reaches the other subscribers with publisher set, without a number",
        requirements: &["EPHEMERAL-NO-SEQ"],
        axes: Axes::PerVersion,
        needs: &["ephemeral"],
        run: |cx| Box::pin(ephemeral_relay(cx)),
        ..BASE
    },
    CaseDef {
        id: "batch.order",
        title: "The envelopes of a batch are processed in order, each as its own frame",
        requirements: &["BATCH-ORDER", "BATCH-NOT-HANDSHAKE"],
        axes: Axes::Each,
        versions: &[2],
        needs: &["batch"],
        run: |cx| Box::pin(batch_order(cx)),
        ..BASE
    },
    CaseDef {
        id: "batch.limits",
        title: "A nested, oversized, hello-carrying or unnegotiated batch closes with 4003 without processing any entry",
        requirements: &["BATCH-NO-NESTING", "BATCH-MAX", "BATCH-V2-ONLY", "BATCH-NOT-HANDSHAKE"],
        axes: Axes::PerVersion,
        versions: &[2],
        needs: &["batch"],
        run: |cx| Box::pin(batch_limits(cx)),
        ..BASE
    },
];

pub(super) async fn open_features(
    cx: &Ctx,
    label: &str,
    features: &[&str],
) -> Result<(Conn, v2::Welcome), crate::case::CaseError> {
    let token = cx.token(TokenKind::Valid).await?;
    let (c, w) = cx.open_with(label, &token, features).await?;
    for f in features {
        check!(
            w.features.iter().any(|g| g == f),
            "asked for feature {f:?} which the profile declares, welcome enabled {:?}",
            w.features
        );
    }
    Ok((c, w))
}

/// Waits for the answer to request `id` (an `error`, or the envelope
/// `answer` recognises as the success reply) and checks that it is an
/// `error` of `code`. `sent` says what was sent, `req` the requirement.
async fn expect_error_reply(
    c: &mut Conn,
    id: &str,
    code: v2::ErrorCode,
    sent: &str,
    req: &str,
    answer: impl Fn(&v2::Envelope) -> bool,
) -> CaseResult {
    let what = format!("error {} answering {sent}", code.as_str_name());
    let got = c
        .take(&what, |e| match &e.body {
            Some(Body::Error(err)) if err.id == id => Some(Err(err.clone())),
            _ if answer(e) => Some(Ok(crate::conn::summary(e))),
            _ => None,
        })
        .await
        .map_err(|e| match e {
            crate::case::CaseError::Fail(m) => fail(format!("expected {what} ({req}); {m}")),
            other => other,
        })?;
    match got {
        Ok(other) => Err(fail(format!("expected {what} ({req}), received {other}"))),
        Err(e) => {
            check!(
                e.code == code as i32,
                "expected {what} ({req}), received error {} {:?}",
                error_name(e.code),
                e.message
            );
            Ok(())
        }
    }
}

pub(super) async fn expect_error(
    c: &mut Conn,
    id: &str,
    code: v2::ErrorCode,
    sent: &str,
    req: &str,
) -> CaseResult {
    let id2 = id.to_string();
    expect_error_reply(c, id, code, sent, req, move |e| match &e.body {
        Some(Body::Presence(p)) => p.id == id2,
        Some(Body::RpcResponse(r)) => r.id == id2,
        _ => false,
    })
    .await
}

async fn gated(cx: Ctx) -> CaseResult {
    let (mut c, w) = open_features(&cx, "c1", &[]).await?;
    check!(
        w.features.is_empty(),
        "hello asked for no feature, welcome enabled {:?} (FEATURE-NEGOTIATION)",
        w.features
    );
    let ch = cx.channel("gated");
    subscribe(&mut c, &cx, &ch, None).await?;
    let req = "FEATURE-GATED";
    c.send_body(Body::PresenceQuery(v2::PresenceQuery {
        id: "q1".into(),
        channel: ch.clone(),
    }))
    .await?;
    expect_error(
        &mut c,
        "q1",
        v2::ErrorCode::Unsupported,
        "presence_query q1 in a session without `presence`",
        req,
    )
    .await?;
    c.send_body(Body::RpcRequest(v2::RpcRequest {
        id: "r1".into(),
        method: "x".into(),
        payload: payload(serde_json::json!(null)),
    }))
    .await?;
    expect_error(
        &mut c,
        "r1",
        v2::ErrorCode::Unsupported,
        "rpc_request r1 in a session without `rpc`",
        req,
    )
    .await?;
    c.send_body(Body::Ephemeral(v2::Ephemeral {
        channel: ch.clone(),
        payload: payload(serde_json::json!(1)),
        publisher: String::new(),
    }))
    .await?;
    expect_error_reply(
        &mut c,
        "",
        v2::ErrorCode::Unsupported,
        "an ephemeral in a session without `ephemeral`",
        req,
        |e| matches!(&e.body, Some(Body::Ephemeral(_))),
    )
    .await?;
    // FEATURE-GATED, second half: a session without presence or ephemeral
    // receives no presence_event or ephemeral of its channels.
    let others: Vec<&str> = ["presence", "ephemeral"]
        .into_iter()
        .filter(|f| cx.profile().has_feature(f))
        .collect();
    if !others.is_empty() {
        let (mut o, _) = open_features(&cx, "other", &others).await?;
        subscribe(&mut o, &cx, &ch, None).await?;
        if others.contains(&"ephemeral") {
            o.send_body(Body::Ephemeral(v2::Ephemeral {
                channel: ch.clone(),
                payload: payload(serde_json::json!({"typing": true})),
                publisher: String::new(),
            }))
            .await?;
        }
        sync(&mut o, 72).await?;
        o.close(1000).await;
        sync(&mut c, 73).await?;
        let seen = c.expect_open_for(cx.ms(100)).await?;
        let leaked: Vec<String> = seen
            .iter()
            .filter(|e| {
                matches!(
                    e.body,
                    Some(Body::PresenceEvent(_)) | Some(Body::Ephemeral(_))
                )
            })
            .map(crate::conn::summary)
            .collect();
        check!(
            leaked.is_empty(),
            "a session whose hello asked for no feature received {leaked:?} when another session with {others:?} joined, sent an ephemeral and left its channel (FEATURE-GATED: no envelopes of a feature not enabled)"
        );
    }
    Ok(())
}

fn presence_event(e: &v2::Envelope, ch: &str) -> Option<(i32, String)> {
    match &e.body {
        Some(Body::PresenceEvent(p)) if p.channel == ch => Some((
            p.action,
            p.member
                .as_ref()
                .map(|m| m.session_id.clone())
                .unwrap_or_default(),
        )),
        _ => None,
    }
}

async fn presence_join_leave(cx: Ctx) -> CaseResult {
    let ch = cx.channel("presence");
    let (mut a, _) = open_features(&cx, "a", &["presence"]).await?;
    subscribe(&mut a, &cx, &ch, None).await?;
    let (mut b, wb) = open_features(&cx, "b", &["presence"]).await?;
    subscribe(&mut b, &cx, &ch, None).await?;
    let (action, who) = a
        .take("presence_event join", |e| presence_event(e, &ch))
        .await?;
    check!(
        action == v2::PresenceAction::Join as i32 && who == wb.session_id,
        "expected join of {}, got action {action} of {who}",
        wb.session_id
    );
    subscribe(&mut b, &cx, &ch, None).await?;
    // A leave when it unsubscribes…
    let ack = unsubscribe(&mut b, &cx, &ch).await?;
    check!(
        ack.as_ref().is_ok_and(|a| a.channel == ch),
        "unsubscribe of {ch} answered {ack:?}"
    );
    let (action, who) = a
        .take("presence_event leave on unsubscribe", |e| {
            presence_event(e, &ch)
        })
        .await?;
    check!(action == v2::PresenceAction::Leave as i32 && who == wb.session_id, "expected a leave of {} when it unsubscribed (a repeated subscribe sends no second join), got action {action} of {who}", wb.session_id);
    // …and, subscribed anew, when its connection ends.
    subscribe(&mut b, &cx, &ch, None).await?;
    let (action, who) = a
        .take("presence_event join again", |e| presence_event(e, &ch))
        .await?;
    check!(
        action == v2::PresenceAction::Join as i32 && who == wb.session_id,
        "expected a join of {} subscribing again after its unsubscribe, got action {action} of {who}",
        wb.session_id
    );
    b.close(1000).await;
    let (action, who) = a
        .take("presence_event leave", |e| presence_event(e, &ch))
        .await?;
    check!(
        action == v2::PresenceAction::Leave as i32 && who == wb.session_id,
        "expected a leave of {} when its connection ended, got action {action} of {who}",
        wb.session_id
    );
    Ok(())
}

async fn presence_query(cx: Ctx) -> CaseResult {
    let ch = cx.channel("pq");
    let (mut a, wa) = open_features(&cx, "a", &["presence"]).await?;
    subscribe(&mut a, &cx, &ch, None).await?;
    let (mut b, wb) = open_features(&cx, "b", &["presence"]).await?;
    subscribe(&mut b, &cx, &ch, None).await?;
    b.send_body(Body::PresenceQuery(v2::PresenceQuery {
        id: "q1".into(),
        channel: ch.clone(),
    }))
    .await?;
    let members = reply(&mut b, "q1", "presence", |x| match x {
        Body::Presence(p) if p.id == "q1" => Some(
            p.members
                .iter()
                .map(|m| m.session_id.clone())
                .collect::<Vec<_>>(),
        ),
        _ => None,
    })
    .await?
    .map_err(|e| fail(format!("presence_query failed: {}", error_name(e.code))))?;
    check!(
        members == vec![wa.session_id.clone(), wb.session_id.clone()],
        "members {members:?}, expected [{}, {}] in join order",
        wa.session_id,
        wb.session_id
    );
    // PRESENCE-CONSISTENT: a join after the reply arrives as an event.
    let (mut c, wc) = open_features(&cx, "c", &["presence"]).await?;
    subscribe(&mut c, &cx, &ch, None).await?;
    let (action, who) = b
        .take("presence_event join after the query", |e| {
            presence_event(e, &ch)
        })
        .await?;
    check!(
        action == v2::PresenceAction::Join as i32 && who == wc.session_id,
        "after the presence reply expected a join of {}, got action {action} of {who}",
        wc.session_id
    );
    b.send_body(Body::PresenceQuery(v2::PresenceQuery {
        id: "q2".into(),
        channel: cx.channel("not-mine"),
    }))
    .await?;
    expect_error(
        &mut b,
        "q2",
        v2::ErrorCode::NotSubscribed,
        "presence_query q2 of a channel the session is not subscribed to",
        "PRESENCE-QUERY",
    )
    .await
}

async fn ephemeral_relay(cx: Ctx) -> CaseResult {
    let ch = cx.channel("eph");
    let (mut a, wa) = open_features(&cx, "a", &["ephemeral"]).await?;
    let (mut b, _) = open_features(&cx, "b", &["ephemeral"]).await?;
    subscribe(&mut a, &cx, &ch, None).await?;
    subscribe(&mut b, &cx, &ch, None).await?;
    a.send_body(Body::Ephemeral(v2::Ephemeral {
        channel: ch.clone(),
        payload: payload(serde_json::json!({"typing": true})),
        publisher: "forged".into(),
    }))
    .await?;
    let e = b
        .take("ephemeral", |e| match &e.body {
            Some(Body::Ephemeral(x)) if x.channel == ch => Some(x.clone()),
            _ => None,
        })
        .await?;
    check!(
        e.publisher == wa.session_id,
        "ephemeral publisher {:?}, expected the sender's session id {:?}",
        e.publisher,
        wa.session_id
    );
    // Not numbered: the next publish is still seq 1.
    let ack = publish(&mut a, &ch, &cx.id("p"), serde_json::json!(1)).await?;
    check!(
        ack.seq == 1,
        "after an ephemeral the first publish got seq {}: the ephemeral was numbered",
        ack.seq
    );
    let m = next_message(&mut b, &ch).await?;
    check!(m.seq == 1, "unexpected message seq {}", m.seq);
    // From a session not subscribed to the channel: NOT_SUBSCRIBED, empty id, not relayed.
    let (mut c, _) = open_features(&cx, "c", &["ephemeral"]).await?;
    c.send_body(Body::Ephemeral(v2::Ephemeral {
        channel: ch.clone(),
        payload: payload(serde_json::json!("from outside")),
        publisher: String::new(),
    }))
    .await?;
    expect_error_reply(
        &mut c,
        "",
        v2::ErrorCode::NotSubscribed,
        "an ephemeral from a session not subscribed to its channel",
        "EPHEMERAL-NO-SEQ",
        |_| false,
    )
    .await?;
    sync(&mut b, 74).await?;
    let seen = b.expect_open_for(cx.ms(100)).await?;
    check!(
        !seen.iter().any(|e| matches!(&e.body, Some(Body::Ephemeral(x)) if x.channel == ch)),
        "an ephemeral from a session not subscribed to {ch} was relayed to its subscribers (EPHEMERAL-NO-SEQ)"
    );
    Ok(())
}

fn batch(envs: Vec<Body>) -> Body {
    Body::Batch(v2::Batch {
        envelopes: envs
            .into_iter()
            .map(|b| v2::Envelope { body: Some(b) })
            .collect(),
    })
}

async fn batch_order(cx: Ctx) -> CaseResult {
    let (mut c, _) = open_features(&cx, "c1", &["batch"]).await?;
    let ch = cx.channel("batch");
    let ids: Vec<String> = (0..3).map(|_| cx.id("p")).collect();
    let mut envs = vec![Body::Subscribe(v2::Subscribe {
        id: "s-b".into(),
        channel: ch.clone(),
        resume: None,
    })];
    envs.extend(ids.iter().map(|id| {
        Body::Publish(v2::Publish {
            id: id.clone(),
            channel: ch.clone(),
            payload: payload(serde_json::json!(id)),
        })
    }));
    c.send_body(batch(envs)).await?;
    let mut seen = Vec::new();
    // Replies may themselves arrive batched: the connection unpacks nothing,
    // so flatten here.
    while seen
        .iter()
        .filter(|m: &&v2::Message| m.channel == ch)
        .count()
        < 3
    {
        let env = c.recv("the batch's replies").await?;
        let flat = match env.body {
            Some(Body::Batch(b)) => b.envelopes,
            _ => vec![env],
        };
        for e in flat {
            if let Some(Body::Message(m)) = e.body {
                seen.push(m);
            }
        }
    }
    let got: Vec<(&str, u64)> = seen.iter().map(|m| (m.id.as_str(), m.seq)).collect();
    let want: Vec<(&str, u64)> = ids.iter().map(|s| s.as_str()).zip(1..).collect();
    check!(
        got == want,
        "batched subscribe + 3 publishes delivered {got:?}, expected {want:?}"
    );
    Ok(())
}

async fn batch_limits(cx: Ctx) -> CaseResult {
    let ch = cx.channel("batch-lim");
    // Nested batch.
    let (mut c, _) = open_features(&cx, "nested", &["batch"]).await?;
    let pub1 = Body::Publish(v2::Publish {
        id: cx.id("p"),
        channel: ch.clone(),
        payload: payload(serde_json::json!(1)),
    });
    c.send_body(batch(vec![
        pub1.clone(),
        batch(vec![Body::Ping(v2::Ping { ts: 1 })]),
    ]))
    .await?;
    check_close(
        &c.expect_close(cx.step()).await?,
        close::PROTOCOL_VIOLATION,
        true,
    )?;
    // Over max_batch.
    let (mut c, w) = open_features(&cx, "over", &["batch"]).await?;
    let max = w.limits.as_ref().map(|l| l.max_batch).unwrap_or(0) as usize;
    check!(max > 0, "batch enabled but welcome.limits.max_batch is 0");
    c.send_body(batch(
        (0..=max)
            .map(|i| Body::Ping(v2::Ping { ts: i as u64 }))
            .collect(),
    ))
    .await?;
    check_close(
        &c.expect_close(cx.step()).await?,
        close::PROTOCOL_VIOLATION,
        true,
    )?;
    // A hello inside a batch: refused before any entry is processed.
    let (mut c, _) = open_features(&cx, "hello-inside", &["batch"]).await?;
    let token = cx.token(TokenKind::Valid).await?;
    c.send_body(batch(vec![pub1.clone(), crate::case::hello(&token, &[])]))
        .await?;
    let closed = c.expect_close(cx.step()).await?;
    check!(
        closed.code == Some(close::PROTOCOL_VIOLATION),
        "a batch [publish, hello]: closed with {} {:?}, expected 4003 (BATCH-NOT-HANDSHAKE)",
        closed.code_text(),
        closed.reason
    );
    check_close(&closed, close::PROTOCOL_VIOLATION, true)?;
    // Not negotiated.
    let (mut c, _) = open_features(&cx, "unnegotiated", &[]).await?;
    c.send_body(batch(vec![pub1])).await?;
    check_close(
        &c.expect_close(cx.step()).await?,
        close::PROTOCOL_VIOLATION,
        true,
    )?;
    // None of the publishes was processed.
    let (mut s, _) = cx.open("check").await?;
    let ack = subscribe(&mut s, &cx, &ch, None).await?;
    check!(
        ack.position.map(|p| p.seq).unwrap_or(0) == 0,
        "an envelope of a refused batch was processed"
    );
    expect_no_message(&mut s, &ch, cx.ms(20)).await
}
