//! Resume and recovery: exact replay of the missed range, all-or-nothing,
//! failure reasons (epoch changed, position ahead, history gone), and the
//! epoch after a restart (channels.md §5, limits.md §6).

use courier_protocol::v2::envelope::Body;
use courier_protocol::v2::{self, RecoveryReason, RecoveryStatus};
use courier_protocol::Encoding;

use super::util::{
    expect_no_message, expect_seqs, next_message, position, publish, recovery, subscribe, sync,
};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "resume.exact-range",
        title: "Resume replays exactly the missed messages, in order, after the ack and before new ones",
        requirements: &["RESUME-EXACT-RANGE", "RESUME-REPLAYED-COUNT", "SEQ-ACK-CONTIGUOUS"],
        axes: Axes::Each,
        run: |cx| Box::pin(exact_range(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.current-position",
        title: "Resuming from the current position recovers with nothing replayed",
        requirements: &["RESUME-EXACT-RANGE", "RESUME-REPLAYED-COUNT"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(current_position(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.epoch-changed",
        title: "Resuming with an unknown epoch fails with EPOCH_CHANGED and replays nothing",
        requirements: &["RESUME-REASON", "RESUME-ALL-OR-NOTHING"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(epoch_changed(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.position-ahead",
        title: "Resuming from beyond the current seq fails with POSITION_AHEAD",
        requirements: &["RESUME-REASON"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(position_ahead(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.history-limit",
        title: "History keeps the last history_size messages: a resume within it recovers, one beyond fails with HISTORY_EXPIRED",
        requirements: &["LIMIT-HISTORY", "RESUME-ALL-OR-NOTHING", "RESUME-REASON"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(history_limit(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.history-ttl",
        title: "A message older than history_ttl_ms is no longer replayed: HISTORY_EXPIRED; younger ones still are",
        requirements: &["LIMIT-HISTORY", "RESUME-REASON"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(history_ttl(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.empty-position",
        title: "A present but empty resume is a resume request (EPOCH_CHANGED); an absent or null one is not",
        requirements: &["RESUME-PRESENT", "RESUME-NOT-REQUESTED"],
        axes: Axes::Each,
        run: |cx| Box::pin(empty_position(cx)),
        ..BASE
    },
    CaseDef {
        id: "resume.after-restart",
        title: "After a restart the epoch is unchanged with history intact, or new and resumes fail with EPOCH_CHANGED",
        requirements: &["SEQ-EPOCH-STABLE", "RESUME-REASON"],
        axes: Axes::Once,
        needs: &["restart"],
        exclusive: true,
        run: |cx| Box::pin(after_restart(cx)),
        ..BASE
    },
];

/// Publishes `n` messages and returns the epoch and last seq.
async fn fill(cx: &Ctx, ch: &str, n: usize) -> Result<(String, u64), CaseError> {
    let (mut p, w) = cx.open("pub").await?;
    let rate = w
        .limits
        .as_ref()
        .map(|l| (l.max_burst, l.max_messages_per_second))
        .unwrap_or((0, 0));
    let mut last = (String::new(), 0);
    for i in 0..n {
        // Stay under the advertised rate limit (LIMIT-RATE) with a margin.
        if rate.0 > 0 && i > 0 && i % (rate.0 as usize / 2).max(1) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(
                1000 * (rate.0 as u64 / 2) / rate.1.max(1) as u64,
            ))
            .await;
        }
        let a = publish(&mut p, ch, &cx.id("p"), serde_json::json!({ "i": i })).await?;
        last = (a.epoch, a.seq);
    }
    p.close(1000).await;
    Ok(last)
}

async fn exact_range(cx: Ctx) -> CaseResult {
    let ch = cx.channel("resume");
    let (epoch, _) = fill(&cx, &ch, 5).await?;
    let (mut s, _) = cx.open("sub").await?;
    let ack = subscribe(&mut s, &cx, &ch, Some((&epoch, 2))).await?;
    let (e, seq) = position(&ack)?;
    check!(
        e == epoch && seq == 5,
        "resume from ({epoch:?}, 2) after 5 publishes: subscribe_ack position ({e:?}, {seq}), expected ({epoch:?}, 5) (RESUME-EXACT-RANGE)"
    );
    let (status, reason, replayed) = recovery(&ack);
    check!(
        status == RecoveryStatus::Recovered,
        "resume from seq 2 within history: status {status:?} reason {reason:?}, expected RECOVERED"
    );
    check!(
        replayed == 3,
        "resume from seq 2 at position 5: recovery.replayed is {replayed}, expected 3 (RESUME-REPLAYED-COUNT)"
    );
    expect_seqs(
        &mut s,
        &ch,
        &epoch,
        (3, 5),
        "a RECOVERED subscribe_ack resuming from seq 2 at position 5",
        "RESUME-EXACT-RANGE",
    )
    .await?;
    // New messages follow the replay without a gap.
    let (mut p, _) = cx.open("pub2").await?;
    publish(&mut p, &ch, &cx.id("p"), serde_json::json!("new")).await?;
    expect_seqs(
        &mut s,
        &ch,
        &epoch,
        (6, 6),
        "the replay of 3..=5 and a new publish",
        "SEQ-ACK-CONTIGUOUS",
    )
    .await?;
    Ok(())
}

async fn current_position(cx: Ctx) -> CaseResult {
    let ch = cx.channel("resume-cur");
    let (epoch, last) = fill(&cx, &ch, 2).await?;
    let (mut s, _) = cx.open("sub").await?;
    let ack = subscribe(&mut s, &cx, &ch, Some((&epoch, last))).await?;
    let (status, _, replayed) = recovery(&ack);
    check!(status == RecoveryStatus::Recovered && replayed == 0, "resume from the current position: status {status:?} replayed {replayed}, expected RECOVERED with 0");
    sync(&mut s, 5).await?;
    expect_no_message(&mut s, &ch, cx.ms(100)).await
}

async fn failed_resume(
    cx: &Ctx,
    ch: &str,
    resume: (&str, u64),
    want: RecoveryReason,
) -> CaseResult {
    let (mut s, _) = cx.open("sub").await?;
    let ack = subscribe(&mut s, cx, ch, Some(resume)).await?;
    let (status, reason, replayed) = recovery(&ack);
    check!(
        status == RecoveryStatus::Failed,
        "resume from {resume:?}: status {status:?}, expected FAILED with {want:?}"
    );
    check!(
        reason == want,
        "resume from {resume:?}: reason {reason:?}, expected {want:?}"
    );
    check!(replayed == 0, "failed recovery reports replayed {replayed}");
    let (epoch, seq) = position(&ack)?;
    sync(&mut s, 9).await?;
    expect_no_message(&mut s, ch, cx.ms(50))
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!("a failed recovery replayed messages: {m}")),
            other => other,
        })?;
    let (mut p, _) = cx.open("pub2").await?;
    publish(&mut p, ch, &cx.id("p"), serde_json::json!("after")).await?;
    let m = next_message(&mut s, ch).await?;
    check!(
        m.epoch == epoch && m.seq == seq + 1,
        "after a failed recovery the next message is ({:?}, {}), expected ({epoch:?}, {})",
        m.epoch,
        m.seq,
        seq + 1
    );
    Ok(())
}

async fn epoch_changed(cx: Ctx) -> CaseResult {
    let ch = cx.channel("resume-epoch");
    fill(&cx, &ch, 3).await?;
    failed_resume(
        &cx,
        &ch,
        ("conformance-unknown-epoch", 1),
        RecoveryReason::EpochChanged,
    )
    .await
}

async fn position_ahead(cx: Ctx) -> CaseResult {
    let ch = cx.channel("resume-ahead");
    let (epoch, last) = fill(&cx, &ch, 2).await?;
    failed_resume(&cx, &ch, (&epoch, last + 10), RecoveryReason::PositionAhead).await
}

async fn history_limit(cx: Ctx) -> CaseResult {
    let (probe, w) = cx.open("probe").await?;
    probe.close(1000).await;
    let size = w.limits.as_ref().map(|l| l.history_size).unwrap_or(0) as usize;
    let ch = cx.channel("resume-hist");
    if size == 0 {
        let (epoch, _) = fill(&cx, &ch, 2).await?;
        return failed_resume(&cx, &ch, (&epoch, 0), RecoveryReason::NoHistory).await;
    }
    if size > 1000 {
        return Err(CaseError::Skipped(format!(
            "history_size {size} is too large to exhaust quickly"
        )));
    }
    let total = size + 3;
    let (epoch, last) = fill(&cx, &ch, total).await?;
    // Within history: the oldest kept message is last - size + 1. A server
    // that numbered fewer messages than were published leaves no such
    // position: say so rather than compute one that underflows.
    let Some(from) = last.checked_sub(size as u64 + 1).map(|f| f + 1) else {
        return Err(fail(format!(
            "the server's numbering made this case impossible: {total} publishes to a new channel were acked up to seq {last} (expected {total}, SEQ-INCREMENT), so no resume position lies one message beyond history_size={size}"
        )));
    };
    let (mut s, _) = cx.open("sub-in").await?;
    let ack = subscribe(&mut s, &cx, &ch, Some((&epoch, from))).await?;
    let (status, reason, replayed) = recovery(&ack);
    check!(status == RecoveryStatus::Recovered, "resume missing exactly history_size={size} messages: status {status:?} reason {reason:?}, expected RECOVERED");
    check!(
        replayed == size as u64,
        "replayed {replayed}, expected {size}"
    );
    expect_seqs(
        &mut s,
        &ch,
        &epoch,
        (from + 1, last),
        &format!("a RECOVERED resume from seq {from} with history_size={size}"),
        "LIMIT-HISTORY, RESUME-EXACT-RANGE",
    )
    .await?;
    // Beyond history: one message more than history holds.
    failed_resume(&cx, &ch, (&epoch, from - 1), RecoveryReason::HistoryExpired).await
}

async fn after_restart(cx: Ctx) -> CaseResult {
    let ch = cx.channel("restart");
    let (epoch, last) = fill(&cx, &ch, 3).await?;
    cx.restart().await?;
    let (mut s, _) = cx.open("after").await?;
    let ack = subscribe(&mut s, &cx, &ch, Some((&epoch, 1))).await?;
    let (e, seq) = position(&ack)?;
    let (status, reason, _) = recovery(&ack);
    if e == epoch {
        check!(seq == last, "same epoch after restart but position {seq}, was {last}: numbering state was lost without a new epoch");
        check!(
            status == RecoveryStatus::Recovered,
            "same epoch after restart but resume {status:?} {reason:?}"
        );
        expect_seqs(
            &mut s,
            &ch,
            &epoch,
            (2, 3),
            "a resume from seq 1 after a restart that kept the epoch",
            "SEQ-EPOCH-STABLE",
        )
        .await?;
    } else {
        check!(status == RecoveryStatus::Failed && reason == RecoveryReason::EpochChanged, "new epoch after restart but resume answered {status:?} {reason:?}, expected FAILED EPOCH_CHANGED");
        check!(
            seq == 0,
            "new epoch {e:?} after restart starts at seq {seq}, expected 0"
        );
    }
    Ok(())
}

/// Longest history TTL the case waits out (before time scaling).
const MAX_TIMED_TTL_MS: u64 = 10_000;

async fn history_ttl(cx: Ctx) -> CaseResult {
    let (probe, w) = cx.open("probe").await?;
    probe.close(1000).await;
    let l = w.limits.unwrap_or_default();
    if l.history_size == 0 {
        return Err(CaseError::Skipped(
            "history_size is 0: the server keeps no history".into(),
        ));
    }
    let ttl = l.history_ttl_ms;
    if ttl == 0 || ttl as f64 > MAX_TIMED_TTL_MS as f64 * cx.target().time_scale {
        return Err(CaseError::Skipped(format!(
            "history_ttl_ms {ttl} is too long to wait out quickly; run the server with a test TTL (≤ {MAX_TIMED_TTL_MS} ms) or pass --time-scale"
        )));
    }
    let ch = cx.channel("resume-ttl");
    let (epoch, old) = fill(&cx, &ch, 2).await?;
    cx.note(format!(
        "waiting history_ttl_ms = {ttl} ms (and a margin) for seqs 1..={old} to expire"
    ));
    tokio::time::sleep(std::time::Duration::from_millis(ttl) + cx.ms(300)).await;
    let (_, last) = fill(&cx, &ch, 1).await?;
    // The young message is still replayed.
    let (mut s, _) = cx.open("sub-young").await?;
    let ack = subscribe(&mut s, &cx, &ch, Some((&epoch, old))).await?;
    let (status, reason, replayed) = recovery(&ack);
    check!(
        status == RecoveryStatus::Recovered && replayed == last - old,
        "resume from seq {old} missing only seq {last}, published just now: status {status:?} reason {reason:?} replayed {replayed}, expected RECOVERED with {} (LIMIT-HISTORY)",
        last - old
    );
    expect_seqs(
        &mut s,
        &ch,
        &epoch,
        (old + 1, last),
        &format!("a RECOVERED resume from seq {old}"),
        "RESUME-EXACT-RANGE",
    )
    .await?;
    // The old ones are gone: a resume that misses them fails, whole.
    failed_resume(&cx, &ch, (&epoch, 0), RecoveryReason::HistoryExpired)
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "seqs 1..={old} were published over history_ttl_ms = {ttl} ms ago (LIMIT-HISTORY: kept only while younger than the TTL): {m}"
            )),
            o => o,
        })
}

async fn empty_position(cx: Ctx) -> CaseResult {
    let ch = cx.channel("resume-empty");
    fill(&cx, &ch, 1).await?;
    let (mut s, _) = cx.open("sub").await?;
    // Present and empty: `"resume":{}`, an empty map, a zero-length field.
    let id = cx.id("sub");
    s.send_body(Body::Subscribe(v2::Subscribe {
        id: id.clone(),
        channel: ch.clone(),
        resume: Some(v2::StreamPosition::default()),
    }))
    .await?;
    let ack = super::util::reply(&mut s, &id, "subscribe_ack", |b| match b {
        Body::SubscribeAck(a) if a.id == id => Some(a.clone()),
        _ => None,
    })
    .await?
    .map_err(|e| {
        fail(format!(
            "subscribe with an empty resume failed: {}",
            e.message
        ))
    })?;
    let (status, reason, _) = recovery(&ack);
    check!(
        status == RecoveryStatus::Failed && reason == RecoveryReason::EpochChanged,
        "subscribe with a present but empty resume (epoch \"\", seq 0): recovery {status:?} {reason:?}, expected FAILED EPOCH_CHANGED (RESUME-PRESENT)"
    );
    // Null in JSON and MessagePack: no resume at all.
    let raw = match cx.sp().encoding {
        Encoding::Json => Some((
            format!(r#"{{"type":"subscribe","id":"s-null","channel":"{ch}","resume":null}}"#)
                .into_bytes(),
            true,
        )),
        Encoding::MsgPack => {
            let mut v = super::close::mp_typed("subscribe", 3);
            v.extend([0xa2, b'i', b'd', 0xa6]);
            v.extend(b"s-null");
            v.push(0xa7);
            v.extend(b"channel");
            v.push(0xd9);
            v.push(ch.len() as u8);
            v.extend(ch.as_bytes());
            v.push(0xa6);
            v.extend(b"resume");
            v.push(0xc0);
            Some((v, false))
        }
        Encoding::Protobuf => None,
    };
    if let Some((bytes, text)) = raw {
        s.send_raw(bytes, text).await?;
        let ack = super::util::reply(&mut s, "s-null", "subscribe_ack", |b| match b {
            Body::SubscribeAck(a) if a.id == "s-null" => Some(a.clone()),
            _ => None,
        })
        .await?
        .map_err(|e| fail(format!("subscribe with resume null failed: {}", e.message)))?;
        let (status, _, _) = recovery(&ack);
        check!(
            status == RecoveryStatus::NotRequested,
            "subscribe with \"resume\": null: recovery {status:?}, expected NOT_REQUESTED (RESUME-PRESENT: null reads as absent)"
        );
    }
    Ok(())
}
