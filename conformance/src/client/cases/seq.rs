//! Ordering on the client side: gap detection and resubscription, dropping
//! old messages, dropping duplicates by id (channels.md §2–3).

use courier_protocol::v2;
use courier_protocol::v2::envelope::Body;
use serde_json::json;

use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::server::Peer;
use crate::client::{
    check_frames, expect_subscribe, message, recovery, subscribe_ack, ClientCaseDef, ClientCtx,
    Session,
};

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.seq.gap-detection",
        title: "A message past the next seq or in another epoch is not delivered; the client resubscribes from its tracked position and discards until the ack",
        requirements: &["SEQ-CLIENT-GAP-DETECTION"],
        axes: Axes::Each,
        run: |cx| Box::pin(gap_detection(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.seq.drop-old",
        title: "A message at or below the tracked seq of the same epoch is dropped, without a resubscribe",
        requirements: &["SEQ-CLIENT-DROP-OLD"],
        axes: Axes::Each,
        run: |cx| Box::pin(drop_old(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.dedupe.drop",
        title: "A message whose (channel, id) was already delivered is dropped, and the tracked position still advances over it (no resubscribe); messages with an empty id are not dropped",
        requirements: &["DEDUP-CLIENT-DROP", "DEDUP-CLIENT-ADVANCE"],
        axes: Axes::Each,
        run: |cx| Box::pin(dedupe(cx)),
        ..BASE
    },
];

/// Subscribes the driver to `channel` and acknowledges at `(epoch, seq)`.
pub(crate) async fn subscribed(
    cx: &ClientCtx,
    s: &mut Session,
    channel: &str,
    epoch: &str,
    seq: u64,
) -> Result<v2::Subscribe, CaseError> {
    let r = s
        .driver
        .send(json!({"cmd": "subscribe", "channel": channel}))
        .await?;
    let sub = expect_subscribe(&mut s.peer, channel).await?;
    check!(
        sub.resume.is_none(),
        "a first subscription carried resume {:?}",
        sub.resume
    );
    s.peer.send(subscribe_ack(&sub, epoch, seq, None)).await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(true),
        "subscribe failed: {}",
        res["error"]
    );
    Ok(sub)
}

/// Sends messages `seqs` of `(channel, epoch)` with ids `m<seq>`.
pub(crate) async fn send_msgs(
    peer: &mut Peer,
    channel: &str,
    epoch: &str,
    seqs: impl IntoIterator<Item = u64>,
) -> Result<(), CaseError> {
    for seq in seqs {
        peer.send(message(
            channel,
            epoch,
            seq,
            &format!("{epoch}-m{seq}"),
            json!({"n": seq}),
        ))
        .await?;
    }
    Ok(())
}

/// Waits until the driver delivered `seq` on `channel`; returns every seq delivered.
pub(crate) async fn delivered_up_to(
    cx: &ClientCtx,
    s: &mut Session,
    channel: &str,
    seq: u64,
) -> Result<Vec<u64>, CaseError> {
    s.driver
        .wait(&format!("message {seq} of `{channel}`"), cx.step(), |e| {
            e.kind() == "message" && e.v["channel"] == channel && e.v["seq"] == json!(seq)
        })
        .await?;
    Ok(s.driver.delivered(channel))
}

async fn gap_detection(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    send_msgs(&mut s.peer, "room", "e1", [1, 2]).await?;
    delivered_up_to(&cx, &mut s, "room", 2).await?;
    cx.note("message 4 follows 2: a gap");
    send_msgs(&mut s.peer, "room", "e1", [4]).await?;
    let again = expect_subscribe(&mut s.peer, "room").await?;
    let resume = again.resume.clone().map(|p| (p.epoch, p.seq));
    check!(
        resume == Some(("e1".into(), 2)),
        "after the gap the client resubscribed with resume {resume:?}; expected (e1, 2), the last position it delivered"
    );
    cx.note("message 5 arrives before the new subscribe_ack: it must be discarded");
    send_msgs(&mut s.peer, "room", "e1", [5]).await?;
    let rec = recovery(
        v2::RecoveryStatus::Recovered,
        v2::RecoveryReason::Unspecified,
        3,
    );
    s.peer.send(subscribe_ack(&again, "e1", 5, rec)).await?;
    send_msgs(&mut s.peer, "room", "e1", [3, 4, 5]).await?;
    let got = delivered_up_to(&cx, &mut s, "room", 5).await?;
    check!(
        got == [1, 2, 3, 4, 5],
        "delivered seqs {got:?}; expected [1, 2, 3, 4, 5] (4 and 5 held back until the replay)"
    );
    cx.note("a message of another epoch: the client must resubscribe from (e1, 5)");
    send_msgs(&mut s.peer, "room", "e2", [1]).await?;
    let third = expect_subscribe(&mut s.peer, "room").await?;
    let resume = third.resume.clone().map(|p| (p.epoch, p.seq));
    check!(
        resume == Some(("e1".into(), 5)),
        "after a message of epoch e2 the client resubscribed with resume {resume:?}; expected (e1, 5)"
    );
    let rec = recovery(
        v2::RecoveryStatus::Failed,
        v2::RecoveryReason::EpochChanged,
        0,
    );
    s.peer.send(subscribe_ack(&third, "e2", 1, rec)).await?;
    send_msgs(&mut s.peer, "room", "e2", [2]).await?;
    s.driver
        .wait("message e2/2", cx.step(), |e| {
            e.kind() == "message" && e.v["epoch"] == "e2" && e.v["seq"] == 2
        })
        .await?;
    let e2: Vec<u64> = s
        .driver
        .of_kind("message")
        .iter()
        .filter(|m| m["epoch"] == "e2")
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    check!(
        e2 == [2],
        "delivered e2 seqs {e2:?}; expected [2] (e2/1 came before the resubscription)"
    );
    check_frames(&s.peer)
}

async fn drop_old(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    send_msgs(&mut s.peer, "room", "e1", [1, 2, 3]).await?;
    delivered_up_to(&cx, &mut s, "room", 3).await?;
    cx.note("seq 2, 3 and 1 again, with new ids: all old");
    for seq in [2u64, 3, 1] {
        s.peer
            .send(message(
                "room",
                "e1",
                seq,
                &format!("again-{seq}"),
                json!({"again": seq}),
            ))
            .await?;
    }
    send_msgs(&mut s.peer, "room", "e1", [4]).await?;
    let got = delivered_up_to(&cx, &mut s, "room", 4).await?;
    check!(
        got == [1, 2, 3, 4],
        "delivered seqs {got:?}; expected [1, 2, 3, 4]: messages at or below the tracked seq must be dropped"
    );
    let extra = s.peer.collect(cx.ms(200)).await?;
    if let Some(Body::Subscribe(sub)) = extra
        .iter()
        .filter_map(|e| e.body.as_ref())
        .find(|b| matches!(b, Body::Subscribe(_)))
    {
        return Err(fail(format!(
            "old messages made the client resubscribe ({:?}): only a gap or a new epoch calls for that",
            sub.resume
        )));
    }
    check_frames(&s.peer)
}

async fn dedupe(cx: ClientCtx) -> Result<(), CaseError> {
    const MSGS: [(u64, &str); 6] = [(1, "a"), (2, "b"), (3, "a"), (4, "c"), (5, ""), (6, "")];
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    for (seq, id) in MSGS {
        s.peer
            .send(message("room", "e1", seq, id, json!({"n": seq})))
            .await?;
    }
    // DEDUP-CLIENT-ADVANCE: seq 3 is dropped but advances the position, so
    // 4 is the next message, not a gap. A client that tracks only what it
    // delivered resubscribes from 2, and would drop 3 again in the replay.
    let extra = s.peer.collect(cx.ms(300)).await?;
    if let Some(Body::Subscribe(sub)) = extra
        .iter()
        .filter_map(|e| e.body.as_ref())
        .find(|b| matches!(b, Body::Subscribe(_)))
    {
        return Err(fail(format!(
            "after dropping seq 3 as a duplicate of id `a` the client took seq 4 for a gap and resubscribed with resume {:?}: a dropped duplicate advances the tracked position (DEDUP-CLIENT-ADVANCE)",
            sub.resume
        )));
    }
    let got = delivered_up_to(&cx, &mut s, "room", 6).await?;
    check!(
        got == [1, 2, 4, 5, 6],
        "delivered seqs {got:?}; expected [1, 2, 4, 5, 6]: seq 3 repeats id `a` (DEDUP-CLIENT-DROP), seqs 5 and 6 have no id and are distinct"
    );
    check_frames(&s.peer)
}
