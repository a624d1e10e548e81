//! Resuming after a reconnect on the client side: every channel again with
//! its tracked position, and a failed recovery reported to the application
//! (channels.md §4).

use courier_protocol::v2;

use super::seq::{delivered_up_to, send_msgs, subscribed};
use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::{
    check_frames, expect_subscribe, handshake, recovery, subscribe_ack, ClientCaseDef, ClientCtx,
    Welcome,
};

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
