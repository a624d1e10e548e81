//! Deduplication by publish id: duplicates acked with the original position
//! and delivered once, within a connection and across reconnects; distinct
//! ids and other users' ids are not duplicates; the advertised per-channel
//! bound keeps at least its last publishes (channels.md §4).

use courier_protocol::v2;

use super::util::{
    error_name, expect_no_message, messages, next_message, publish, publish_reply, send_publish,
    subscribe, sync, try_publish,
};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseResult, Ctx};
use crate::check;
use crate::profile::TokenKind;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "dedupe.duplicate-acked",
        title: "A repeated publish id is acked with the original seq and duplicate: true, and delivered once",
        requirements: &["DEDUP-ACK-ORIGINAL", "DEDUP-DELIVER-ONCE", "DEDUP-WINDOW"],
        axes: Axes::Each,
        run: |cx| Box::pin(duplicate_acked(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.across-reconnect",
        title: "A publish retried on a new connection within the window is recognised as a duplicate",
        requirements: &["DEDUP-ACROSS-RECONNECT", "DEDUP-DELIVER-ONCE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(across_reconnect(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.distinct-ids",
        title: "Distinct ids with identical payloads are both numbered and delivered",
        requirements: &["DEDUP-WINDOW"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(distinct_ids(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.per-user",
        title: "The same id from another user is not a duplicate (key includes the publisher identity)",
        requirements: &["DEDUP-WINDOW"],
        axes: Axes::Once,
        run: |cx| Box::pin(per_user(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.within-window",
        title: "A retry seconds later, well within dedupe_window_ms, is still recognised as a duplicate",
        requirements: &["DEDUP-WINDOW"],
        axes: Axes::Once,
        run: |cx| Box::pin(within_window(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.max-bound",
        title: "Under the advertised dedupe_max_per_channel, the oldest of the channel's last publishes is still recognised",
        requirements: &["DEDUP-MAX", "DEDUP-WINDOW"],
        axes: Axes::PerVersion,
        versions: &[2],
        run: |cx| Box::pin(max_bound(cx)),
        ..BASE
    },
    CaseDef {
        id: "dedupe.id-required",
        title: "A publish with an empty id is refused with BAD_REQUEST, numbers nothing, and the session continues",
        requirements: &["DEDUP-ID-REQUIRED", "ERR-SESSION-CONTINUES", "SEQ-GAPFREE"],
        axes: Axes::Each,
        run: |cx| Box::pin(id_required(cx)),
        ..BASE
    },
];

async fn duplicate_acked(cx: Ctx) -> CaseResult {
    let (mut s, _) = cx.open("sub").await?;
    let (mut p, _) = cx.open("pub").await?;
    let ch = cx.channel("dup");
    subscribe(&mut s, &cx, &ch, None).await?;
    let id = cx.id("p");
    let first = publish(&mut p, &ch, &id, serde_json::json!({"v": 1})).await?;
    check!(
        !first.duplicate,
        "the first publish of an id was acked with duplicate: true"
    );
    // Different payload: the key is the id, whatever the payload.
    let again = publish(&mut p, &ch, &id, serde_json::json!({"v": 2})).await?;
    check!(
        again.duplicate,
        "the repeated id {id} was acked without duplicate: true (seq {})",
        again.seq
    );
    check!(
        again.seq == first.seq && again.epoch == first.epoch,
        "duplicate acked at ({:?}, {}), original at ({:?}, {})",
        again.epoch,
        again.seq,
        first.epoch,
        first.seq
    );
    let next = publish(&mut p, &ch, &cx.id("p"), serde_json::json!({"v": 3})).await?;
    check!(next.seq == first.seq + 1, "after a duplicate the next publish got seq {}, expected {}: the duplicate consumed a number", next.seq, first.seq + 1);
    let msgs = messages(&mut s, &ch, 2).await?;
    check!(
        msgs[0].id == id && msgs[0].seq == first.seq,
        "first delivered message is seq {} id {:?}",
        msgs[0].seq,
        msgs[0].id
    );
    check!(
        msgs[1].seq == next.seq,
        "the duplicate was delivered again: got seq {} id {:?} after the original",
        msgs[1].seq,
        msgs[1].id
    );
    sync(&mut s, 77).await?;
    expect_no_message(&mut s, &ch, cx.ms(100)).await?;
    // A duplicate sent right behind its original, before the original's
    // ack: answered once the original is numbered, with its position.
    let id = cx.id("p");
    send_publish(&mut p, &ch, &id, serde_json::json!({"v": 4})).await?;
    send_publish(&mut p, &ch, &id, serde_json::json!({"v": 4})).await?;
    let mut acks = Vec::new();
    for _ in 0..2 {
        let a = publish_reply(&mut p, &id)
            .await?
            .map_err(|e| fail(format!("pipelined publish {id} failed: {}", e.message)))?;
        acks.push((a.seq, a.duplicate));
    }
    check!(
        acks[0].0 == acks[1].0 && acks.iter().filter(|a| a.1).count() == 1,
        "the same id published twice back to back was acked {acks:?} (seq, duplicate): expected one original and one duplicate: true with the same seq (DEDUP-ACK-ORIGINAL, also while the original is being numbered)"
    );
    let m = next_message(&mut s, &ch).await?;
    check!(
        m.id == id && m.seq == acks[0].0,
        "the pipelined publish was delivered as seq {} id {:?}",
        m.seq,
        m.id
    );
    sync(&mut s, 78).await?;
    expect_no_message(&mut s, &ch, cx.ms(100)).await
}

async fn across_reconnect(cx: Ctx) -> CaseResult {
    let (mut s, _) = cx.open("sub").await?;
    let ch = cx.channel("dup-rc");
    subscribe(&mut s, &cx, &ch, None).await?;
    let id = cx.id("p");
    let (mut p1, _) = cx.open("pub1").await?;
    let first = publish(&mut p1, &ch, &id, serde_json::json!("x")).await?;
    p1.drop_link();
    let (mut p2, _) = cx.open("pub2").await?;
    let again = publish(&mut p2, &ch, &id, serde_json::json!("x")).await?;
    check!(
        again.duplicate && again.seq == first.seq,
        "retry on a new connection acked at seq {} duplicate {}, original seq {}",
        again.seq,
        again.duplicate,
        first.seq
    );
    let m = next_message(&mut s, &ch).await?;
    check!(m.seq == first.seq, "unexpected first message seq {}", m.seq);
    sync(&mut s, 78).await?;
    expect_no_message(&mut s, &ch, cx.ms(100)).await
}

async fn distinct_ids(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("distinct");
    subscribe(&mut c, &cx, &ch, None).await?;
    let a = publish(&mut c, &ch, &cx.id("p"), serde_json::json!("same")).await?;
    let b = publish(&mut c, &ch, &cx.id("p"), serde_json::json!("same")).await?;
    check!(
        !b.duplicate && b.seq == a.seq + 1,
        "a distinct id with the same payload was acked at seq {} duplicate {}",
        b.seq,
        b.duplicate
    );
    let msgs = messages(&mut c, &ch, 2).await?;
    check!(
        msgs[0].seq + 1 == msgs[1].seq,
        "expected two consecutive messages, got seqs {} and {}",
        msgs[0].seq,
        msgs[1].seq
    );
    Ok(())
}

async fn per_user(cx: Ctx) -> CaseResult {
    let other = cx.token(TokenKind::OtherUser).await?;
    let (mut a, wa) = cx.open("user-a").await?;
    let (mut b, wb) = cx.open_with("user-b", &other, &[]).await?;
    if wa.user == wb.user {
        return Err(crate::case::CaseError::Unsupported(format!(
            "the `other-user` token authenticates as the same user {:?}",
            wa.user
        )));
    }
    let ch = cx.channel("peruser");
    let id = cx.id("p");
    let first = publish(&mut a, &ch, &id, serde_json::json!(1)).await?;
    let second = publish(&mut b, &ch, &id, serde_json::json!(2)).await?;
    check!(
        !second.duplicate && second.seq == first.seq + 1,
        "user {:?} reusing user {:?}'s id got seq {} duplicate {}",
        wb.user,
        wa.user,
        second.seq,
        second.duplicate
    );
    Ok(())
}

async fn id_required(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("noid");
    subscribe(&mut c, &cx, &ch, None).await?;
    let r = try_publish(&mut c, &ch, "", serde_json::json!("no id")).await?;
    match r {
        Err(e) => check!(
            e.code == v2::ErrorCode::BadRequest as i32,
            "empty-id publish answered with {}, expected ERROR_CODE_BAD_REQUEST",
            error_name(e.code)
        ),
        Ok(a) => {
            return Err(fail(format!(
                "a publish with an empty id was acked with seq {}",
                a.seq
            )))
        }
    }
    let ok = publish(&mut c, &ch, &cx.id("p"), serde_json::json!("ok")).await?;
    check!(ok.seq == 1, "after a refused publish the next one got seq {}, expected 1 (a failed publish consumes no number)", ok.seq);
    let m = next_message(&mut c, &ch).await?;
    check!(m.seq == 1, "first delivered message has seq {}", m.seq);
    Ok(())
}

/// Most publishes `dedupe.max-bound` sends between an original and its retry.
const MAX_BOUND_PUBLISHES: u32 = 40;

async fn max_bound(cx: Ctx) -> CaseResult {
    let (mut p, w) = cx.open("pub").await?;
    let max = w.dedupe_max_per_channel;
    if max == 0 {
        cx.note("welcome.dedupe_max_per_channel is 0: no bound, DEDUP-WINDOW alone applies");
        return Ok(());
    }
    let burst = w.limits.as_ref().map_or(0, |l| l.max_burst);
    // The original plus `later` publishes: all of them within the bound.
    let later = (max - 1).min(MAX_BOUND_PUBLISHES).min(burst / 2);
    let ch = cx.channel("dup-max");
    let id = cx.id("p");
    let first = publish(&mut p, &ch, &id, serde_json::json!(0)).await?;
    for i in 0..later {
        // DEDUP-MAX: the bound never refuses a publish (`publish` fails on an error).
        publish(&mut p, &ch, &cx.id("n"), serde_json::json!(i)).await?;
    }
    cx.note(format!(
        "retrying {id} after {later} later publishes (dedupe_max_per_channel {max})"
    ));
    let again = publish(&mut p, &ch, &id, serde_json::json!(0)).await?;
    check!(
        again.duplicate && again.seq == first.seq && again.epoch == first.epoch,
        "publish {id} retried after {later} later publishes on its channel, under the advertised dedupe_max_per_channel = {max}: acked at ({:?}, {}) duplicate {}, expected the original ({:?}, {}) with duplicate: true (DEDUP-MAX: remembered until dedupe_max_per_channel later publishes)",
        again.epoch,
        again.seq,
        again.duplicate,
        first.epoch,
        first.seq
    );
    Ok(())
}

/// How long the retry waits at most (before time scaling): long enough to
/// catch a server that forgets ids after a second or two.
const RETRY_AFTER_MS: u64 = 3000;

async fn within_window(cx: Ctx) -> CaseResult {
    let (mut p, w) = cx.open("pub").await?;
    let window = w.dedupe_window_ms;
    check!(
        window > 0,
        "welcome advertises dedupe_window_ms 0 (DEDUP-WINDOW)"
    );
    let wait = (window * 3 / 4).min(RETRY_AFTER_MS);
    let ch = cx.channel("dup-window");
    let id = cx.id("p");
    let first = publish(&mut p, &ch, &id, serde_json::json!(1)).await?;
    cx.note(format!(
        "retrying {id} after {wait} ms (dedupe_window_ms {window})"
    ));
    p.expect_open_for(cx.ms(wait)).await?;
    let again = publish(&mut p, &ch, &id, serde_json::json!(1)).await?;
    check!(
        again.duplicate && again.seq == first.seq && again.epoch == first.epoch,
        "publish {id} retried {wait} ms after it was numbered, within dedupe_window_ms = {window}: acked at ({:?}, {}) duplicate {}, expected the original ({:?}, {}) with duplicate: true (DEDUP-WINDOW: remembered for at least the advertised window)",
        again.epoch,
        again.seq,
        again.duplicate,
        first.epoch,
        first.seq
    );
    Ok(())
}
