//! Sequence numbering: start, increment, gap-freedom under concurrent
//! publishers, per-channel independence, positions in acks, epoch
//! stability, and payload relay across encodings (channels.md §2-3).

use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};

use courier_protocol::{v2, Subprotocol};

use super::util::{
    expect_seqs, next_message, position, publish, publish_reply, recovery, send_publish, subscribe,
};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseResult, Ctx};
use crate::check;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "seq.start-one",
        title: "A new channel is at seq 0 in a well-formed epoch; its first message gets seq 1",
        requirements: &["SEQ-START-ONE", "SEQ-ACK-POSITION", "SEQ-EPOCH-FORMAT", "RESUME-NOT-REQUESTED"],
        axes: Axes::Each,
        run: |cx| Box::pin(start_one(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.increment",
        title: "Pipelined publishes are numbered +1 in send order and delivered with ts and publisher set",
        requirements: &["SEQ-INCREMENT", "ORDER-PUBLISH-FIFO", "ORDER-PUBLISH-ACK", "MSG-TS", "MSG-PUBLISHER"],
        axes: Axes::Each,
        run: |cx| Box::pin(increment(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.gap-free",
        title: "Concurrent publishers on several connections: every seq assigned once, delivered gap-free to each subscriber",
        requirements: &["SEQ-GAPFREE", "SEQ-MONOTONIC", "SEQ-ACK-CONTIGUOUS"],
        axes: Axes::Each,
        run: |cx| Box::pin(gap_free(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.per-channel",
        title: "Interleaved publishes to two channels are numbered independently",
        requirements: &["SEQ-PER-CHANNEL"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(per_channel(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.ack-position",
        title: "A later subscribe_ack carries the current position and delivery continues right after it",
        requirements: &["SEQ-ACK-POSITION", "SEQ-ACK-CONTIGUOUS"],
        axes: Axes::Each,
        run: |cx| Box::pin(ack_position(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.epoch-stable",
        title: "The epoch stays the same across publishes, subscribers and reconnects",
        requirements: &["SEQ-EPOCH-STABLE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(epoch_stable(cx)),
        ..BASE
    },
    CaseDef {
        id: "seq.relay-across-encodings",
        title: "A payload published in one subprotocol reaches subscribers of every other as the same value and position",
        requirements: &["ENC-PAYLOAD-RELAY"],
        axes: Axes::Once,
        run: |cx| Box::pin(relay(cx)),
        ..BASE
    },
];

/// Checks an epoch's format (SEQ-EPOCH-FORMAT).
pub(crate) fn check_epoch(epoch: &str) -> CaseResult {
    let ok = (1..=64).contains(&epoch.len())
        && epoch
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    check!(
        ok,
        "epoch {epoch:?} is not 1-64 characters of A-Z a-z 0-9 _ -"
    );
    Ok(())
}

async fn start_one(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("start");
    let ack = subscribe(&mut c, &cx, &ch, None).await?;
    let (epoch, seq) = position(&ack)?;
    check_epoch(&epoch)?;
    check!(
        seq == 0,
        "a new channel's subscribe_ack position has seq {seq}, expected 0"
    );
    let (status, _, _) = recovery(&ack);
    check!(status == v2::RecoveryStatus::NotRequested, "subscribe without resume: recovery status {status:?}, expected RECOVERY_STATUS_NOT_REQUESTED");
    let pa = publish(&mut c, &ch, &cx.id("p"), serde_json::json!({"first": true})).await?;
    check!(
        pa.seq == 1,
        "first publish acked with seq {}, expected 1",
        pa.seq
    );
    check!(
        pa.epoch == epoch,
        "publish_ack epoch {:?} differs from the ack's {epoch:?}",
        pa.epoch
    );
    let m = next_message(&mut c, &ch).await?;
    check!(
        m.seq == 1,
        "first message delivered with seq {}, expected 1",
        m.seq
    );
    Ok(())
}

async fn increment(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let ch = cx.channel("inc");
    let ack = subscribe(&mut c, &cx, &ch, None).await?;
    let (epoch, _) = position(&ack)?;
    let ids: Vec<String> = (0..10).map(|_| cx.id("p")).collect();
    let before = now_ms();
    for (i, id) in ids.iter().enumerate() {
        send_publish(&mut c, &ch, id, serde_json::json!({ "i": i })).await?;
    }
    let mut acked = Vec::new();
    for id in &ids {
        let a = publish_reply(&mut c, id)
            .await?
            .map_err(|e| fail(format!("publish {id} failed: {}", e.message)))?;
        acked.push(a.seq);
    }
    check!(
        acked == (1..=10).collect::<Vec<_>>(),
        "publishes sent in order were acked with seqs {acked:?}, expected 1..=10 in send order"
    );
    let msgs = expect_seqs(
        &mut c,
        &ch,
        &epoch,
        (1, 10),
        "10 pipelined publishes to a new channel",
        "SEQ-INCREMENT, ORDER-PUBLISH-ACK",
    )
    .await?;
    let after = now_ms();
    for (m, id) in msgs.iter().zip(&ids) {
        check!(
            &m.id == id,
            "message seq {} carries id {:?}, expected {id:?}",
            m.seq,
            m.id
        );
        check!(
            m.publisher == w.session_id,
            "message publisher {:?} is not the sender's session id {:?}",
            m.publisher,
            w.session_id
        );
        // Generous bounds: the server's clock may differ from ours.
        check!(
            m.ts + 60_000 >= before && m.ts <= after + 60_000,
            "message ts {} is not the server's clock in ms (suite clock {before}..{after})",
            m.ts
        );
    }
    Ok(())
}

async fn gap_free(cx: Ctx) -> CaseResult {
    const PUBLISHERS: usize = 3;
    const EACH: usize = 20;
    let ch = cx.channel("gapfree");
    let mut subs = Vec::new();
    for i in 0..2 {
        let (mut s, _) = cx.open(&format!("sub{i}")).await?;
        let ack = subscribe(&mut s, &cx, &ch, None).await?;
        subs.push((s, position(&ack)?));
    }
    let mut tasks = Vec::new();
    for p in 0..PUBLISHERS {
        let cx = cx.clone();
        let ch = ch.clone();
        tasks.push(tokio::spawn(async move {
            let (mut c, _) = cx.open(&format!("pub{p}")).await?;
            let ids: Vec<String> = (0..EACH).map(|_| cx.id("p")).collect();
            for id in &ids {
                send_publish(&mut c, &ch, id, serde_json::json!({ "p": p })).await?;
            }
            let mut seqs = Vec::new();
            for id in &ids {
                let a = publish_reply(&mut c, id)
                    .await?
                    .map_err(|e| fail(format!("publish failed: {}", e.message)))?;
                seqs.push((a.epoch, a.seq));
            }
            Ok::<_, crate::case::CaseError>(seqs)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        let seqs = t
            .await
            .map_err(|e| fail(format!("publisher task failed: {e}")))??;
        all.push(seqs.iter().map(|s| s.1).collect::<Vec<u64>>());
    }
    let total = (PUBLISHERS * EACH) as u64;
    // A number given twice breaks SEQ-GAPFREE whichever connections got it;
    // only distinct numbers out of send order break ORDER-PUBLISH-FIFO.
    let mut count = std::collections::BTreeMap::new();
    for s in all.iter().flatten() {
        *count.entry(*s).or_insert(0) += 1;
    }
    let twice: Vec<u64> = count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(s, _)| *s)
        .collect();
    check!(
        twice.is_empty(),
        "seq(s) {twice:?} were acked to two different publishes (SEQ-GAPFREE: every number assigned exactly once)"
    );
    let set: BTreeSet<u64> = count.keys().copied().collect();
    check!(
        set == (1..=total).collect(),
        "{total} publishes were acked with seqs other than exactly 1..={total} (SEQ-GAPFREE): missing {:?}, beyond {:?}",
        (1..=total).filter(|s| !set.contains(s)).collect::<Vec<_>>(),
        set.iter().filter(|s| **s > total || **s == 0).collect::<Vec<_>>()
    );
    for (p, own) in all.iter().enumerate() {
        check!(
            own.windows(2).all(|w| w[0] < w[1]),
            "pub{p}'s publishes, sent in order, were numbered {own:?} (ORDER-PUBLISH-FIFO)"
        );
    }
    for (s, (epoch, start)) in subs.iter_mut() {
        let label = s.label().to_string();
        expect_seqs(
            s,
            &ch,
            epoch,
            (*start + 1, total),
            &format!("{label}'s subscribe_ack at seq {start} and {total} concurrent publishes"),
            "SEQ-MONOTONIC, SEQ-ACK-CONTIGUOUS",
        )
        .await?;
    }
    Ok(())
}

async fn per_channel(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let (a, b) = (cx.channel("pc-a"), cx.channel("pc-b"));
    let (mut last_a, mut last_b) = (0u64, 0u64);
    for (i, ch) in [&a, &b, &a, &a, &b, &a].iter().enumerate() {
        let ack = publish(&mut c, ch, &cx.id("p"), serde_json::json!(i)).await?;
        let last = if *ch == &a { &mut last_a } else { &mut last_b };
        let want = *last + 1;
        let both = (i + 1) as u64;
        let why = if ack.seq == want {
            None
        } else if ack.seq == both && both != want {
            Some("the count of publishes to both channels: channels are not numbered independently (SEQ-PER-CHANNEL)".to_string())
        } else if ack.seq > want {
            Some(format!("seq {want} was skipped (SEQ-INCREMENT)"))
        } else {
            Some("a number already given or going back (SEQ-GAPFREE)".to_string())
        };
        if let Some(why) = why {
            return Err(fail(format!(
                "publish #{i} (interleaving a a b a a b a) to {ch}: acked seq {}, expected {want}: {why}",
                ack.seq
            )));
        }
        *last = ack.seq;
    }
    Ok(())
}

async fn ack_position(cx: Ctx) -> CaseResult {
    let (mut p, _) = cx.open("pub").await?;
    let ch = cx.channel("pos");
    let mut epoch = String::new();
    for i in 0..3 {
        epoch = publish(&mut p, &ch, &cx.id("p"), serde_json::json!(i))
            .await?
            .epoch;
    }
    let (mut s, _) = cx.open("sub").await?;
    let ack = subscribe(&mut s, &cx, &ch, None).await?;
    let (e, seq) = position(&ack)?;
    check!(
        e == epoch && seq == 3,
        "after 3 publishes the ack position is ({e:?}, {seq}), expected ({epoch:?}, 3)"
    );
    for i in 3..5 {
        publish(&mut p, &ch, &cx.id("p"), serde_json::json!(i)).await?;
    }
    expect_seqs(
        &mut s,
        &ch,
        &epoch,
        (4, 5),
        "a subscribe_ack at position 3 and two publishes",
        "SEQ-ACK-CONTIGUOUS",
    )
    .await
    .map(|_| ())
}

async fn epoch_stable(cx: Ctx) -> CaseResult {
    let ch = cx.channel("epoch");
    let (mut c, _) = cx.open("c1").await?;
    let first = position(&subscribe(&mut c, &cx, &ch, None).await?)?.0;
    for i in 0..3 {
        let a = publish(&mut c, &ch, &cx.id("p"), serde_json::json!(i)).await?;
        check!(
            a.epoch == first,
            "publish_ack epoch changed from {first:?} to {:?} while history lasts",
            a.epoch
        );
    }
    c.close(1000).await;
    let (mut c2, _) = cx.open("c2").await?;
    let again = position(&subscribe(&mut c2, &cx, &ch, None).await?)?;
    check!(
        again.0 == first,
        "after reconnecting the channel's epoch is {:?}, was {first:?}",
        again.0
    );
    check!(
        again.1 == 3,
        "after reconnecting the channel is at seq {}, expected 3",
        again.1
    );
    Ok(())
}

async fn relay(cx: Ctx) -> CaseResult {
    let sps: Vec<Subprotocol> = cx.profile().subprotocols();
    let ch = cx.channel("relay");
    let value = serde_json::json!({"text": "héllo", "n": -3, "big": 9007199254740993u64, "f": 0.25, "nested": {"a": [1, {"b": null}]}, "t": true});
    let token = cx.token(crate::profile::TokenKind::Valid).await?;
    let mut subs = Vec::new();
    for sp in &sps {
        let mut c = cx
            .connect_offering(&format!("sub-{}-{}", sp.version, sp.encoding), &[sp.name()])
            .await?;
        c.send_body(crate::case::hello(&token, &[])).await?;
        c.recv("welcome").await?;
        subscribe(&mut c, &cx, &ch, None).await?;
        subs.push(c);
    }
    for (n, sp) in sps.iter().enumerate() {
        let mut p = cx
            .connect_offering(&format!("pub-{}-{}", sp.version, sp.encoding), &[sp.name()])
            .await?;
        p.send_body(crate::case::hello(&token, &[])).await?;
        p.recv("welcome").await?;
        let ack = publish(&mut p, &ch, &cx.id("p"), value.clone()).await?;
        for s in subs.iter_mut() {
            let m = next_message(s, &ch).await?;
            check!(
                m.seq == ack.seq && m.epoch == ack.epoch,
                "{}: message #{n} at seq {} epoch {:?}, acked at {} {:?}",
                s.label(),
                m.seq,
                m.epoch,
                ack.seq,
                ack.epoch
            );
            let got = courier_protocol::wire::payload::to_json(&m.payload)
                .map_err(|e| fail(e.to_string()))?;
            check!(
                got == value,
                "published from {sp}, {} received payload {got}, expected {value}",
                s.label()
            );
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
