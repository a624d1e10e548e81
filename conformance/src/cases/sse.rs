//! The Server-Sent Events transport (sse.md): the stream's events and ids,
//! authentication, version selection, resume by `Last-Event-ID` and
//! `since`, `POST /publish`, heartbeats and the closing `disconnect`.

use std::time::{Duration, Instant};

use courier_protocol::close;

use super::util::{expect_no_message, publish, subscribe};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;
use crate::profile::TokenKind;
use crate::sse::{post_json, SseEvent, SseStream};

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "sse.stream",
        title: "GET /sse streams welcome, then one subscribe_ack per channel in order, then messages with id channel:epoch:seq",
        requirements: &["SSE-STREAM", "SSE-CHANNELS", "SSE-EVENT-ID", "SSE-AUTH"],
        axes: Axes::PerVersion,
        needs: &["sse"],
        run: |cx| Box::pin(stream(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.auth",
        title: "Invalid or expired bearer credentials end the stream after disconnect 4004 or 4300",
        requirements: &["SSE-AUTH", "SSE-END"],
        axes: Axes::Once,
        needs: &["sse"],
        run: |cx| Box::pin(auth(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.version",
        title: "An unsupported ?v= gets disconnect 4002 listing the supported subprotocols, and 400 UNSUPPORTED on publish",
        requirements: &["VER-SSE"],
        axes: Axes::Once,
        needs: &["sse"],
        run: |cx| Box::pin(version(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.resume",
        title: "Last-Event-ID and since= resume with the WebSocket recovery rules; since wins",
        requirements: &["SSE-RESUME"],
        axes: Axes::Once,
        needs: &["sse"],
        run: |cx| Box::pin(resume(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.publish",
        title: "POST /publish acks, deduplicates and refuses with the documented statuses",
        requirements: &["SSE-PUBLISH"],
        axes: Axes::Once,
        needs: &["sse"],
        run: |cx| Box::pin(sse_publish(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.heartbeat",
        title: "The stream carries a ping event every heartbeat_interval_ms",
        requirements: &["SSE-HEARTBEAT"],
        axes: Axes::Once,
        needs: &["sse"],
        run: |cx| Box::pin(heartbeat(cx)),
        ..BASE
    },
    CaseDef {
        id: "sse.shutdown",
        title: "A graceful shutdown ends the stream after a disconnect event with 1001",
        requirements: &["SSE-END", "CLOSE-SHUTDOWN"],
        axes: Axes::Once,
        needs: &["sse", "restart"],
        exclusive: true,
        run: |cx| Box::pin(shutdown(cx)),
        ..BASE
    },
];

fn publish_url(cx: &Ctx, query: &str) -> String {
    let sse = cx.sse_url("POST /publish");
    let base = sse.strip_suffix("/sse").unwrap_or(&sse);
    format!("{base}/publish{query}")
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn open(
    cx: &Ctx,
    query: &str,
    token: &str,
    extra: &[(&str, String)],
) -> Result<SseStream, CaseError> {
    let mut headers = vec![("Authorization", format!("Bearer {token}"))];
    headers.extend(extra.iter().cloned());
    SseStream::open(
        &format!("{}{query}", cx.sse_url("GET /sse")),
        &headers,
        cx.transcript().clone(),
    )
    .await
}

fn check_disconnect(e: &SseEvent, code: u16) -> CaseResult {
    let v = e.json()?;
    check!(
        v["type"] == "disconnect" && v["code"] == code,
        "expected a disconnect with code {code}, got {}",
        e.data
    );
    check!(
        v["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "disconnect {code} has no reason"
    );
    Ok(())
}

async fn stream(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let v = cx.sp().version.number();
    let (a, b) = (cx.channel("sse-a"), cx.channel("sse-b"));
    let mut s = open(
        &cx,
        &format!("?v={v}&channel={}&channel={}", enc(&a), enc(&b)),
        &token,
        &[],
    )
    .await?;
    check!(s.status == 200, "GET /sse answered {}", s.status);
    check!(
        s.header("content-type")
            .is_some_and(|c| c.starts_with("text/event-stream")),
        "Content-Type is {:?}",
        s.header("content-type")
    );
    let first = s
        .next(cx.step())
        .await?
        .ok_or_else(|| fail("stream ended before welcome"))?;
    check!(
        first.event == "welcome" && first.json()?["type"] == "welcome",
        "first event is {:?}, not welcome",
        first.event
    );
    check!(
        first.json()?["version"] == v,
        "welcome.version is {}, asked ?v={v}",
        first.json()?["version"]
    );
    let mut acks = Vec::new();
    while acks.len() < 2 {
        let e = s
            .next(cx.step())
            .await?
            .ok_or_else(|| fail("stream ended before the subscribe_acks"))?;
        check!(
            e.id.is_none() || e.event == "message",
            "a `{}` event carries an id: field",
            e.event
        );
        if e.event == "subscribe_ack" {
            let j = e.json()?;
            check!(
                j["id"].as_str().unwrap_or("").is_empty(),
                "an SSE subscribe_ack carries id {}",
                j["id"]
            );
            acks.push(j["channel"].as_str().unwrap_or("").to_string());
        }
    }
    check!(
        acks == vec![a.clone(), b.clone()],
        "subscribe_acks for {acks:?}, expected [{a}, {b}] in query order"
    );
    let (mut p, _) = cx.open("pub").await?;
    let ack = publish(&mut p, &b, &cx.id("p"), serde_json::json!({"via": "sse"})).await?;
    let (m, skipped) = s.until("message", cx.step()).await?;
    for e in skipped {
        check!(e.id.is_none(), "a `{}` event carries an id: field", e.event);
    }
    let want = format!("{b}:{}:{}", ack.epoch, ack.seq);
    check!(
        m.id.as_deref() == Some(want.as_str()),
        "message event id {:?}, expected {want}",
        m.id
    );
    check!(!m.data.contains('\n'), "message data spans several lines");
    forbidden_channel(&cx).await
}

/// SSE-CHANNELS: a channel the credentials may not use is answered with an
/// `error` event exactly as a WebSocket `subscribe` is (FORBIDDEN, the
/// channel, empty id), and the stream goes on with the next channel.
async fn forbidden_channel(cx: &Ctx) -> CaseResult {
    let (Some(forbidden), Ok(scoped)) = (
        cx.profile().channels.forbidden.clone(),
        cx.token(TokenKind::WrongScope).await,
    ) else {
        return Ok(());
    };
    let open_ch = cx.channel("sse-after-forbidden");
    let query = format!("?channel={}&channel={}", enc(&forbidden), enc(&open_ch));
    let mut s = open(cx, &query, &scoped, &[]).await?;
    let mut seen: Vec<(String, serde_json::Value)> = Vec::new();
    while !seen.iter().any(|(e, _)| e == "subscribe_ack") {
        let Some(e) = s.next(cx.step()).await? else {
            break;
        };
        if e.event == "error" || e.event == "subscribe_ack" {
            seen.push((e.event.clone(), e.json()?));
        }
    }
    let err = seen.iter().find(|(e, _)| e == "error").map(|(_, j)| j);
    check!(
        err.is_some_and(|j| j["code"] == "ERROR_CODE_FORBIDDEN"
            && j["channel"] == forbidden.as_str()
            && j["id"].as_str().unwrap_or("").is_empty()),
        "?channel={forbidden} with credentials that may not subscribe to it: expected an error event FORBIDDEN naming the channel before the next channel's subscribe_ack (SSE-CHANNELS: exactly as for a WebSocket subscribe); events seen: {seen:?}"
    );
    check!(
        seen.iter().any(|(e, j)| e == "subscribe_ack" && j["channel"] == open_ch.as_str()),
        "after the forbidden channel the stream did not subscribe to {open_ch} (SSE-CHANNELS); events seen: {seen:?}"
    );
    Ok(())
}

async fn end_with(cx: &Ctx, token: &str, code: u16) -> CaseResult {
    let mut s = open(
        cx,
        &format!("?channel={}", enc(&cx.channel("auth"))),
        token,
        &[],
    )
    .await?;
    let (d, skipped) = s.until("disconnect", cx.step()).await?;
    check!(
        !skipped.iter().any(|e| e.event == "welcome"),
        "credentials that must be refused got a welcome"
    );
    check_disconnect(&d, code)?;
    match s.next(cx.step()).await? {
        None => Ok(()),
        Some(e) => Err(fail(format!(
            "the stream went on after disconnect {code}: {}",
            e.event
        ))),
    }
}

async fn auth(cx: Ctx) -> CaseResult {
    end_with(
        &cx,
        &cx.token(TokenKind::Invalid).await?,
        close::AUTH_FAILED,
    )
    .await?;
    end_with(
        &cx,
        &cx.token(TokenKind::Expired).await?,
        close::TOKEN_EXPIRED,
    )
    .await
}

async fn version(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let mut s = open(&cx, "?v=9", &token, &[]).await?;
    let (d, _) = s.until("disconnect", cx.step()).await?;
    check_disconnect(&d, close::UNSUPPORTED_VERSION)?;
    let reason = d.json()?["reason"].as_str().unwrap_or("").to_string();
    let listed = courier_protocol::subprotocol::parse_mismatch_reason(&reason);
    check!(
        !listed.is_empty(),
        "4002 reason {reason:?} lists no subprotocols"
    );
    let body =
        serde_json::json!({"channel": cx.channel("v"), "id": cx.id("p"), "payload": 1}).to_string();
    let (status, reply) = post_json(
        &publish_url(&cx, "?v=9"),
        Some(&token),
        &body,
        cx.transcript(),
    )
    .await?;
    check!(
        status == 400 && reply["code"] == "ERROR_CODE_UNSUPPORTED",
        "POST /publish?v=9 answered {status} {reply}"
    );
    Ok(())
}

async fn resume(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let (a, b) = (cx.channel("sse-ra"), cx.channel("sse-rb"));
    let (mut p, _) = cx.open("pub").await?;
    let (mut epoch, mut eb) = (String::new(), String::new());
    for ch in [&a, &a, &a, &b, &b, &b] {
        let ack = publish(&mut p, ch, &cx.id("p"), serde_json::json!(1)).await?;
        if ch == &a {
            epoch = ack.epoch;
        } else {
            eb = ack.epoch;
        }
    }
    // Last-Event-ID resumes a from 1; since= resumes b from 1 and wins over a Last-Event-ID for b;
    // a since= for a channel absent from the channel parameters is ignored.
    let absent = cx.channel("sse-resume-absent");
    let query = format!(
        "?channel={}&channel={}&since={}&since={}",
        enc(&a),
        enc(&b),
        enc(&format!("{b}:{eb}:1")),
        enc(&format!("{absent}:{eb}:1"))
    );
    let mut s = open(
        &cx,
        &query,
        &token,
        &[("Last-Event-ID", format!("{a}:{epoch}:1"))],
    )
    .await?;
    let mut got: Vec<String> = Vec::new();
    let deadline = Instant::now() + cx.step();
    // After the four messages, a moment more: an answer for the absent
    // channel would come last.
    let mut settle: Option<Instant> = None;
    while Instant::now() < deadline && settle.is_none_or(|t| Instant::now() < t) {
        if got.len() == 4 && settle.is_none() {
            settle = Some(Instant::now() + cx.ms(300));
        }
        let e = match s.next(cx.step()).await {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(_) if got.len() == 4 => break,
            Err(e) => return Err(e),
        };
        if e.event == "subscribe_ack" || e.event == "error" {
            let j = e.json()?;
            check!(
                j["channel"] != absent.as_str(),
                "since={absent}:… named a channel absent from the channel parameters and the stream answered it with {} (SSE-RESUME: such positions are ignored)",
                e.event
            );
        }
        if e.event == "subscribe_ack" {
            let j = e.json()?;
            check!(
                j["recovery"]["status"] == "RECOVERY_STATUS_RECOVERED",
                "resume of {} not recovered: {}",
                j["channel"],
                e.data
            );
        }
        if e.event == "message" {
            got.push(e.id.unwrap_or_default());
        }
    }
    let want = vec![
        format!("{a}:{epoch}:2"),
        format!("{a}:{epoch}:3"),
        format!("{b}:{eb}:2"),
        format!("{b}:{eb}:3"),
    ];
    check!(got == want, "replayed {got:?}, expected {want:?}");
    Ok(())
}

async fn sse_publish(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let ch = cx.channel("sse-pub");
    let (mut s, w) = cx.open("sub").await?;
    subscribe(&mut s, &cx, &ch, None).await?;
    let max = w.limits.map(|l| l.max_message_bytes).unwrap_or(0) as usize;
    let url = publish_url(&cx, "?v=2");
    let id = cx.id("p");
    let body = serde_json::json!({"channel": ch, "id": id, "payload": {"n": 1}}).to_string();
    let (st, r) = post_json(&url, Some(&token), &body, cx.transcript()).await?;
    check!(
        st == 200 && r["type"] == "publish_ack" && r["seq"] == 1,
        "POST /publish answered {st} {r}"
    );
    let (st, r) = post_json(&url, Some(&token), &body, cx.transcript()).await?;
    check!(
        st == 200 && r["duplicate"] == true && r["seq"] == 1,
        "a repeated POST answered {st} {r}, expected the original seq with duplicate: true"
    );
    let m = super::util::next_message(&mut s, &ch).await?;
    check!(
        m.seq == 1 && m.id == id,
        "subscriber got seq {} id {:?}",
        m.seq,
        m.id
    );
    let (st, r) = post_json(&url, Some(&token), "{not json", cx.transcript()).await?;
    check!(
        st == 400 && r["code"] == "ERROR_CODE_BAD_REQUEST",
        "a malformed body answered {st} {r}"
    );
    // SSE-PUBLISH: 413 for a body over max_message_bytes, nothing numbered.
    if max > 0 && max <= 4 << 20 {
        let filler = "x".repeat(max);
        let big =
            serde_json::json!({"channel": ch, "id": cx.id("big"), "payload": filler}).to_string();
        let (st, r) = post_json(&url, Some(&token), &big, cx.transcript()).await?;
        check!(
            st == 413 && r["code"] == "ERROR_CODE_BAD_REQUEST",
            "a {}-byte body (max_message_bytes {max}) answered {st} {}, expected 413 ERROR_CODE_BAD_REQUEST (SSE-PUBLISH)",
            big.len(),
            r.to_string().chars().take(200).collect::<String>()
        );
        expect_no_message(&mut s, &ch, cx.ms(200)).await?;
    }
    let bad = cx.token(TokenKind::Invalid).await?;
    let body2 = serde_json::json!({"channel": ch, "id": cx.id("p"), "payload": 1}).to_string();
    let (st, r) = post_json(&url, Some(&bad), &body2, cx.transcript()).await?;
    check!(
        st == 401 && r["code"] == "ERROR_CODE_INVALID_TOKEN",
        "invalid credentials answered {st} {r}"
    );
    if let (Some(forbidden), Ok(scoped)) = (
        cx.profile().channels.forbidden.clone(),
        cx.token(TokenKind::WrongScope).await,
    ) {
        let body3 =
            serde_json::json!({"channel": forbidden, "id": cx.id("p"), "payload": 1}).to_string();
        let (st, r) = post_json(&url, Some(&scoped), &body3, cx.transcript()).await?;
        check!(
            st == 403 && r["code"] == "ERROR_CODE_FORBIDDEN",
            "a forbidden publish answered {st} {r}"
        );
    }
    Ok(())
}

async fn heartbeat(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let mut s = open(&cx, "", &token, &[]).await?;
    let w = s
        .next(cx.step())
        .await?
        .ok_or_else(|| fail("stream ended"))?
        .json()?;
    let interval = w["heartbeat_interval_ms"].as_u64().unwrap_or(0);
    check!(interval > 0, "welcome has no heartbeat_interval_ms");
    if interval > 5000 {
        return Err(CaseError::Skipped(format!(
            "heartbeat_interval_ms {interval} is too long to observe quickly"
        )));
    }
    let i = Duration::from_millis(interval);
    let started = Instant::now();
    let mut times = Vec::new();
    while times.len() < 2 {
        let (_, _) = s.until("ping", i * 2 + cx.ms(500)).await?;
        times.push(started.elapsed());
    }
    let gap = times[1] - times[0];
    check!(
        gap >= i.mul_f64(0.7).saturating_sub(cx.ms(50)) && gap <= i.mul_f64(1.3) + cx.ms(250),
        "ping events {gap:?} apart, interval {interval} ms"
    );
    Ok(())
}

async fn shutdown(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let mut s = open(&cx, "", &token, &[]).await?;
    s.until("welcome", cx.step()).await?;
    let restarter = {
        let cx = cx.clone();
        tokio::spawn(async move { cx.restart().await })
    };
    let got = s.until("disconnect", cx.ms(10_000)).await;
    restarter
        .await
        .map_err(|e| fail(format!("restart task failed: {e}")))??;
    check_disconnect(&got?.0, close::GOING_AWAY)
}
