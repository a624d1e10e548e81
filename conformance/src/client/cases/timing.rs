//! Reconnect timing (close-codes.md §3–4): the delay after each close-code
//! range, full jitter checked statistically, the cap, the attempt limit,
//! the reset after a stable session, `retry_after_ms`, and new credentials
//! after 4300–4399. Delays are measured on the server side, from the close
//! (or the dropped link) to the next TCP connection.

use std::time::{Duration, Instant};

use courier_protocol::v2;
use serde_json::json;

use super::seq::subscribed;
use super::session::no_reconnect;
use super::BASE;
use crate::case::{fail, Axes, CaseError};
use crate::check;
use crate::client::server::{Peer, ScriptServer};
use crate::client::{
    expect_subscribe, handshake, recovery, subscribe_ack, ClientCaseDef, ClientCtx, Welcome, TOKENS,
};

pub(crate) const CASES: &[ClientCaseDef] = &[
    ClientCaseDef {
        id: "client.close.backoff",
        title: "After 4100-4199 closes the client waits a jittered backoff within base x 2^n, then resumes",
        requirements: &["CLOSE-BACKOFF", "CLOSE-RANGES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(backoff(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.reconnect-now",
        title: "After 1001 and 4200-4299 the client reconnects after a delay uniform in the reconnect window, then resumes",
        requirements: &["CLOSE-RECONNECT-NOW", "CLOSE-RANGES"],
        axes: Axes::Once,
        run: |cx| Box::pin(reconnect_now(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.other-codes",
        title: "Any other code, and a link lost without a close frame, is followed by a backoff and a reconnect",
        requirements: &["CLOSE-RANGES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(other_codes(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.refresh",
        title: "After 4300-4399 the client gets new credentials before reconnecting; with none it stops",
        requirements: &["CLOSE-REFRESH", "CLOSE-RANGES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(refresh(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.close.retry-after",
        title: "A version 2 disconnect's retry_after_ms replaces the computed delay",
        requirements: &["CLOSE-RETRY-AFTER"],
        axes: Axes::PerVersion,
        versions: &[2],
        run: |cx| Box::pin(retry_after(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.backoff.jitter",
        title: "Failed attempts are spaced uniformly in [0, min(cap, base x 2^n)] (full jitter, checked statistically)",
        requirements: &["CLIENT-BACKOFF-JITTER"],
        axes: Axes::Once,
        run: |cx| Box::pin(jitter(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.backoff.reset",
        title: "The attempt count resets only after a session stayed open for heartbeat_interval_ms",
        requirements: &["CLIENT-BACKOFF-JITTER"],
        axes: Axes::Once,
        run: |cx| Box::pin(reset(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.backoff.short-session",
        title: "A session closed before heartbeat_interval_ms is a failed attempt: after repeated 1001/4200-4299 closes of short sessions the delays grow to the backoff schedule",
        requirements: &["CLIENT-BACKOFF-SHORT-SESSION", "CLOSE-RECONNECT-NOW"],
        axes: Axes::Once,
        run: |cx| Box::pin(short_session(cx)),
        ..BASE
    },
    ClientCaseDef {
        id: "client.backoff.max-attempts",
        title: "After the configured number of failed attempts the client stops with a terminal error",
        requirements: &["CLIENT-BACKOFF-JITTER"],
        axes: Axes::Once,
        run: |cx| Box::pin(max_attempts(cx)),
        ..BASE
    },
];

/// Scheduling slack added to every upper bound (before scaling).
const SLACK_MS: u64 = 60;

/// Kolmogorov-Smirnov distance of `u` (values in [0, 1]) from uniform.
fn ks_uniform(u: &[f64]) -> f64 {
    let mut v: Vec<f64> = u.iter().map(|x| x.clamp(0.0, 1.0)).collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len() as f64;
    v.iter()
        .enumerate()
        .map(|(i, x)| {
            let lo = x - i as f64 / n;
            let hi = (i as f64 + 1.0) / n - x;
            lo.max(hi)
        })
        .fold(0.0, f64::max)
}

/// The KS critical value at significance 0.001 (a correct client fails one
/// run in a thousand at most).
fn ks_critical(n: usize) -> f64 {
    1.95 / (n as f64).sqrt()
}

/// Accepts the reconnect, opens the session and resumes `room` at `seq`;
/// returns the peer and the delay since `since`.
async fn reopen(
    server: &mut ScriptServer,
    since: Instant,
    within: Duration,
    seq: u64,
    after: &str,
) -> Result<(Peer, Duration), CaseError> {
    reopen_with(server, since, within, seq, after, &Welcome::default()).await
}

/// [`reopen`] with a given `welcome`.
async fn reopen_with(
    server: &mut ScriptServer,
    since: Instant,
    within: Duration,
    seq: u64,
    after: &str,
    w: &Welcome,
) -> Result<(Peer, Duration), CaseError> {
    let mut peer = server.accept_within(within).await?.ok_or_else(|| {
        fail(format!(
            "the client did not reconnect within {within:?} after {after}"
        ))
    })?;
    let delay = peer.accepted_at.saturating_duration_since(since);
    handshake(&mut peer, w).await?;
    let sub = expect_subscribe(&mut peer, "room").await?;
    check!(
        sub.resume.as_ref().map(|p| p.seq) == Some(seq),
        "after {after} the client resubscribed with resume {:?}; expected seq {seq}",
        sub.resume
    );
    let rec = recovery(
        v2::RecoveryStatus::Recovered,
        v2::RecoveryReason::Unspecified,
        0,
    );
    peer.send(subscribe_ack(&sub, "e1", seq, rec)).await?;
    Ok((peer, delay))
}

async fn backoff(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    let (base, cap) = (cx.scaled(100), cx.scaled(800));
    let mut delays = Vec::new();
    for (n, code) in [4100u16, 4101, 4102, 4199].into_iter().enumerate() {
        let ceiling = cap.min(base << n);
        s.peer.close(code, "conformance: back off").await;
        let since = Instant::now();
        let after = format!("a close with {code}");
        let (peer, delay) = reopen(&mut s.server, since, cx.ms(ceiling + 1000), 0, &after).await?;
        s.peer = peer;
        check!(
            delay <= Duration::from_millis(ceiling) + cx.ms(SLACK_MS),
            "after {after} (attempt {n}) the client reconnected after {delay:?}; the backoff ceiling is min(cap, base x 2^{n}) = {ceiling} ms"
        );
        delays.push(delay.as_millis() as u64);
    }
    cx.note(format!(
        "delays after 4100, 4101, 4102, 4199: {delays:?} ms"
    ));
    Ok(())
}

async fn reconnect_now(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let window = cx.scaled(400);
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["reconnect_now_max_ms"] = json!(window);
    // Every session stays open for heartbeat_interval_ms, so none is a
    // failed attempt (CLIENT-BACKOFF-SHORT-SESSION): each close must be
    // followed by a reconnect within the window.
    let interval = cx.scaled(100);
    let w = Welcome {
        heartbeat_interval_ms: interval,
        heartbeat_grace_ms: cx.scaled(10_000),
        ..Welcome::default()
    };
    let (peer, hello) = cx.open(&mut server, &mut driver, cmd, w.clone()).await?;
    let mut s = crate::client::Session {
        server,
        driver,
        peer,
        hello,
    };
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    let codes = [
        4200u16, 1001, 4201, 4299, 4200, 1001, 4201, 4250, 4200, 1001, 4201, 4299,
    ];
    let mut u = Vec::new();
    for code in codes {
        tokio::time::sleep(Duration::from_millis(interval) + cx.ms(60)).await;
        s.peer
            .disconnect(code, "conformance: reconnect", None)
            .await;
        let since = Instant::now();
        let after = format!("a close with {code}");
        let (peer, delay) =
            reopen_with(&mut s.server, since, cx.ms(window + 1000), 0, &after, &w).await?;
        s.peer = peer;
        check!(
            delay <= Duration::from_millis(window) + cx.ms(SLACK_MS),
            "after {after} the client waited {delay:?}; the reconnect window is {window} ms"
        );
        u.push(delay.as_secs_f64() * 1000.0 / window as f64);
    }
    let d = ks_uniform(&u);
    cx.note(format!(
        "delays / window: {u:.2?}; KS distance from uniform {d:.2}"
    ));
    let uniform = d <= ks_critical(u.len());
    check!(
        uniform,
        "the reconnect delays are not spread uniformly over the window: KS distance {d:.2} > {:.2} (delays / window {u:.2?})",
        ks_critical(u.len())
    );
    Ok(())
}

async fn other_codes(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    let cap = cx.scaled(800);
    // 1014 (Bad Gateway) was registered after RFC 6455; WebSocket stacks
    // that predate it report a protocol error (1002, terminal) instead.
    for code in [
        Some(1011u16),
        Some(1012),
        Some(1013),
        Some(1014),
        Some(3000),
        Some(4400),
        Some(4999),
        None,
    ] {
        let after = match code {
            Some(c) => {
                s.peer.close(c, "conformance: other").await;
                format!("a close with {c}")
            }
            None => {
                s.peer.drop_link().await;
                "a link lost without a close frame".to_string()
            }
        };
        let since = Instant::now();
        let (peer, delay) = reopen(&mut s.server, since, cx.ms(cap + 1000), 0, &after).await?;
        s.peer = peer;
        check!(
            delay <= Duration::from_millis(cap) + cx.ms(SLACK_MS),
            "after {after} the client waited {delay:?}, over the backoff cap of {cap} ms"
        );
    }
    Ok(())
}

async fn refresh(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    let before = s.driver.of_kind("token").len();
    s.peer.disconnect(4300, "token expired", None).await;
    let mut peer = s
        .server
        .accept_within(cx.ms(3000))
        .await?
        .ok_or_else(|| fail("the client did not reconnect after 4300"))?;
    let hello = handshake(&mut peer, &Welcome::default()).await?;
    check!(
        s.driver.of_kind("token").len() > before,
        "the client reconnected after 4300 without asking the application for credentials"
    );
    check!(
        hello.token == TOKENS[1],
        "after 4300 the client's hello carries {:?}; expected the new credentials {:?}",
        hello.token,
        TOKENS[1]
    );
    let sub = expect_subscribe(&mut peer, "room").await?;
    check!(
        sub.resume.is_some(),
        "after 4300 the client resubscribed without resume"
    );
    cx.note("a second client whose application has no new credentials");
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["tokens"] = json!([TOKENS[0], null]);
    let (mut peer, _) = cx
        .open(&mut server, &mut driver, cmd, Welcome::default())
        .await?;
    peer.disconnect(4301, "re-authentication timeout", None)
        .await;
    driver
        .wait("a terminal event (no credentials)", cx.step(), |e| {
            e.kind() == "terminal"
        })
        .await?;
    no_reconnect(
        &mut server,
        cx.ms(1200),
        "4301 with no credentials to be had",
    )
    .await
}

async fn retry_after(cx: ClientCtx) -> Result<(), CaseError> {
    let mut s = cx.session().await?;
    subscribed(&cx, &mut s, "room", "e1", 0).await?;
    for (code, retry) in [(4100u16, 900u64), (4200, 500), (1001, 700), (1011, 600)] {
        let retry = cx.scaled(retry);
        s.peer
            .disconnect(code, "conformance: retry later", Some(retry))
            .await;
        let since = Instant::now();
        let after = format!("disconnect {code} with retry_after_ms {retry}");
        let (peer, delay) = reopen(&mut s.server, since, cx.ms(retry + 2000), 0, &after).await?;
        s.peer = peer;
        let lo = Duration::from_millis(retry).saturating_sub(cx.ms(20));
        let hi = Duration::from_millis(retry) + cx.ms(SLACK_MS + 100);
        check!(
            delay >= lo && delay <= hi,
            "after {after} the client reconnected after {delay:?}; expected {retry} ms"
        );
    }
    Ok(())
}

/// Accepts TCP connections and drops them (failed attempts); returns the
/// spacing between consecutive attempts.
async fn failing_attempts(
    server: &mut ScriptServer,
    n: usize,
    within: Duration,
) -> Result<Vec<Duration>, CaseError> {
    let mut last = None;
    let mut gaps = Vec::new();
    while gaps.len() < n {
        let (tcp, at) = server.accept_tcp(within).await.ok_or_else(|| {
            fail(format!(
                "the client stopped trying after {} failed attempts",
                gaps.len() + 1
            ))
        })?;
        drop(tcp);
        if let Some(prev) = last {
            gaps.push(at.saturating_duration_since(prev));
        }
        last = Some(Instant::now());
    }
    Ok(gaps)
}

async fn jitter(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let (base, cap) = (cx.scaled(40), cx.scaled(320));
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["backoff_base_ms"] = json!(base);
    cmd["options"]["backoff_cap_ms"] = json!(cap);
    driver.send(cmd).await?;
    cx.note("every attempt fails: the TCP connection is closed before the upgrade");
    let gaps = failing_attempts(&mut server, 24, cx.ms(cap + 1500)).await?;
    let mut u = Vec::new();
    for (n, gap) in gaps.iter().enumerate() {
        let ceiling = cap.min(base.saturating_mul(1u64 << n.min(40)));
        check!(
            *gap <= Duration::from_millis(ceiling) + cx.ms(SLACK_MS),
            "attempt {} came {gap:?} after the previous one; the backoff ceiling is min(cap {cap}, base {base} x 2^{n}) = {ceiling} ms",
            n + 2
        );
        u.push(gap.as_secs_f64() * 1000.0 / ceiling as f64);
    }
    let d = ks_uniform(&u);
    cx.note(format!(
        "delays / ceiling: {u:.2?}; KS distance from uniform {d:.2}"
    ));
    let uniform = d <= ks_critical(u.len());
    check!(
        uniform,
        "the backoff delays are not uniform in [0, ceiling] (full jitter): KS distance {d:.2} > {:.2}; delays / ceiling {u:.2?}",
        ks_critical(u.len())
    );
    Ok(())
}

async fn reset(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let (base, cap) = (cx.scaled(40), cx.scaled(640));
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["backoff_base_ms"] = json!(base);
    cmd["options"]["backoff_cap_ms"] = json!(cap);
    let interval = cx.scaled(300);
    let w = Welcome {
        heartbeat_interval_ms: interval,
        heartbeat_grace_ms: cx.scaled(10_000),
        ..Welcome::default()
    };
    let (mut peer, _) = cx.open(&mut server, &mut driver, cmd, w.clone()).await?;
    cx.note("sessions shorter than heartbeat_interval_ms: the count keeps growing");
    let mut short = Vec::new();
    for _ in 0..8 {
        peer.drop_link().await;
        let since = Instant::now();
        peer = server
            .accept_within(cx.ms(cap + 1500))
            .await?
            .ok_or_else(|| fail("the client did not reconnect"))?;
        short.push(peer.accepted_at.saturating_duration_since(since));
        handshake(&mut peer, &w).await?;
    }
    let longest = short.iter().max().copied().unwrap_or_default();
    check!(
        longest > Duration::from_millis(base) + cx.ms(20),
        "after 8 sessions each shorter than heartbeat_interval_ms the delays {short:?} never exceeded the base {base} ms: the attempt count was reset too early"
    );
    cx.note("sessions that stay open for heartbeat_interval_ms: the count resets");
    let mut long = Vec::new();
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(interval) + cx.ms(150)).await;
        peer.drop_link().await;
        let since = Instant::now();
        peer = server
            .accept_within(cx.ms(cap + 1500))
            .await?
            .ok_or_else(|| fail("the client did not reconnect"))?;
        long.push(peer.accepted_at.saturating_duration_since(since));
        handshake(&mut peer, &w).await?;
    }
    check!(
        long.iter().all(|d| *d <= Duration::from_millis(base) + cx.ms(SLACK_MS)),
        "after sessions open longer than heartbeat_interval_ms the delays were {long:?}; the count must reset, so each is at most base {base} ms"
    );
    Ok(())
}

async fn short_session(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let (base, cap, now_max) = (cx.scaled(100), cx.scaled(800), cx.scaled(100));
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["backoff_base_ms"] = json!(base);
    cmd["options"]["backoff_cap_ms"] = json!(cap);
    cmd["options"]["reconnect_now_max_ms"] = json!(now_max);
    // No session lives long enough to count as stable.
    let w = Welcome {
        heartbeat_interval_ms: cx.scaled(60_000),
        ..Welcome::default()
    };
    let (mut peer, _) = cx.open(&mut server, &mut driver, cmd, w.clone()).await?;
    cx.note("every session is closed right after its welcome with a reconnect-now code");
    let mut delays = Vec::new();
    for (n, code) in [4201u16, 1001, 4200, 4299, 4201, 1001, 4200]
        .into_iter()
        .enumerate()
    {
        peer.close(code, "conformance: reconnect").await;
        let since = Instant::now();
        // The first close follows the first session: the reconnect-now
        // window; every later one follows a failed attempt: the backoff.
        let ceiling = if n == 0 { now_max } else { cap.min(base << n) };
        peer = server
            .accept_within(cx.ms(ceiling + 1000))
            .await?
            .ok_or_else(|| fail(format!("the client did not reconnect after {code}")))?;
        let delay = peer.accepted_at.saturating_duration_since(since);
        check!(
            delay <= Duration::from_millis(ceiling) + cx.ms(SLACK_MS),
            "after a close with {code} ending a short session (attempt {n}) the client waited {delay:?}; the ceiling is {ceiling} ms"
        );
        delays.push(delay);
        handshake(&mut peer, &w).await?;
    }
    cx.note(format!("delays: {delays:?}"));
    // A client that counts a welcome as success reconnects within the
    // reconnect-now window every time: a storm against a node that accepts
    // and closes. A correct one stays under now_max + slack every time
    // with probability below 0.001.
    let longest = delays.iter().max().copied().unwrap_or_default();
    check!(
        longest > Duration::from_millis(now_max) + cx.ms(SLACK_MS),
        "after 7 sessions closed before heartbeat_interval_ms the delays {delays:?} all stayed within the reconnect-now window of {now_max} ms: short sessions must count as failed attempts (CLIENT-BACKOFF-SHORT-SESSION)"
    );
    Ok(())
}

async fn max_attempts(cx: ClientCtx) -> Result<(), CaseError> {
    let mut server = cx.server().await?;
    let mut driver = cx.driver().await?;
    let mut cmd = cx.connect_cmd(&server);
    cmd["options"]["backoff_base_ms"] = json!(cx.scaled(20));
    cmd["options"]["backoff_cap_ms"] = json!(cx.scaled(80));
    cmd["options"]["max_attempts"] = json!(3);
    driver.send(cmd).await?;
    let mut attempts = 0;
    while let Some((tcp, _)) = server.accept_tcp(cx.ms(800)).await {
        drop(tcp);
        attempts += 1;
        if attempts > 10 {
            break;
        }
    }
    check!(
        (3..=4).contains(&attempts),
        "with max_attempts 3 the client made {attempts} connection attempts; expected 3 or 4 (the first and three retries)"
    );
    driver
        .wait("a terminal event", cx.step(), |e| e.kind() == "terminal")
        .await?;
    Ok(())
}
