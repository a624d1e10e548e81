//! Close-code semantics: each trigger of the spec's table closes with its
//! code, a reason and a `disconnect` notice first (close-codes.md, limits.md).
//! Malformed frames are built by hand, since the codec refuses to produce them.

use std::time::Duration;

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Codec, Encoding, Subprotocol};

use super::util::{check_close, check_contiguous, position, subscribe, sync};
use super::BASE;
use crate::case::{fail, hello, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;
use crate::conn::{Conn, Event};
use crate::profile::TokenKind;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "close.malformed",
        title: "An undecodable frame closes with 4000",
        requirements: &["CLOSE-MALFORMED", "CLOSE-DISCONNECT-NOTICE", "CLOSE-REASON-REQUIRED", "ENC-NO-PANIC"],
        axes: Axes::Each,
        run: |cx| Box::pin(malformed(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.wrong-frame-type",
        title: "A valid envelope in the other WebSocket frame type closes with 4000",
        requirements: &["ENC-FRAME-TYPE", "CLOSE-MALFORMED"],
        axes: Axes::Each,
        run: |cx| Box::pin(wrong_frame_type(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.int53",
        title: "An integer field beyond 2^53-1 closes with 4000",
        requirements: &["ENC-INT53", "CLOSE-MALFORMED"],
        axes: Axes::Each,
        run: |cx| Box::pin(int53(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.invalid-payload",
        title: "A payload outside the payload data model closes with 4000 and is not numbered",
        requirements: &["ENC-PAYLOAD-INVALID", "CLOSE-MALFORMED"],
        axes: Axes::Each,
        run: |cx| Box::pin(invalid_payload(cx)),
        ..BASE
    },
    CaseDef {
        id: "enc.unknown-field",
        title: "Unknown fields are ignored and the rest of the envelope processed",
        requirements: &["ENC-UNKNOWN-FIELD"],
        axes: Axes::Each,
        run: |cx| Box::pin(unknown_field(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.unknown-type",
        title: "An unknown or missing type closes with 4001",
        requirements: &["CLOSE-UNKNOWN-TYPE", "ENC-UNKNOWN-TYPE"],
        axes: Axes::Each,
        run: |cx| Box::pin(unknown_type(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.batch-on-v1",
        title: "A batch in a version 1 session is an unknown type (4001)",
        requirements: &["BATCH-V2-ONLY", "ENC-UNKNOWN-TYPE"],
        axes: Axes::Each,
        versions: &[1],
        run: |cx| Box::pin(batch_on_v1(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.auth-failed",
        title: "Bad credentials in hello (or none where anonymous is not allowed) close with 4004; envelopes pipelined after that hello are never processed",
        requirements: &["AUTH-FAILED", "CLOSE-DISCONNECT-NOTICE", "HELLO-PIPELINE"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(auth_failed(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.expired-at-hello",
        title: "Expired credentials in hello close with 4300, not 4004",
        requirements: &["AUTH-EXPIRED-AT-HELLO"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(expired_at_hello(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.token-expiry",
        title: "A session whose credentials expire without refresh is closed with 4300",
        requirements: &["AUTH-EXPIRY", "WELCOME-FIELDS"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(token_expiry(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.rate-limit",
        title: "The advertised burst is allowed, the bucket refills at the advertised rate; exceeding it closes with 4101",
        requirements: &["LIMIT-RATE", "LIMIT-ADVERTISED"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(rate_limit(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.slow-consumer",
        title: "A subscriber that stops reading is closed with 4100 after a gap-free prefix, never buffered without bound",
        requirements: &["LIMIT-SLOW-CONSUMER", "LIMIT-SERVER-FRAME"],
        axes: Axes::Once,
        // Moves tens of megabytes: alone, so it cannot starve timed cases.
        exclusive: true,
        run: |cx| Box::pin(slow_consumer(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.shutdown",
        title: "A graceful shutdown sends disconnect 1001 and closes with 1001",
        requirements: &["CLOSE-SHUTDOWN"],
        axes: Axes::Once,
        needs: &["restart"],
        exclusive: true,
        run: |cx| Box::pin(shutdown(cx)),
        ..BASE
    },
];

/// Sends one raw frame on an open session and checks the close that follows.
async fn raw_then_close(
    cx: &Ctx,
    label: &str,
    bytes: Vec<u8>,
    text: bool,
    code: u16,
) -> CaseResult {
    let (mut c, _) = cx.open(label).await?;
    c.send_raw(bytes, text).await?;
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, code, true)
}

/// msgpack map header + `"type": <name>`.
pub(crate) fn mp_typed(name: &str, extra_members: u8) -> Vec<u8> {
    let mut v = vec![0x81 + extra_members, 0xa4];
    v.extend(b"type");
    v.push(0xa0 | name.len() as u8);
    v.extend(name.as_bytes());
    v
}

async fn malformed(cx: Ctx) -> CaseResult {
    let sp = cx.sp();
    let (bytes, text) = match sp.encoding {
        Encoding::Json => (br#"{"type":"ping","ts":"#.to_vec(), true),
        Encoding::MsgPack => (vec![0xc1], false),
        Encoding::Protobuf => (vec![0xff, 0xff, 0xff], false),
    };
    raw_then_close(&cx, "c1", bytes, text, close::BAD_FRAME).await?;
    // ENC-NO-PANIC: the server survived and still serves new sessions.
    let (mut c, _) = cx.open("after").await?;
    sync(&mut c, 11).await
}

async fn invalid_payload(cx: Ctx) -> CaseResult {
    let ch = cx.channel("badpayload");
    let (bytes, text) = match cx.sp().encoding {
        // Nesting deeper than 64 arrays.
        Encoding::Json => (
            format!(
                r#"{{"type":"publish","id":"p1","channel":"{ch}","payload":{}1{}}}"#,
                "[".repeat(70),
                "]".repeat(70)
            )
            .into_bytes(),
            true,
        ),
        // A MessagePack extension value as the payload.
        Encoding::MsgPack => {
            let mut v = mp_typed("publish", 3);
            v.extend([0xa2, b'i', b'd', 0xa2, b'p', b'1']);
            v.push(0xa7);
            v.extend(b"channel");
            v.push(0xd9);
            v.push(ch.len() as u8);
            v.extend(ch.as_bytes());
            v.push(0xa7);
            v.extend(b"payload");
            v.extend([0xd4, 0x01, 0x00]);
            (v, false)
        }
        // Payload bytes that are not one MessagePack value (reserved 0xc1).
        Encoding::Protobuf => {
            let mut inner = vec![0x0a, 0x02, b'p', b'1', 0x12, ch.len() as u8];
            inner.extend(ch.as_bytes());
            inner.extend([0x1a, 0x01, 0xc1]);
            let mut v = vec![0x52, inner.len() as u8];
            v.extend(inner);
            (v, false)
        }
    };
    raw_then_close(&cx, "c1", bytes, text, close::BAD_FRAME).await?;
    let (mut c, _) = cx.open("check").await?;
    let ack = subscribe(&mut c, &cx, &ch, None).await?;
    check!(
        position(&ack)?.1 == 0,
        "a publish with an invalid payload was numbered"
    );
    Ok(())
}

async fn unknown_field(cx: Ctx) -> CaseResult {
    let (bytes, text) = match cx.sp().encoding {
        Encoding::Json => (
            br#"{"type":"ping","future_field":{"x":[1,2]},"ts":5}"#.to_vec(),
            true,
        ),
        Encoding::MsgPack => {
            let mut v = mp_typed("ping", 2);
            v.extend([0xa2, b't', b's', 0x05, 0xa3, b'z', b'z', b'z', 0x91, 0x01]);
            (v, false)
        }
        // Ping { ts = 5, field 15 (varint) = 1 }.
        Encoding::Protobuf => (vec![0x9a, 0x01, 0x04, 0x08, 0x05, 0x78, 0x01], false),
    };
    let (mut c, _) = cx.open("c1").await?;
    c.send_raw(bytes, text).await?;
    let ts = c
        .take("pong", |e| match &e.body {
            Some(Body::Pong(p)) => Some(p.ts),
            _ => None,
        })
        .await?;
    check!(
        ts == 5,
        "ping with an unknown field answered with pong ts {ts}, expected 5"
    );
    Ok(())
}

async fn wrong_frame_type(cx: Ctx) -> CaseResult {
    let sp = cx.sp();
    let ping = v2::Envelope {
        body: Some(Body::Ping(v2::Ping { ts: 1 })),
    };
    let (bytes, text) = match sp.encoding {
        Encoding::Json => (
            Codec::new(sp).encode(&ping).expect("ping encodes").to_vec(),
            false,
        ),
        // A text frame must be UTF-8: send the JSON form, valid except for its frame type.
        _ => (
            Codec::new(Subprotocol::new(sp.version, Encoding::Json))
                .encode(&ping)
                .expect("ping encodes")
                .to_vec(),
            true,
        ),
    };
    raw_then_close(&cx, "c1", bytes, text, close::BAD_FRAME).await
}

async fn int53(cx: Ctx) -> CaseResult {
    let (bytes, text) = match cx.sp().encoding {
        Encoding::Json => (br#"{"type":"ping","ts":9007199254740992}"#.to_vec(), true),
        Encoding::MsgPack => {
            let mut v = mp_typed("ping", 1);
            v.extend([0xa2, b't', b's', 0xcf]);
            v.extend((1u64 << 53).to_be_bytes());
            (v, false)
        }
        // Envelope.ping (19, LEN) { ts (1, varint) = 2^53 }.
        Encoding::Protobuf => (
            vec![
                0x9a, 0x01, 0x09, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10,
            ],
            false,
        ),
    };
    raw_then_close(&cx, "c1", bytes, text, close::BAD_FRAME).await
}

async fn unknown_type(cx: Ctx) -> CaseResult {
    let frames: Vec<(Vec<u8>, bool)> = match cx.sp().encoding {
        Encoding::Json => vec![
            (br#"{"id":"x","type":"no_such_type"}"#.to_vec(), true),
            (br#"{"id":"x"}"#.to_vec(), true),
        ],
        Encoding::MsgPack => vec![
            (mp_typed("no_such_type", 0), false),
            (vec![0x81, 0xa2, b'i', b'd', 0xa1, b'x'], false),
        ],
        // Field 99 (LEN, empty), and an envelope with no field at all.
        Encoding::Protobuf => vec![(vec![0x9a, 0x06, 0x00], false), (vec![], false)],
    };
    for (i, (bytes, text)) in frames.into_iter().enumerate() {
        raw_then_close(&cx, &format!("c{i}"), bytes, text, close::UNKNOWN_TYPE).await?;
    }
    Ok(())
}

async fn batch_on_v1(cx: Ctx) -> CaseResult {
    let (bytes, text) = match cx.sp().encoding {
        Encoding::Json => (br#"{"type":"batch","envelopes":[]}"#.to_vec(), true),
        Encoding::MsgPack => {
            let mut v = mp_typed("batch", 1);
            v.push(0xa9);
            v.extend(b"envelopes");
            v.push(0x90);
            (v, false)
        }
        Encoding::Protobuf => (vec![0xba, 0x01, 0x00], false),
    };
    raw_then_close(&cx, "c1", bytes, text, close::UNKNOWN_TYPE).await
}

async fn hello_close(cx: &Ctx, label: &str, token: &str, code: u16) -> CaseResult {
    let mut c = cx.connect(label).await?;
    c.send_body(hello(token, &[])).await?;
    match c.next_event(cx.step()).await? {
        Some(Event::Env(e)) if matches!(e.body, Some(Body::Welcome(_))) => Err(fail(format!(
            "{label}: the server accepted the credentials (welcome) instead of closing with {code}"
        ))),
        Some(Event::Env(e)) if matches!(e.body, Some(Body::Disconnect(_))) => {
            check_close(&c.expect_close(cx.step()).await?, code, true)
        }
        Some(Event::Env(e)) => Err(fail(format!(
            "{label}: expected disconnect {code}, got {:?}",
            e.body.as_ref().map(super::util::body_name)
        ))),
        Some(Event::Closed(closed)) => check_close(&closed, code, true),
        None => Err(fail(format!(
            "{label}: no reply to hello within {:?}",
            cx.step()
        ))),
    }
}

async fn auth_failed(cx: Ctx) -> CaseResult {
    let bad = cx.token(TokenKind::Invalid).await?;
    hello_close(&cx, "bad-token", &bad, close::AUTH_FAILED).await?;
    hello_close(&cx, "garbage", "definitely.not.a-token", close::AUTH_FAILED).await?;
    if !cx.profile().anonymous {
        hello_close(&cx, "no-token", "", close::AUTH_FAILED).await?;
    }
    // HELLO-PIPELINE: a publish right behind a refused hello is never processed.
    let ch = cx.channel("pipelined-after-bad-hello");
    let mut c = cx.connect("pipelined").await?;
    c.send_body(hello(&bad, &[])).await?;
    let _ = super::util::send_publish(&mut c, &ch, &cx.id("p"), serde_json::json!(1)).await;
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, close::AUTH_FAILED, true)?;
    let (mut s, _) = cx.open("check").await?;
    let (_, seq) = position(&subscribe(&mut s, &cx, &ch, None).await?)?;
    check!(
        seq == 0,
        "a publish pipelined right after a hello refused with 4004 was numbered (seq {seq}): envelopes after a failed hello are never processed (HELLO-PIPELINE)"
    );
    Ok(())
}

async fn expired_at_hello(cx: Ctx) -> CaseResult {
    let expired = cx.token(TokenKind::Expired).await?;
    hello_close(&cx, "expired", &expired, close::TOKEN_EXPIRED).await
}

async fn token_expiry(cx: Ctx) -> CaseResult {
    let ttl = 2000;
    let token = cx.token(TokenKind::ShortLived(ttl)).await?;
    let (mut c, w) = cx.open_with("c1", &token, &[]).await?;
    let exp = w.token_expires_at_ms.ok_or_else(|| {
        fail("welcome lacks token_expires_at_ms for expiring credentials (WELCOME-FIELDS)")
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    check!(
        exp > now && exp <= now + ttl + 1500,
        "token_expires_at_ms {exp} is not the token's expiry (now {now}, ttl {ttl} ms)"
    );
    let closed = c
        .expect_close(Duration::from_millis(exp.saturating_sub(now)) + cx.ms(1500))
        .await?;
    check_close(&closed, close::TOKEN_EXPIRED, true)
}

async fn rate_limit(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let l = w.limits.unwrap_or_default();
    if l.max_messages_per_second == 0 || l.max_burst == 0 {
        return Err(CaseError::Unsupported(
            "welcome advertises no rate limit".into(),
        ));
    }
    if l.max_burst > 5000 {
        return Err(CaseError::Skipped(format!(
            "max_burst {} is too large to exhaust quickly",
            l.max_burst
        )));
    }
    // The whole burst at once, right after welcome, must be served: the
    // bucket is full when welcome is sent and hello took no token
    // (LIMIT-RATE, LIMIT-ADVERTISED).
    let burst = l.max_burst as u64;
    for ts in 0..burst {
        c.send_body(Body::Ping(v2::Ping { ts })).await?;
    }
    for ts in 0..burst {
        c.take("pong", |e| {
            matches!(&e.body, Some(Body::Pong(p)) if p.ts == ts).then_some(())
        })
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "max_burst = {burst} pings sent at once right after welcome must all be answered (LIMIT-RATE: the bucket is full when welcome is sent; LIMIT-ADVERTISED): no pong {ts}: {m}"
            )),
            other => other,
        })?;
    }
    // LIMIT-RATE's refill: a second later the bucket holds about
    // max_messages_per_second tokens again; half of them are served.
    let pause = cx.ms(1000).max(std::time::Duration::from_millis(1000));
    tokio::time::sleep(pause).await;
    let refill = (l.max_messages_per_second as u64 / 2).clamp(1, burst);
    for i in 0..refill {
        c.send_body(Body::Ping(v2::Ping { ts: 500_000 + i }))
            .await?;
    }
    for i in 0..refill {
        let ts = 500_000 + i;
        c.take("pong", |e| {
            matches!(&e.body, Some(Body::Pong(p)) if p.ts == ts).then_some(())
        })
        .await
        .map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "{refill} pings sent {pause:?} after the burst emptied the bucket must all be answered: it refills at max_messages_per_second = {} tokens per second (LIMIT-RATE); no pong {i}: {m}",
                l.max_messages_per_second
            )),
            other => other,
        })?;
    }
    // Well over the burst: the bucket runs dry.
    let flood = l.max_burst as u64 * 2 + l.max_messages_per_second as u64;
    for ts in 0..flood {
        if c.send_body(Body::Ping(v2::Ping { ts: 1_000_000 + ts }))
            .await
            .is_err()
        {
            break;
        }
    }
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, close::RATE_LIMITED, true)
}

async fn slow_consumer(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let mut s = cx.connect_small_buffer("slow").await?;
    s.send_body(hello(&token, &[])).await?;
    let w = s
        .take("welcome", |e| match &e.body {
            Some(Body::Welcome(w)) => Some(w.clone()),
            _ => None,
        })
        .await?;
    let l = w.limits.unwrap_or_default();
    let queue = l.send_queue_frames as usize;
    check!(queue > 0, "welcome advertises no send_queue_frames");
    let ch = cx.channel("slow");
    let (epoch, start) = position(&subscribe(&mut s, &cx, &ch, None).await?)?;
    s.pause_reading();
    // Small messages and a small receive buffer: the server's queue, not
    // kernel buffers, must absorb what the subscriber does not read.
    let size = ((l.max_message_bytes as usize) / 4).clamp(1024, 4096);
    // The server's socket send buffer can still grow to the kernel's limit
    // (tcp_wmem max, 4 MiB by default on Linux) before its queue fills, and
    // a proxy in between (nginx, a load balancer: the suite cannot tell)
    // holds a receive and a send buffer more.
    let total = (queue + 64 + path_buffer_limit() / size).min(20_000);
    cx.note(format!("publishing {total} messages of {size} bytes while the subscriber does not read (queue {queue} frames)"));
    let body = serde_json::json!("x".repeat(size - 64));
    // Enough publishers that each stays within its burst: the server gives an
    // unread close notice about a second (CLOSE_WAIT) before dropping the link.
    let per_conn = if l.max_burst > 0 {
        (l.max_burst as usize / 2).max(1)
    } else {
        100
    };
    let publishers = total.div_ceil(per_conn).clamp(4, 16);
    let mut tasks = Vec::new();
    for p in 0..publishers {
        let cx = cx.clone();
        let ch = ch.clone();
        let body = body.clone();
        let n = total / publishers + 1;
        tasks.push(tokio::spawn(async move {
            paced_publish(&cx, &format!("pub{p}"), &ch, n, body).await
        }));
    }
    // Keep the silent subscriber alive meanwhile (HB-ANY-FRAME) without reading.
    let keepalive = Duration::from_millis((w.heartbeat_interval_ms / 3).max(50));
    loop {
        let finished = tasks.iter().all(|t| t.is_finished());
        if finished {
            break;
        }
        let _ = s.send_control_ping().await;
        tokio::time::sleep(keepalive).await;
    }
    for t in tasks {
        t.await
            .map_err(|e| fail(format!("publisher failed: {e}")))??;
    }
    let published = (publishers * (total / publishers + 1)) as u64;
    // Now read what the server kept for us.
    s.resume_reading();
    let mut got = Vec::new();
    loop {
        match s.next_event(cx.step()).await? {
            Some(Event::Env(e)) => {
                if let Some(Body::Message(m)) = e.body {
                    got.push(m);
                }
            }
            Some(Event::Closed(closed)) => {
                check_contiguous(&got, &epoch, start + 1, start + got.len() as u64).map_err(|e| match e {
                    CaseError::Fail(m) => fail(format!("messages delivered before the slow-consumer close have a gap: {m}")),
                    o => o,
                })?;
                if closed.code.is_none() && (got.len() as u64) < published {
                    // The server gave up on delivering its close notice to a
                    // socket nobody read (a bounded close wait is allowed):
                    // what matters is that it dropped the consumer, after a
                    // gap-free prefix, instead of buffering everything.
                    cx.note(format!(
                        "link dropped without a close frame after {} of {published} messages: accepted as a slow-consumer close whose notice could not be delivered",
                        got.len()
                    ));
                    return Ok(());
                }
                return check_close(&closed, close::SLOW_CONSUMER, true);
            }
            None => {
                return Err(fail(format!(
                    "the subscriber stopped reading while {total} messages of {size} bytes were published; it then received {} and no 4100 close: the queue grew beyond send_queue_frames={queue}",
                    got.len()
                )))
            }
        }
    }
}

/// Publishes `n` messages on a new connection, pacing under the advertised rate.
async fn paced_publish(
    cx: &Ctx,
    label: &str,
    ch: &str,
    n: usize,
    body: serde_json::Value,
) -> CaseResult {
    let (mut p, w) = cx.open(label).await?;
    let l = w.limits.unwrap_or_default();
    let chunk = if l.max_burst > 0 {
        (l.max_burst as usize / 2).max(1)
    } else {
        100
    };
    let pause = if l.max_messages_per_second > 0 {
        Duration::from_millis(1000 * chunk as u64 / l.max_messages_per_second as u64)
    } else {
        Duration::ZERO
    };
    let mut sent = 0;
    while sent < n {
        let k = chunk.min(n - sent);
        let ids: Vec<String> = (0..k).map(|_| cx.id("p")).collect();
        for id in &ids {
            super::util::send_publish(&mut p, ch, id, body.clone()).await?;
        }
        for id in &ids {
            super::util::publish_reply(&mut p, id)
                .await?
                .map_err(|e| fail(format!("publish failed: {}", e.message)))?;
        }
        sent += k;
        if sent < n {
            // Read (and answer pings) while waiting for the bucket to refill.
            p.expect_open_for(pause).await?;
        }
    }
    p.close(1000).await;
    Ok(())
}

/// The largest socket send buffer the kernel grants (Linux `tcp_wmem`
/// max), with a margin; 8 MiB where it cannot be read.
/// What the path from the server to a subscriber that stopped reading can
/// hold besides the server's queue: the server's socket send buffer, and
/// a proxy's send buffer and receive buffer when one is in between (this
/// machine's limits: the send buffers grow to `tcp_wmem`'s maximum; a
/// receive buffer whose reader waits stays near `tcp_rmem`'s default, twice
/// that with autotuning).
fn path_buffer_limit() -> usize {
    2 * sysctl_bytes("tcp_wmem", 2).unwrap_or(8 << 20)
        + 2 * sysctl_bytes("tcp_rmem", 1).unwrap_or(256 << 10)
}

/// Field `i` of a socket buffer sysctl (`min default max`) with a 25%
/// margin, at most 64 MiB.
fn sysctl_bytes(name: &str, i: usize) -> Option<usize> {
    let text = std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).ok()?;
    let v: usize = text.split_whitespace().nth(i)?.parse().ok()?;
    Some((v + v / 4).min(64 << 20))
}

async fn shutdown(cx: Ctx) -> CaseResult {
    let (mut c, _) = cx.open("c1").await?;
    let ch = cx.channel("shutdown");
    subscribe(&mut c, &cx, &ch, None).await?;
    sync(&mut c, 3).await?;
    let restarter = {
        let cx = cx.clone();
        tokio::spawn(async move { cx.restart().await })
    };
    let closed = expect_close_long(&mut c, cx.ms(10_000)).await;
    restarter
        .await
        .map_err(|e| fail(format!("restart task failed: {e}")))??;
    check_close(&closed?, close::GOING_AWAY, true)?;
    // The server accepts connections again after the restart.
    let (c2, _) = cx.open("after").await?;
    c2.close(1000).await;
    Ok(())
}

async fn expect_close_long(c: &mut Conn, wait: Duration) -> Result<crate::conn::Closed, CaseError> {
    c.expect_close(wait).await
}
