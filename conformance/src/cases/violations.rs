//! Frames a client must not send and what a server does with them: the
//! order of checks when one frame breaks several rules (CLOSE-PRECEDENCE),
//! server-only types from a client (SESSION-CLIENT-TYPES), oversized frames
//! detected before their payload is read (CLOSE-OVERSIZE) and the notice
//! that may precede 1009 (CLOSE-OVERSIZE-NOTICE), and batches that run the
//! rate limit dry (LIMIT-RATE).

use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Encoding};

use super::close::mp_typed;
use super::util::{check_close, payload, position, subscribe};
use super::BASE;
use crate::case::{fail, Axes, CaseDef, CaseError, CaseResult, Ctx};
use crate::check;
use crate::conn::Event;
use crate::profile::TokenKind;

pub(crate) const CASES: &[CaseDef] = &[
    CaseDef {
        id: "close.precedence",
        title: "A bad first frame closes with the code of the first check it fails: 1009, then 4000, then 4001, then 4003",
        requirements: &["CLOSE-PRECEDENCE", "HELLO-FIRST"],
        axes: Axes::Each,
        run: |cx| Box::pin(precedence(cx)),
        ..BASE
    },
    CaseDef {
        id: "session.server-only-types",
        title: "A type only servers send, sent by a client, closes with 4003",
        requirements: &["SESSION-CLIENT-TYPES"],
        axes: Axes::PerVersion,
        run: |cx| Box::pin(server_only_types(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.oversize",
        title: "A frame of max_message_bytes is accepted; a larger one closes with 1009, before the server reads its payload",
        requirements: &["CLOSE-OVERSIZE", "CLOSE-REASON-REQUIRED", "LIMIT-ADVERTISED"],
        axes: Axes::Each,
        run: |cx| Box::pin(oversize(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.oversize-notice",
        title: "A 1009 close is preceded by a disconnect notice with the same code and reason",
        requirements: &["CLOSE-OVERSIZE-NOTICE"],
        level: crate::spec::Level::Should,
        axes: Axes::PerVersion,
        run: |cx| Box::pin(oversize_notice(cx)),
        ..BASE
    },
    CaseDef {
        id: "close.rate-limit-batch",
        title: "A batch needing more tokens than are left closes with 4101 and none of its envelopes is processed",
        requirements: &["LIMIT-RATE", "BATCH-ORDER"],
        axes: Axes::Once,
        versions: &[2],
        needs: &["batch"],
        run: |cx| Box::pin(rate_limit_batch(cx)),
        ..BASE
    },
];

/// Sends `bytes` as the first frame after the upgrade (no `hello`) and
/// checks the close.
async fn first_frame_closes(
    cx: &Ctx,
    label: &str,
    bytes: Vec<u8>,
    text: bool,
    code: u16,
    what: &str,
) -> CaseResult {
    let mut c = cx.connect(label).await?;
    c.send_raw(bytes, text).await?;
    let closed = c.expect_close(cx.step()).await?;
    check!(
        closed.code == Some(code),
        "a first frame that is {what}: closed with {} {:?}, expected {code} (CLOSE-PRECEDENCE: 1009 size, then 4000 decoding, then 4001 type, then 4003 order)",
        closed.code_text(),
        closed.reason
    );
    check_close(&closed, code, code != close::MESSAGE_TOO_BIG)
}

async fn precedence(cx: Ctx) -> CaseResult {
    let enc = cx.sp().encoding;
    let undecodable = match enc {
        Encoding::Json => (br#"{"type":"subscribe","id":"#.to_vec(), true),
        Encoding::MsgPack => (vec![0xc1], false),
        Encoding::Protobuf => (vec![0xff, 0xff, 0xff], false),
    };
    first_frame_closes(
        &cx,
        "undecodable",
        undecodable.0,
        undecodable.1,
        close::BAD_FRAME,
        "not decodable (and not hello)",
    )
    .await?;
    let unknown = match enc {
        Encoding::Json => (br#"{"type":"no_such_type","id":"x"}"#.to_vec(), true),
        Encoding::MsgPack => (mp_typed("no_such_type", 0), false),
        Encoding::Protobuf => (vec![0x9a, 0x06, 0x00], false),
    };
    first_frame_closes(
        &cx,
        "unknown-type",
        unknown.0,
        unknown.1,
        close::UNKNOWN_TYPE,
        "of an unknown type (and not hello)",
    )
    .await?;
    // A server-only type first: decodable and defined, but out of place.
    let welcome = v2::Envelope {
        body: Some(Body::Welcome(v2::Welcome {
            session_id: "forged".into(),
            ..Default::default()
        })),
    };
    let mut c = cx.connect("server-type").await?;
    let bytes = courier_protocol::Codec::new(cx.sp())
        .encode(&welcome)
        .map_err(|e| fail(format!("suite cannot encode welcome: {e}")))?;
    c.send_raw(bytes.to_vec(), enc.is_text()).await?;
    let closed = c.expect_close(cx.step()).await?;
    check!(
        closed.code == Some(close::PROTOCOL_VIOLATION),
        "a first frame of the server-only type welcome: closed with {} {:?}, expected 4003 (HELLO-FIRST, CLOSE-PRECEDENCE)",
        closed.code_text(),
        closed.reason
    );
    check_close(&closed, close::PROTOCOL_VIOLATION, true)?;
    // An oversized first frame: size is checked before anything else. The
    // limit is advertised only in welcome: ask a session first.
    let (probe, w) = cx.open("probe").await?;
    probe.close(1000).await;
    let limit = w.limits.map(|l| l.max_message_bytes).unwrap_or(0) as usize;
    if limit == 0 || limit > 8 << 20 {
        return Ok(());
    }
    let mut big = Vec::with_capacity(limit + 64);
    match enc {
        Encoding::Json => {
            big.extend(br#"{"type":"no_such_type","x":""#);
            big.resize(limit + 40, b'x');
            big.extend(b"\"}");
        }
        _ => big.resize(limit + 64, 0xc1),
    }
    first_frame_closes(
        &cx,
        "oversized",
        big,
        enc.is_text(),
        close::MESSAGE_TOO_BIG,
        "oversized (and undecodable, and not hello)",
    )
    .await
}

/// One envelope of each type only servers send.
fn server_only_bodies(version2: bool) -> Vec<Body> {
    let mut out = vec![
        Body::Welcome(v2::Welcome {
            session_id: "forged".into(),
            ..Default::default()
        }),
        Body::Refreshed(v2::Refreshed {
            id: "r".into(),
            ..Default::default()
        }),
        Body::SubscribeAck(v2::SubscribeAck {
            id: "s".into(),
            channel: "c".into(),
            ..Default::default()
        }),
        Body::UnsubscribeAck(v2::UnsubscribeAck {
            id: "u".into(),
            channel: "c".into(),
        }),
        Body::PublishAck(v2::PublishAck {
            id: "p".into(),
            channel: "c".into(),
            epoch: "e".into(),
            seq: 1,
            duplicate: false,
        }),
        Body::Message(v2::Message {
            channel: "c".into(),
            epoch: "e".into(),
            seq: 1,
            id: "m".into(),
            ..Default::default()
        }),
        Body::Presence(v2::Presence {
            id: "q".into(),
            channel: "c".into(),
            members: vec![],
        }),
        Body::PresenceEvent(v2::PresenceEvent {
            channel: "c".into(),
            action: v2::PresenceAction::Join as i32,
            member: None,
        }),
        Body::RpcResponse(v2::RpcResponse {
            id: "x".into(),
            payload: payload(serde_json::json!(1)),
        }),
        Body::Error(v2::Error {
            id: "x".into(),
            code: v2::ErrorCode::Internal as i32,
            message: "forged".into(),
            ..Default::default()
        }),
        Body::Disconnect(v2::Disconnect {
            code: 4201,
            reason: "forged".into(),
            retry_after_ms: None,
        }),
    ];
    if version2 {
        out.push(Body::ReauthRequest(v2::ReauthRequest {
            deadline_ms: 1000,
            reason: "forged".into(),
        }));
    }
    out
}

async fn server_only_types(cx: Ctx) -> CaseResult {
    let v2 = cx.sp().version == courier_protocol::Version::V2;
    for body in server_only_bodies(v2) {
        let name = super::util::body_name(&body);
        let (mut c, _) = cx.open(name).await?;
        c.send_body(body).await?;
        let closed = c.expect_close(cx.step()).await.map_err(|e| match e {
            CaseError::Fail(m) => fail(format!(
                "a client sent `{name}`, a type only servers send: expected close 4003 (SESSION-CLIENT-TYPES); {m}"
            )),
            o => o,
        })?;
        check!(
            closed.code == Some(close::PROTOCOL_VIOLATION),
            "a client sent `{name}`, a type only servers send: closed with {} {:?}, expected 4003 (SESSION-CLIENT-TYPES)",
            closed.code_text(),
            closed.reason
        );
        check_close(&closed, close::PROTOCOL_VIOLATION, true)?;
    }
    Ok(())
}

/// The advertised frame limit, or why the oversize cases do not apply.
fn frame_limit(w: &v2::Welcome) -> Result<usize, CaseError> {
    let limit = w.limits.as_ref().map(|l| l.max_message_bytes).unwrap_or(0) as usize;
    check!(limit > 0, "welcome advertises no max_message_bytes");
    if limit > 8 << 20 {
        return Err(CaseError::Skipped(format!(
            "max_message_bytes {limit} is too large to exceed cheaply"
        )));
    }
    Ok(limit)
}

/// A complete publish frame `extra` bytes over the limit.
fn big_publish(cx: &Ctx, limit: usize) -> v2::Envelope {
    v2::Envelope {
        body: Some(Body::Publish(v2::Publish {
            id: cx.id("p"),
            channel: cx.channel("big"),
            payload: payload(serde_json::json!("x".repeat(limit + 64))),
        })),
    }
}

/// A publish whose encoded frame is as close to `limit` bytes as the
/// encoding allows without exceeding it, and that size.
fn publish_at_limit(cx: &Ctx, limit: usize) -> Result<(v2::Envelope, usize), CaseError> {
    let codec = courier_protocol::Codec::new(cx.sp());
    let (id, channel) = (cx.id("at-limit"), cx.channel("at-limit"));
    let build = |n: usize| v2::Envelope {
        body: Some(Body::Publish(v2::Publish {
            id: id.clone(),
            channel: channel.clone(),
            payload: payload(serde_json::json!("x".repeat(n))),
        })),
    };
    let size = |n: usize| {
        codec
            .encode(&build(n))
            .map(|b| b.len())
            .unwrap_or(usize::MAX)
    };
    // The largest filler whose frame fits (sizes grow with the filler).
    let (mut lo, mut hi) = (0usize, limit);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if size(mid) <= limit {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    let bytes = size(lo);
    check!(
        bytes <= limit,
        "max_message_bytes {limit} is too small for any publish"
    );
    Ok((build(lo), bytes))
}

async fn oversize(cx: Ctx) -> CaseResult {
    // LIMIT-ADVERTISED: a frame of the advertised size itself is accepted.
    let (mut c, w) = cx.open("at-limit").await?;
    let limit = frame_limit(&w)?;
    let (env, bytes) = publish_at_limit(&cx, limit)?;
    let id = match &env.body {
        Some(Body::Publish(p)) => p.id.clone(),
        _ => unreachable!("publish_at_limit builds a publish"),
    };
    c.send(&env).await?;
    let acked = super::util::reply(&mut c, &id, "publish_ack", |b| match b {
        Body::PublishAck(a) if a.id == id => Some(()),
        _ => None,
    })
    .await
    .map_err(|e| match e {
        CaseError::Fail(m) => fail(format!(
            "a {bytes}-byte publish frame (max_message_bytes {limit}) was not acknowledged: a server MUST NOT enforce a limit stricter than it advertised (LIMIT-ADVERTISED); {m}"
        )),
        o => o,
    })?;
    check!(
        acked.is_ok(),
        "a {bytes}-byte publish frame (max_message_bytes {limit}) was refused: {acked:?}"
    );
    // A whole frame over the limit.
    let (mut c, _) = cx.open("whole").await?;
    // The server may close before reading the whole frame: a failed send is fine.
    if let Err(e) = c.send(&big_publish(&cx, limit)).await {
        cx.note(format!(
            "send of the oversized frame failed (server closed early?): {e:?}"
        ));
    }
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, close::MESSAGE_TOO_BIG, false)?;
    // A frame header announcing far more than the limit, followed by just
    // over the limit of payload: the server must close without waiting for
    // the rest (it would otherwise have to read or buffer it first).
    let (mut c, _) = cx.open("header-only").await?;
    let announced: u64 = (limit as u64) * 16 + (1 << 20);
    let opcode = if cx.sp().encoding.is_text() {
        0x81
    } else {
        0x82
    };
    let mut frame = vec![opcode, 0x80 | 127];
    frame.extend(announced.to_be_bytes());
    // Mask key 0: the payload bytes go out as they are.
    frame.extend([0, 0, 0, 0]);
    c.send_socket_bytes(
        frame,
        &format!("frame header announcing {announced} bytes (limit {limit})"),
    )
    .await?;
    let chunk = vec![b'x'; (limit + 1024).min(1 << 20)];
    if let Err(e) = c
        .send_socket_bytes(chunk, &format!("{} payload bytes", limit + 1024))
        .await
    {
        cx.note(format!(
            "payload write failed (server closed early?): {e:?}"
        ));
    }
    let closed = c.expect_close(cx.step()).await.map_err(|e| match e {
        CaseError::Fail(_) => fail(format!(
            "after a frame header announcing {announced} bytes and {} bytes of its payload, the server kept the connection open waiting for the rest: it must close with 1009 before reading more than max_message_bytes = {limit} bytes of a frame (CLOSE-OVERSIZE)",
            limit + 1024
        )),
        o => o,
    })?;
    check_close(&closed, close::MESSAGE_TOO_BIG, false)
}

async fn oversize_notice(cx: Ctx) -> CaseResult {
    let (mut c, w) = cx.open("c1").await?;
    let limit = frame_limit(&w)?;
    if let Err(e) = c.send(&big_publish(&cx, limit)).await {
        cx.note(format!("send failed (server closed early?): {e:?}"));
    }
    let closed = c.expect_close(cx.step()).await?;
    check_close(&closed, close::MESSAGE_TOO_BIG, true)
}

async fn rate_limit_batch(cx: Ctx) -> CaseResult {
    let token = cx.token(TokenKind::Valid).await?;
    let (mut c, w) = cx.open_with("c1", &token, &["batch"]).await?;
    let l = w.limits.unwrap_or_default();
    let (burst, max_batch) = (l.max_burst as usize, l.max_batch as usize);
    if l.max_messages_per_second == 0 || burst == 0 {
        return Err(CaseError::Unsupported(
            "welcome advertises no rate limit".into(),
        ));
    }
    if max_batch < 8 || burst > 5000 {
        return Err(CaseError::Skipped(format!(
            "max_batch {max_batch} / max_burst {burst}: cannot leave a batch part of the tokens it needs"
        )));
    }
    // Leave about half a batch's worth of tokens, then send a full batch:
    // its first entries would have tokens, the rest not.
    let leave = max_batch / 2;
    let ch = cx.channel("rate-batch");
    for ts in 0..(burst - leave) as u64 {
        c.send_body(Body::Ping(v2::Ping { ts })).await?;
    }
    let envs: Vec<v2::Envelope> = (0..max_batch)
        .map(|i| v2::Envelope {
            body: Some(Body::Publish(v2::Publish {
                id: cx.id("p"),
                channel: ch.clone(),
                payload: payload(serde_json::json!(i)),
            })),
        })
        .collect();
    c.send_body(Body::Batch(v2::Batch { envelopes: envs }))
        .await?;
    let mut acked = 0;
    let closed = loop {
        match c.next_event(cx.step()).await? {
            Some(Event::Env(e)) => {
                let flat = match e.body {
                    Some(Body::Batch(b)) => b.envelopes,
                    _ => vec![e],
                };
                acked += flat
                    .iter()
                    .filter(|e| matches!(e.body, Some(Body::PublishAck(_))))
                    .count();
            }
            Some(Event::Closed(c)) => break c,
            None => {
                return Err(fail(format!(
                    "{} pings then a batch of {max_batch} publishes with about {leave} tokens left (max_burst {burst}): the connection stayed open (LIMIT-RATE)",
                    burst - leave
                )))
            }
        }
    };
    check_close(&closed, close::RATE_LIMITED, true)?;
    check!(
        acked == 0,
        "a batch of {max_batch} publishes arriving with about {leave} tokens left: {acked} of its publishes were acked before the 4101 close; a batch takes all its tokens at once and none of it is processed (LIMIT-RATE)"
    );
    let (mut s, _) = cx.open("check").await?;
    let (_, seq) = position(&subscribe(&mut s, &cx, &ch, None).await?)?;
    check!(
        seq == 0,
        "a batch refused for the rate limit: {seq} of its publishes were numbered anyway (LIMIT-RATE: none of its envelopes is processed)"
    );
    Ok(())
}
