//! Request/reply helpers shared by the cases: subscribe, publish, collect a
//! channel's messages, wait for a close, and round-trip synchronisation.

use std::time::Duration;

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{v2, wire};

use crate::case::{fail, CaseError, Ctx};
use crate::check;
use crate::conn::{Closed, Conn};

/// The type name of a body (`subscribe_ack`).
pub fn body_name(b: &Body) -> &'static str {
    match b {
        Body::Hello(_) => "hello",
        Body::Welcome(_) => "welcome",
        Body::Refresh(_) => "refresh",
        Body::Refreshed(_) => "refreshed",
        Body::ReauthRequest(_) => "reauth_request",
        Body::Subscribe(_) => "subscribe",
        Body::SubscribeAck(_) => "subscribe_ack",
        Body::Unsubscribe(_) => "unsubscribe",
        Body::UnsubscribeAck(_) => "unsubscribe_ack",
        Body::Publish(_) => "publish",
        Body::PublishAck(_) => "publish_ack",
        Body::Message(_) => "message",
        Body::PresenceQuery(_) => "presence_query",
        Body::Presence(_) => "presence",
        Body::PresenceEvent(_) => "presence_event",
        Body::Ephemeral(_) => "ephemeral",
        Body::RpcRequest(_) => "rpc_request",
        Body::RpcResponse(_) => "rpc_response",
        Body::Ping(_) => "ping",
        Body::Pong(_) => "pong",
        Body::Error(_) => "error",
        Body::Disconnect(_) => "disconnect",
        Body::Batch(_) => "batch",
    }
}

/// A payload from JSON.
pub fn payload(v: serde_json::Value) -> Bytes {
    wire::payload::from_json(&v).expect("suite payloads are JSON-model values")
}

/// An error code's proto name, for messages.
pub fn error_name(code: i32) -> &'static str {
    v2::ErrorCode::try_from(code)
        .map(|c| c.as_str_name())
        .unwrap_or("(unknown)")
}

/// Either the success reply or the `error` answering request `id`.
pub async fn reply<T>(
    c: &mut Conn,
    id: &str,
    what: &str,
    mut pick: impl FnMut(&Body) -> Option<T>,
) -> Result<Result<T, v2::Error>, CaseError> {
    c.take(what, |e| match &e.body {
        Some(Body::Error(err)) if err.id == id => Some(Err(err.clone())),
        Some(b) => pick(b).map(Ok),
        None => None,
    })
    .await
}

/// Sends `subscribe` and returns its ack or error.
pub async fn try_subscribe(
    c: &mut Conn,
    cx: &Ctx,
    channel: &str,
    resume: Option<(&str, u64)>,
) -> Result<Result<v2::SubscribeAck, v2::Error>, CaseError> {
    let id = cx.id("sub");
    c.send_body(Body::Subscribe(v2::Subscribe {
        id: id.clone(),
        channel: channel.to_string(),
        resume: resume.map(|(epoch, seq)| v2::StreamPosition {
            epoch: epoch.to_string(),
            seq,
        }),
    }))
    .await?;
    reply(c, &id, "subscribe_ack", |b| match b {
        Body::SubscribeAck(a) if a.id == id => Some(a.clone()),
        _ => None,
    })
    .await
}

/// Subscribes; an `error` reply fails the case.
pub async fn subscribe(
    c: &mut Conn,
    cx: &Ctx,
    channel: &str,
    resume: Option<(&str, u64)>,
) -> Result<v2::SubscribeAck, CaseError> {
    try_subscribe(c, cx, channel, resume).await?.map_err(|e| {
        fail(format!(
            "subscribe to {channel} failed: {} {}",
            error_name(e.code),
            e.message
        ))
    })
}

/// Sends `unsubscribe` for `ch`; its `unsubscribe_ack` or `error`.
pub async fn unsubscribe(
    c: &mut crate::conn::Conn,
    cx: &Ctx,
    ch: &str,
) -> Result<Result<v2::UnsubscribeAck, v2::Error>, CaseError> {
    let id = cx.id("u");
    c.send_body(Body::Unsubscribe(v2::Unsubscribe {
        id: id.clone(),
        channel: ch.to_string(),
    }))
    .await?;
    reply(c, &id, "unsubscribe_ack", |b| match b {
        Body::UnsubscribeAck(a) if a.id == id => Some(a.clone()),
        _ => None,
    })
    .await
}

/// The ack's position as (epoch, seq).
pub fn position(ack: &v2::SubscribeAck) -> Result<(String, u64), CaseError> {
    let p = ack
        .position
        .as_ref()
        .ok_or_else(|| fail("subscribe_ack has no position (SEQ-ACK-POSITION)"))?;
    Ok((p.epoch.clone(), p.seq))
}

/// The ack's recovery (status, reason, replayed).
pub fn recovery(ack: &v2::SubscribeAck) -> (v2::RecoveryStatus, v2::RecoveryReason, u64) {
    let r = ack.recovery.unwrap_or_default();
    (
        v2::RecoveryStatus::try_from(r.status).unwrap_or(v2::RecoveryStatus::Unspecified),
        v2::RecoveryReason::try_from(r.reason).unwrap_or(v2::RecoveryReason::Unspecified),
        r.replayed,
    )
}

/// Sends `publish` with `id`; returns the ack or error.
pub async fn try_publish(
    c: &mut Conn,
    channel: &str,
    id: &str,
    body: serde_json::Value,
) -> Result<Result<v2::PublishAck, v2::Error>, CaseError> {
    send_publish(c, channel, id, body).await?;
    publish_reply(c, id).await
}

/// Sends a publish without waiting for its reply (pipelining).
pub async fn send_publish(
    c: &mut Conn,
    channel: &str,
    id: &str,
    body: serde_json::Value,
) -> Result<(), CaseError> {
    c.send_body(Body::Publish(v2::Publish {
        id: id.to_string(),
        channel: channel.to_string(),
        payload: payload(body),
    }))
    .await
}

/// Waits for the reply to publish `id`.
pub async fn publish_reply(
    c: &mut Conn,
    id: &str,
) -> Result<Result<v2::PublishAck, v2::Error>, CaseError> {
    let id = id.to_string();
    reply(c, &id, "publish_ack", |b| match b {
        Body::PublishAck(a) if a.id == id => Some(a.clone()),
        _ => None,
    })
    .await
}

/// Publishes; an `error` reply fails the case.
pub async fn publish(
    c: &mut Conn,
    channel: &str,
    id: &str,
    body: serde_json::Value,
) -> Result<v2::PublishAck, CaseError> {
    try_publish(c, channel, id, body).await?.map_err(|e| {
        fail(format!(
            "publish {id} to {channel} failed: {} {}",
            error_name(e.code),
            e.message
        ))
    })
}

/// The next `message` of `channel` (other envelopes are stashed).
pub async fn next_message(c: &mut Conn, channel: &str) -> Result<v2::Message, CaseError> {
    c.take(&format!("a message on {channel}"), |e| match &e.body {
        Some(Body::Message(m)) if m.channel == channel => Some(m.clone()),
        _ => None,
    })
    .await
}

/// The next `n` messages of `channel`, in arrival order.
pub async fn messages(
    c: &mut Conn,
    channel: &str,
    n: usize,
) -> Result<Vec<v2::Message>, CaseError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(next_message(c, channel).await?);
    }
    Ok(out)
}

/// Receives the messages of `channel` that must be exactly seqs
/// `from..=to` of `epoch`, in order; `after` says what they follow (`the
/// subscribe_ack of a resume from seq 2`) and `req` the requirement they
/// meet. A failure names the first missing or unexpected seq, and what
/// arrived before it.
pub async fn expect_seqs(
    c: &mut Conn,
    channel: &str,
    epoch: &str,
    (from, to): (u64, u64),
    after: &str,
    req: &str,
) -> Result<Vec<v2::Message>, CaseError> {
    let mut got: Vec<v2::Message> = Vec::new();
    for want in from..=to {
        let m = match next_message(c, channel).await {
            Ok(m) => m,
            Err(CaseError::Fail(why)) => {
                let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
                return Err(fail(format!(
                    "after {after}, expected seqs {from}..={to} of epoch {epoch:?} ({req}); received {seqs:?}, then no message seq {want}: {why}"
                )));
            }
            Err(other) => return Err(other),
        };
        if m.seq != want || m.epoch != epoch {
            let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
            let what = if m.epoch != epoch {
                format!("seq {} of epoch {:?}", m.seq, m.epoch)
            } else if m.seq > want {
                format!("seq {} (seq {want} skipped)", m.seq)
            } else {
                format!("seq {} again or out of order", m.seq)
            };
            return Err(fail(format!(
                "after {after}, expected seqs {from}..={to} of epoch {epoch:?} ({req}); received {seqs:?}, then {what} where seq {want} was due"
            )));
        }
        got.push(m);
    }
    Ok(got)
}

/// Sends a `ping` and waits for its `pong`: every envelope the server sent
/// before answering has then arrived (SESSION-IN-ORDER) and is stashed.
pub async fn sync(c: &mut Conn, ts: u64) -> Result<(), CaseError> {
    c.send_body(Body::Ping(v2::Ping { ts })).await?;
    c.take("pong", |e| {
        matches!(&e.body, Some(Body::Pong(p)) if p.ts == ts).then_some(())
    })
    .await
}

/// Checks that no `message` of `channel` is stashed or arrives within `wait`.
pub async fn expect_no_message(
    c: &mut Conn,
    channel: &str,
    wait: Duration,
) -> Result<(), CaseError> {
    let seen = c.expect_open_for(wait).await?;
    let extra: Vec<u64> = seen
        .iter()
        .filter_map(|e| match &e.body {
            Some(Body::Message(m)) if m.channel == channel => Some(m.seq),
            _ => None,
        })
        .collect();
    check!(
        extra.is_empty(),
        "unexpected message(s) on {channel} with seq {extra:?}"
    );
    Ok(())
}

/// Checks a server-initiated close: `code`, a non-empty reason of at most
/// 123 bytes (CLOSE-REASON-REQUIRED) and, unless `notice` is false (4002),
/// a `disconnect` with the same code and reason first (CLOSE-DISCONNECT-NOTICE).
pub fn check_close(c: &Closed, code: u16, notice: bool) -> Result<(), CaseError> {
    check!(
        c.code == Some(code),
        "expected close code {code}, got {} {:?}",
        c.code_text(),
        c.reason
    );
    check!(
        !c.reason.is_empty(),
        "close {code} carries no reason (CLOSE-REASON-REQUIRED)"
    );
    check!(
        c.reason.len() <= 123,
        "close reason is {} bytes, over 123",
        c.reason.len()
    );
    if notice {
        let d = c.disconnect.as_ref().ok_or_else(|| {
            fail(format!(
                "close {code} was not preceded by a disconnect envelope (CLOSE-DISCONNECT-NOTICE)"
            ))
        })?;
        check!(
            d.code == u32::from(code),
            "disconnect carries code {}, the close frame {code}",
            d.code
        );
        check!(
            d.reason == c.reason,
            "disconnect reason {:?} differs from the close reason {:?}",
            d.reason,
            c.reason
        );
    }
    Ok(())
}

/// Checks that messages are exactly seqs `from..=to` of `epoch`, in order.
pub fn check_contiguous(
    msgs: &[v2::Message],
    epoch: &str,
    from: u64,
    to: u64,
) -> Result<(), CaseError> {
    let seqs: Vec<u64> = msgs.iter().map(|m| m.seq).collect();
    let want: Vec<u64> = (from..=to).collect();
    check!(
        seqs == want,
        "expected seqs {from}..={to} in order, got {seqs:?}"
    );
    for m in msgs {
        check!(
            m.epoch == epoch,
            "message seq {} has epoch {:?}, expected {epoch:?}",
            m.seq,
            m.epoch
        );
    }
    Ok(())
}
