//! Ordering rules between replies and messages, channel names, in-order
//! processing and the subscription limit (channels.md §1, §6; session.md §4;
//! limits.md §5).

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;

use super::util::{
    error_name, expect_no_message, next_message, position, publish, publish_reply, send_publish,
    subscribe, sync, try_subscribe, unsubscribe,
};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "order.ack-before-data",
        title: "subscribe_ack precedes every message of the subscription, replayed or live",
        requirements: &["ORDER-ACK-BEFORE-DATA"],
        axes: Axes::Each,
        run: |cx| Box::pin(ack_before_data(cx)),
        ..BASE
    },
    CaseDef {
        id: "order.idempotent-subscribe",
        title: "A repeated subscribe is acked again with the current position and keeps one subscription",
        requirements: &["ORDER-IDEMPOTENT-SUBSCRIBE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(idempotent_subscribe(cx)),
        ..BASE
    },
    CaseDef {
        id: "order.unknown-unsubscribe",
        title: "Unsubscribing from a channel not subscribed is an ordinary unsubscribe_ack",
        requirements: &["ORDER-UNKNOWN-IDS-IGNORED"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(unknown_unsubscribe(cx)),
        ..BASE
    },
    CaseDef {
        id: "order.unsubscribe-final",
        title: "No message of a channel follows its unsubscribe_ack",
        requirements: &["ORDER-UNSUBSCRIBE-FINAL"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(unsubscribe_final(cx)),
        ..BASE
    },
    CaseDef {
        id: "order.session-in-order",
        title: "A publish pipelined after a subscribe to the same channel is delivered to that session",
        requirements: &["SESSION-IN-ORDER", "ORDER-PUBLISH-ACK"],
        axes: Axes::Each,
        run: |cx| Box::pin(session_in_order(cx)),
        ..BASE
    },
    CaseDef {
        id: "chan.name",
        title: "Invalid channel names are refused with BAD_REQUEST; a 255-byte name is accepted",
        requirements: &["CHAN-NAME", "ERR-SESSION-CONTINUES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(channel_name(cx)),
        ..BASE
    },
    CaseDef {
        id: "limits.subscriptions",
        title: "Subscribing beyond max_subscriptions is refused with TOO_MANY_SUBSCRIPTIONS; repeats do not count",
        requirements: &["LIMIT-SUBSCRIPTIONS"],
        axes: Axes::Once,
        run: |cx| Box::pin(subscriptions(cx)),
        ..BASE
    },
];

async fn ack_before_data(cx: Ctx) -> CaseResult {
    let ch = cx.channel("abd");
    let (mut p, _) = cx.open("pub").await?;
    let mut epoch = String::new();
    for i in 0..3 {
        epoch = publish(&mut p, &ch, &cx.id("p"), serde_json::json!(i))
            .await?
            .epoch;
    }
    let (mut s, _) = cx.open("sub").await?;
    // Live traffic races the subscribe, and the resume makes a replay.
    for i in 0..5 {
        send_publish(&mut p, &ch, &cx.id("p"), serde_json::json!(10 + i)).await?;
    }
    s.send_body(Body::Subscribe(v2::Subscribe {
        id: "s-abd".into(),
        channel: ch.clone(),
        resume: Some(v2::StreamPosition {
            epoch: epoch.clone(),
            seq: 0,
        }),
    }))
    .await?;
    loop {
        let env = s.recv("subscribe_ack").await?;
        match env.body {
            Some(Body::SubscribeAck(a)) if a.id == "s-abd" => break,
            Some(Body::Message(m)) if m.channel == ch => {
                return Err(fail(format!(
                    "message seq {} of {ch} arrived before the subscribe_ack",
                    m.seq
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

async fn idempotent_subscribe(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let ch = cx.channel("idem");
    subscribe(&mut c, &cx, &ch, None).await?;
    publish(&mut c, &ch, &cx.id("p"), serde_json::json!(1)).await?;
    next_message(&mut c, &ch).await?;
    let again = subscribe(&mut c, &cx, &ch, None).await?;
    let (epoch, seq) = position(&again)?;
    check!(
        seq == 1,
        "the repeated subscribe_ack is at seq {seq}, expected the current position 1"
    );
    publish(&mut c, &ch, &cx.id("p"), serde_json::json!(2)).await?;
    let m = next_message(&mut c, &ch).await?;
    check!(
        m.seq == 2 && m.epoch == epoch,
        "after the repeated subscribe got seq {}, expected 2",
        m.seq
    );
    sync(&mut c, 61).await?;
    expect_no_message(&mut c, &ch, cx.ms(100))
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "a repeated subscribe made a second subscription: {m}"
            )),
            o => o,
        })?;
    // With resume: the recovery outcome and replay exactly as for a new
    // subscription, and still a single subscription afterwards.
    if w.limits.map(|l| l.history_size).unwrap_or(0) < 2 {
        cx.note("history_size < 2: the resume half does not apply");
        return Ok(());
    }
    let again = subscribe(&mut c, &cx, &ch, Some((&epoch, 0))).await?;
    let (status, reason, replayed) = super::util::recovery(&again);
    check!(
        status == v2::RecoveryStatus::Recovered && replayed == 2,
        "a repeated subscribe resuming from seq 0 at position 2: recovery {status:?} {reason:?} replayed {replayed}, expected RECOVERED with 2, as for a new subscription (ORDER-IDEMPOTENT-SUBSCRIBE)"
    );
    let after = "a repeated subscribe resuming from seq 0";
    super::util::expect_seqs(
        &mut c,
        &ch,
        &epoch,
        (1, 2),
        after,
        "ORDER-IDEMPOTENT-SUBSCRIBE",
    )
    .await?;
    publish(&mut c, &ch, &cx.id("p"), serde_json::json!(3)).await?;
    super::util::expect_seqs(
        &mut c,
        &ch,
        &epoch,
        (3, 3),
        after,
        "ORDER-IDEMPOTENT-SUBSCRIBE",
    )
    .await?;
    sync(&mut c, 62).await?;
    expect_no_message(&mut c, &ch, cx.ms(100))
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "after a repeated subscribe with resume, a message arrived twice (ORDER-IDEMPOTENT-SUBSCRIBE: a single subscription): {m}"
            )),
            o => o,
        })
}

async fn unknown_unsubscribe(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let r = unsubscribe(&mut c, &cx, &cx.channel("never")).await?;
    check!(
        r.is_ok(),
        "unsubscribe of a channel not subscribed answered with error {:?}",
        r.err().map(|e| error_name(e.code))
    );
    Ok(())
}

async fn unsubscribe_final(cx: Ctx) -> CaseResult {
    let (mut s, _) = cx.open("sub").await?;
    let (mut p, _) = cx.open("pub").await?;
    let ch = cx.channel("unsub");
    subscribe(&mut s, &cx, &ch, None).await?;
    publish(&mut p, &ch, &cx.id("p"), serde_json::json!(1)).await?;
    next_message(&mut s, &ch).await?;
    unsubscribe(&mut s, &cx, &ch)
        .await?
        .map_err(|e| fail(format!("unsubscribe failed: {}", e.message)))?;
    for i in 0..3 {
        publish(&mut p, &ch, &cx.id("p"), serde_json::json!(i)).await?;
    }
    sync(&mut s, 62).await?;
    expect_no_message(&mut s, &ch, cx.ms(150)).await
}

async fn session_in_order(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("inorder");
    let pid = cx.id("p");
    c.send_body(Body::Subscribe(v2::Subscribe {
        id: "s-io".into(),
        channel: ch.clone(),
        resume: None,
    }))
    .await?;
    send_publish(&mut c, &ch, &pid, serde_json::json!("pipelined")).await?;
    let ack = publish_reply(&mut c, &pid)
        .await?
        .map_err(|e| fail(format!("publish failed: {}", e.message)))?;
    let m = next_message(&mut c, &ch).await?;
    check!(
        m.seq == ack.seq && m.id == pid,
        "the session's own publish was not delivered to it (got seq {})",
        m.seq
    );
    Ok(())
}

async fn channel_name(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let prefix = cx.channel("n");
    let long_ok = format!("{prefix}{}", "x".repeat(255 - prefix.len()));
    let too_long = format!("{long_ok}y");
    for (bad, what) in [
        (String::new(), "an empty name"),
        (format!("{prefix}\u{1}x"), "a control character"),
        (format!("{prefix}\u{7f}"), "DEL"),
        (too_long, "256 bytes"),
    ] {
        match try_subscribe(&mut c, &cx, &bad, None).await? {
            Ok(_) => {
                return Err(fail(format!(
                    "subscribe to a channel name with {what} was accepted"
                )))
            }
            Err(e) => check!(
                e.code == v2::ErrorCode::BadRequest as i32,
                "channel name with {what}: {} instead of ERROR_CODE_BAD_REQUEST",
                error_name(e.code)
            ),
        }
    }
    subscribe(&mut c, &cx, &long_ok, None)
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!("a 255-byte channel name was refused: {m}")),
            o => o,
        })?;
    Ok(())
}

async fn subscriptions(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let max = w.limits.as_ref().map(|l| l.max_subscriptions).unwrap_or(0) as usize;
    if max == 0 {
        return Err(CaseError::Unsupported(
            "welcome advertises no max_subscriptions".into(),
        ));
    }
    if max > 512 {
        return Err(CaseError::Skipped(format!(
            "max_subscriptions {max} is too large to exhaust quickly"
        )));
    }
    let first = cx.channel("lim-0");
    for i in 0..max {
        subscribe(&mut c, &cx, &cx.channel(&format!("lim-{i}")), None)
            .await
            .map_err(|e| match e {
                CaseError::Fail(m) => fail(format!(
                    "subscription {} of max_subscriptions {max} refused: {m}",
                    i + 1
                )),
                o => o,
            })?;
    }
    match try_subscribe(&mut c, &cx, &cx.channel("lim-over"), None).await? {
        Ok(_) => {
            return Err(fail(format!(
                "subscription {} accepted beyond max_subscriptions {max}",
                max + 1
            )))
        }
        Err(e) => check!(
            e.code == v2::ErrorCode::TooManySubscriptions as i32,
            "over the limit: {} instead of ERROR_CODE_TOO_MANY_SUBSCRIPTIONS",
            error_name(e.code)
        ),
    }
    subscribe(&mut c, &cx, &first, None)
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "a repeated subscribe at the limit was refused: {m}"
            )),
            o => o,
        })?;
    // The refusal left the other subscriptions working.
    let (mut p, _) = cx.open("pub").await?;
    super::util::publish(&mut p, &first, &cx.id("p"), serde_json::json!("still here")).await?;
    super::util::next_message(&mut c, &first).await.map_err(|e| match e {
        CaseError::Fail(m) => fail(format!(
            "after a TOO_MANY_SUBSCRIPTIONS refusal, a message on the earlier subscription {first} did not arrive (LIMIT-SUBSCRIPTIONS: the other subscriptions are unaffected): {m}"
        )),
        o => o,
    })?;
    // The limit counts subscriptions held: one unsubscribe makes room.
    let id = cx.id("u");
    c.send_body(courier_protocol::v2::envelope::Body::Unsubscribe(
        v2::Unsubscribe {
            id: id.clone(),
            channel: cx.channel("lim-1"),
        },
    ))
    .await?;
    c.take("unsubscribe_ack", |e| {
        matches!(&e.body, Some(courier_protocol::v2::envelope::Body::UnsubscribeAck(a)) if a.id == id)
            .then_some(())
    })
    .await?;
    match try_subscribe(&mut c, &cx, &cx.channel("lim-over"), None).await? {
        Ok(_) => Ok(()),
        Err(e) => Err(fail(format!(
            "after unsubscribing one of {max} subscriptions, a new subscribe was refused with {} (LIMIT-SUBSCRIPTIONS counts the subscriptions the session holds)",
            error_name(e.code)
        ))),
    }
}
