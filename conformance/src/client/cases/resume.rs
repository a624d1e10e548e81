//! Resuming after a reconnect on the client side: every channel again with
//! its tracked position, and a failed recovery reported to the application
//! (channels.md §4).

use courier_protocol::v2;
use serde_json::json;

use super::seq::{delivered_up_to, send_msgs, subscribed};
use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::{
    check_frames, expect_subscribe, handshake, recovery, subscribe_ack, ClientCaseDef, ClientCtx,
    Session, Welcome,
};
use crate::spec::Level;

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.resume.resubscribe",
        title: "After a lost link the client reconnects and subscribes again to every channel with its tracked position",
        requirements: &["RESUME-CLIENT-RESUBSCRIBE", "CLOSE-RANGES"],
        axes: Axes::Each,
        run: |cx| Box::pin(resubscribe(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.resume.report",
        title: "A failed recovery is reported with its reason, and delivery continues from the ack's position",
        requirements: &["RESUME-CLIENT-REPORT"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(report(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.resume.from-application",
        title: "Subscribing from a position the application kept sends it as resume, delivers the replay after it, and reports a failed recovery",
        requirements: &["RESUME-CLIENT-FROM"],
        level: Level::Should,
        axes: Axes::PerVersion,
        run: |cx| Box::pin(from_application(cx)),
        ..BASE
    },
];

async fn resubscribe(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "a", "ea", 0).await?;
    subscribed(&cx, &mut s, "b", "eb", 5).await?;
    send_msgs(&mut s.peer, "a", "ea", [1, 2, 3]).await?;
    send_msgs(&mut s.peer, "b", "eb", [6]).await?;
    delivered_up_to(&cx, &mut s, "a", 3).await?;
    delivered_up_to(&cx, &mut s, "b", 6).await?;
    check_frames(&s.peer)?;
    cx.note("the link drops without a close frame (1006)");
    s.peer.drop_link().await;
    let mut peer = s.server.accept().await?;
    handshake(&mut peer, &Welcome::default()).await?;
    for (channel, epoch, seq) in [("a", "ea", 3u64), ("b", "eb", 6)] {
        let sub = expect_subscribe(&mut peer, channel).await?;
        let resume = sub.resume.clone().map(|p| (p.epoch, p.seq));
        check!(
            resume == Some((epoch.to_string(), seq)),
            "after reconnecting the client subscribed to `{channel}` with resume {resume:?}; expected ({epoch}, {seq})"
        );
        let rec = recovery(
            v2::RecoveryStatus::Recovered,
            v2::RecoveryReason::Unspecified,
            1,
        );
        peer.send(subscribe_ack(&sub, epoch, seq + 1, rec)).await?;
        send_msgs(&mut peer, channel, epoch, [seq + 1]).await?;
    }
    s.peer = peer;
    let a = delivered_up_to(&cx, &mut s, "a", 4).await?;
    let b = delivered_up_to(&cx, &mut s, "b", 7).await?;
    check!(
        a == [1, 2, 3, 4] && b == [6, 7],
        "delivered a {a:?} and b {b:?}; expected [1, 2, 3, 4] and [6, 7]"
    );
    check_frames(&s.peer)
}

async fn report(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    send_msgs(&mut s.peer, "room", "e1", [1, 2]).await?;
    delivered_up_to(&cx, &mut s, "room", 2).await?;
    s.peer.drop_link().await;
    let mut peer = s.server.accept().await?;
    handshake(&mut peer, &Welcome::default()).await?;
    let sub = expect_subscribe(&mut peer, "room").await?;
    cx.note("recovery fails: history expired; the channel is at (e1, 10)");
    let rec = recovery(
        v2::RecoveryStatus::Failed,
        v2::RecoveryReason::HistoryExpired,
        0,
    );
    peer.send(subscribe_ack(&sub, "e1", 10, rec)).await?;
    send_msgs(&mut peer, "room", "e1", [11]).await?;
    s.peer = peer;
    let ev = s
        .driver
        .wait("the second subscribed event", cx.step(), |e| {
            e.kind() == "subscribed"
                && e.v["channel"] == "room"
                && e.v["recovery"] != "not_requested"
        })
        .await?;
    check!(
        ev.v["recovery"] == "failed" && ev.v["reason"] == "history_expired",
        "the client reported recovery {} (reason {}); expected failed with history_expired",
        ev.v["recovery"],
        ev.v["reason"]
    );
    let got = delivered_up_to(&cx, &mut s, "room", 11).await?;
    if got != [1, 2, 11] {
        return Err(fail(format!(
            "delivered {got:?}; expected [1, 2, 11]: delivery continues from the ack's position (e1, 10)"
        )));
    }
    check_frames(&s.peer)
}

/// Sends `subscribe` with the application's position `(epoch, seq)` and
/// returns the command's ref and the client's `subscribe`.
async fn subscribe_from(
    s: &mut Session,
    channel: &str,
    epoch: &str,
    seq: u64,
) -> Result<(u64, v2::Subscribe), CaseError> {
    let r = s
        .driver
        .send(
            json!({"cmd": "subscribe", "channel": channel, "resume": {"epoch": epoch, "seq": seq}}),
        )
        .await?;
    let sub = expect_subscribe(&mut s.peer, channel).await?;
    let resume = sub.resume.clone().map(|p| (p.epoch, p.seq));
    check!(
        resume == Some((epoch.to_string(), seq)),
        "asked to subscribe to `{channel}` from ({epoch}, {seq}), the client sent resume {resume:?}"
    );
    Ok((r, sub))
}

async fn from_application(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    cx.note("the application kept (e1, 5) for `room`: the channel is at (e1, 8)");
    let (r, sub) = subscribe_from(&mut s, "room", "e1", 5).await?;
    let rec = recovery(
        v2::RecoveryStatus::Recovered,
        v2::RecoveryReason::Unspecified,
        3,
    );
    s.peer.send(subscribe_ack(&sub, "e1", 8, rec)).await?;
    send_msgs(&mut s.peer, "room", "e1", [6, 7, 8, 9]).await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(true),
        "subscribe failed: {}",
        res["error"]
    );
    let got = delivered_up_to(&cx, &mut s, "room", 9).await?;
    check!(
        got == [6, 7, 8, 9],
        "delivered {got:?}; expected the replay 6, 7, 8 after the kept position, then 9"
    );
    let ev = s
        .driver
        .wait("the subscribed event of `room`", cx.step(), |e| {
            e.kind() == "subscribed" && e.v["channel"] == "room"
        })
        .await?;
    check!(
        ev.v["recovery"] == "recovered",
        "the client reported recovery {} for a resume the server recovered",
        ev.v["recovery"]
    );
    cx.note("the application kept (e0, 3) for `lobby`: the channel has a new epoch e2");
    let (r, sub) = subscribe_from(&mut s, "lobby", "e0", 3).await?;
    let rec = recovery(
        v2::RecoveryStatus::Failed,
        v2::RecoveryReason::EpochChanged,
        0,
    );
    s.peer.send(subscribe_ack(&sub, "e2", 4, rec)).await?;
    send_msgs(&mut s.peer, "lobby", "e2", [5]).await?;
    let res = s.driver.result(r, cx.step()).await?;
    check!(
        res["ok"] == json!(true),
        "subscribe failed: {}",
        res["error"]
    );
    let ev = s
        .driver
        .wait("the subscribed event of `lobby`", cx.step(), |e| {
            e.kind() == "subscribed" && e.v["channel"] == "lobby"
        })
        .await?;
    check!(
        ev.v["recovery"] == "failed" && ev.v["reason"] == "epoch_changed",
        "the client reported recovery {} (reason {}) for the kept position; expected failed with epoch_changed: possible loss",
        ev.v["recovery"],
        ev.v["reason"]
    );
    let lobby = delivered_up_to(&cx, &mut s, "lobby", 5).await?;
    check!(
        lobby == [5],
        "delivered {lobby:?} on `lobby`; expected [5], from the ack's position (e2, 4)"
    );
    check_frames(&s.peer)
}
