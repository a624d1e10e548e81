//! Heartbeats: server pings at the advertised interval, the deadline close
//! (4200), answers to client pings, and any frame counting as liveness
//! (session.md §7). Waits derive from the session's own `welcome`.

use std::time::{Duration, Instant};

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2};

use super::util::check_close;
use super::BASE;
use crate::case::Axes;
use crate::case::{CaseDef, CaseError, CaseResult, Ctx};
use crate::check;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "hb.server-ping",
        title: "The server pings every heartbeat_interval_ms (within tolerance) with its clock in ts",
        requirements: &["HB-SERVER-PING"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(server_ping(cx)),
        ..BASE
    },
    CaseDef {
        id: "hb.deadline",
        title: "A silent client is closed with 4200 after interval + grace, not before",
        requirements: &["HB-DEADLINE", "CLOSE-DISCONNECT-NOTICE", "CLOSE-REASON-REQUIRED"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(deadline(cx)),
        ..BASE
    },
    CaseDef {
        id: "hb.client-ping",
        title: "A client ping is answered with a pong echoing its ts",
        requirements: &["HB-CLIENT-PING-ANSWERED", "HB-PONG"],
        axes: Axes::Each,
        run: |cx| Box::pin(client_ping(cx)),
        ..BASE
    },
    CaseDef {
        id: "hb.any-frame",
        title: "A client that never pongs but sends other frames (control pings, envelopes) stays connected",
        requirements: &["HB-ANY-FRAME"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(any_frame(cx)),
        ..BASE
    },
];

/// Longest heartbeat interval the timed cases wait for (before scaling).
const MAX_TIMED_INTERVAL_MS: u64 = 5000;

fn timing(cx: &Ctx, w: &v2::Welcome) -> Result<(u64, u64), CaseError> {
    let (i, g) = (w.heartbeat_interval_ms, w.heartbeat_grace_ms);
    if i as f64 > MAX_TIMED_INTERVAL_MS as f64 * cx.target().time_scale {
        return Err(CaseError::Skipped(format!(
            "heartbeat_interval_ms {i} is too long to observe quickly; run the server with a test interval (≤ {MAX_TIMED_INTERVAL_MS} ms) or pass --time-scale"
        )));
    }
    Ok((i, g))
}

async fn server_ping(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let (i, _) = timing(&cx, &w)?;
    let opened = Instant::now();
    let interval = Duration::from_millis(i);
    // Traffic flows meanwhile: pings are due "whether or not other traffic flows".
    let wait = interval * 3 + cx.ms(400);
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline && c.pings().len() < 3 {
        c.send_body(Body::Ping(v2::Ping { ts: 1 })).await?;
        c.expect_open_for(interval / 4).await?;
    }
    let pings = c.pings();
    let times: Vec<Instant> = pings.iter().map(|p| p.0).collect();
    check!(
        times.len() >= 3,
        "{} server ping(s) in {wait:?} with heartbeat_interval_ms {i}",
        times.len()
    );
    let lo = interval.mul_f64(0.7).saturating_sub(cx.ms(50));
    let hi = interval.mul_f64(1.3) + cx.ms(250);
    check!(
        times[0] - opened <= hi,
        "first ping came {:?} after welcome, interval is {i} ms",
        times[0] - opened
    );
    for w in times.windows(2) {
        let gap = w[1] - w[0];
        check!(
            gap >= lo && gap <= hi,
            "pings {gap:?} apart, advertised interval {i} ms (tolerance {lo:?}..{hi:?})"
        );
    }
    for (_, ts) in &pings {
        check!(
            *ts > 1_500_000_000_000,
            "ping ts {ts} is not a clock in ms since the Unix epoch"
        );
    }
    Ok(())
}

async fn deadline(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let (i, g) = timing(&cx, &w)?;
    c.set_auto_pong(false);
    let started = Instant::now();
    let limit = Duration::from_millis(i + g);
    let closed = c.expect_close(limit.mul_f64(1.3) + cx.ms(1000)).await?;
    let took = started.elapsed();
    check_close(&closed, close::HEARTBEAT_TIMEOUT, true)?;
    check!(
        took + cx.ms(100) >= limit.mul_f64(0.9),
        "closed for silence after {took:?}, before interval + grace = {limit:?}"
    );
    Ok(())
}

async fn client_ping(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    for ts in [1u64, 1_700_000_000_123, 9_007_199_254_740_991] {
        c.send_body(Body::Ping(v2::Ping { ts })).await?;
        let got = c.take("pong", |e| match &e.body {
            Some(Body::Pong(p)) => Some(p.ts),
            _ => None,
        });
        let got = got.await?;
        check!(got == ts, "ping ts {ts} answered with pong ts {got}");
    }
    Ok(())
}

async fn any_frame(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let (i, g) = timing(&cx, &w)?;
    c.set_auto_pong(false);
    let total = Duration::from_millis(i + g).mul_f64(2.0);
    let every = Duration::from_millis(i.max(3) / 3);
    let end = Instant::now() + total;
    let mut n = 0u64;
    while Instant::now() < end {
        // Alternate a WebSocket control ping and an envelope that is not a pong.
        if n.is_multiple_of(2) {
            c.send_control_ping().await?;
        } else {
            c.send_body(Body::Unsubscribe(v2::Unsubscribe {
                id: format!("u{n}"),
                channel: cx.channel("none"),
            }))
            .await?;
        }
        n += 1;
        c.expect_open_for(every).await.map_err(|e| match e {
            CaseError::Fail(m) => crate::case::fail(format!(
                "closed although frames kept arriving every {every:?}: {m}"
            )),
            other => other,
        })?;
    }
    Ok(())
}
