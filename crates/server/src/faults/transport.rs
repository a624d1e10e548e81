//! The faulty transport layer: wraps a connection's [`FrameSink`] and
//! [`FrameSource`] and rewrites the envelopes that cross it so the server
//! appears to break one rule, while the session core, hub and engine run
//! unchanged. Each frame is decoded, changed and re-encoded: slow, and
//! compiled only with feature `faults`.

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Codec};

use super::phantom::{self, Ghosts, Phantoms};
use super::Fault;
use crate::frame::Wire;
use crate::session::driver::{Cold, FrameSink, FrameSource, Inbound};
use crate::session::Env;

/// Wraps a connection's halves for `fault`; `wire` is the connection's
/// wire form once agreed (`None` before a subprotocol was selected).
pub(crate) fn wrap<W: FrameSink, R: FrameSource>(
    env: Arc<Env>,
    fault: Fault,
    wire: Option<Wire>,
    sink: W,
    source: R,
) -> (FaultySink<W>, FaultySource<R>) {
    (
        FaultySink {
            inner: sink,
            fault,
            wire,
            pending: VecDeque::new(),
            held_ack: None,
            ghosts: Ghosts::default(),
        },
        FaultySource {
            inner: source,
            fault,
            wire,
            seen_first: false,
            split: VecDeque::new(),
            held: Vec::new(),
            phantoms: Phantoms::default(),
            env,
        },
    )
}

/// SkipSeq's numbering: every third number is skipped (1, 2, 4, 5, 7, …),
/// as a server that loses a number every third publish would show it.
fn skip(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n + (n - 1) / 2
    }
}

/// The true number behind a skipped one (the largest `n` with `skip(n) <= s`).
fn unskip(s: u64) -> u64 {
    if s == 0 {
        return 0;
    }
    let n = (2 * s).div_ceil(3);
    if skip(n) > s {
        n - 1
    } else {
        n
    }
}

/// Decodes one frame of `wire` (an SSE event's `data:` line for SSE).
pub(crate) fn decode(wire: Wire, bytes: &[u8]) -> Option<v2::Envelope> {
    let data = match wire {
        Wire::WebSocket(_) => bytes,
        Wire::Sse(_) => {
            let text = std::str::from_utf8(bytes).ok()?;
            let line = text.lines().find_map(|l| l.strip_prefix("data: "))?;
            line.as_bytes()
        }
    };
    Codec::new(wire.subprotocol()).decode(data).ok()
}

/// The envelopes a frame holds: itself, or a batch's entries.
fn entries(env: &mut v2::Envelope) -> Vec<&mut v2::Envelope> {
    if matches!(env.body, Some(Body::Batch(_))) {
        match &mut env.body {
            Some(Body::Batch(b)) => b.envelopes.iter_mut().collect(),
            _ => unreachable!(),
        }
    } else {
        vec![env]
    }
}

/// Rewrites one outbound envelope's numbers for `fault`.
fn renumber(fault: Fault, env: &mut v2::Envelope) {
    let map = |seq: &mut u64, position: bool| match fault {
        Fault::SkipSeq => *seq = skip(*seq),
        // A channel whose first message is 0: messages and acks shift,
        // positions (the count of numbered messages) do not.
        Fault::SeqFromZero if !position => *seq = seq.saturating_sub(1),
        _ => {}
    };
    match &mut env.body {
        Some(Body::Message(m)) => map(&mut m.seq, false),
        Some(Body::PublishAck(a)) => map(&mut a.seq, false),
        Some(Body::SubscribeAck(a)) => {
            if let Some(p) = &mut a.position {
                map(&mut p.seq, true);
            }
        }
        _ => {}
    }
}

fn is_ping(env: &v2::Envelope) -> bool {
    matches!(env.body, Some(Body::Ping(_)))
}

fn ack_channel(env: &v2::Envelope) -> Option<&str> {
    match &env.body {
        Some(Body::SubscribeAck(a)) => Some(&a.channel),
        _ => None,
    }
}

fn message_channel(env: &v2::Envelope) -> Option<&str> {
    match &env.body {
        Some(Body::Message(m)) => Some(&m.channel),
        _ => None,
    }
}

/// DataBeforeSubscribeAck inside a batch: each ack moves behind the
/// messages of its channel that follow it.
fn ack_after_data(envs: &mut Vec<v2::Envelope>) {
    let mut i = 0;
    while i < envs.len() {
        if let Some(channel) = ack_channel(&envs[i]).map(str::to_string) {
            let mut j = i + 1;
            while j < envs.len() && message_channel(&envs[j]) == Some(&channel) {
                j += 1;
            }
            let ack = envs.remove(i);
            envs.insert(j - 1, ack);
            i = j;
        } else {
            i += 1;
        }
    }
}

/// The outbound half: frames are rewritten into `pending`, then handed to
/// the inner sink one `poll_ready` at a time.
pub(crate) struct FaultySink<W> {
    inner: W,
    fault: Fault,
    wire: Option<Wire>,
    pending: VecDeque<Bytes>,
    /// DataBeforeSubscribeAck: an ack waiting for the replay behind it.
    held_ack: Option<(String, Bytes)>,
    /// UnsubscribeKeepsPresence: subscriptions kept behind the client's back.
    ghosts: Ghosts,
}

impl<W: FrameSink> FaultySink<W> {
    /// The frames to write instead of `frame`.
    fn rewrite(&mut self, frame: Bytes) {
        let Some(wire) = self.wire else {
            return self.pending.push_back(frame);
        };
        let touches = matches!(
            self.fault,
            Fault::SkipSeq
                | Fault::SeqFromZero
                | Fault::NeverPing
                | Fault::DataBeforeSubscribeAck
                | Fault::SubscriptionsNeverFreed
                | Fault::RelayUnsubscribedEphemeral
                | Fault::RpcResponseWithoutId
                | Fault::SseSilentRefusals
                | Fault::UnsubscribeKeepsPresence
        );
        let Some(mut env) = touches.then(|| decode(wire, &frame)).flatten() else {
            return self.pending.push_back(frame);
        };
        if let Some(Body::Batch(b)) = &mut env.body {
            let ghosts = &mut self.ghosts;
            b.envelopes
                .retain_mut(|e| !phantom::answers_phantom(e) && ghosts.keep(e));
        } else if phantom::answers_phantom(&env) || !self.ghosts.keep(&mut env) {
            return;
        }
        if self.fault == Fault::SseSilentRefusals
            && matches!(wire, Wire::Sse(_))
            && matches!(&env.body, Some(Body::Error(e)) if e.id.is_empty())
        {
            return;
        }
        for e in entries(&mut env) {
            renumber(self.fault, e);
            if let (Fault::RpcResponseWithoutId, Some(Body::RpcResponse(r))) =
                (self.fault, &mut e.body)
            {
                r.id.clear();
            }
        }
        if let Some(Body::Batch(b)) = &mut env.body {
            match self.fault {
                Fault::NeverPing => b.envelopes.retain(|e| !is_ping(e)),
                Fault::DataBeforeSubscribeAck => ack_after_data(&mut b.envelopes),
                _ => {}
            }
        } else if self.fault == Fault::NeverPing && is_ping(&env) {
            return;
        }
        let Ok(bytes) = wire.encode(&env) else {
            return self.pending.push_back(frame);
        };
        if self.fault != Fault::DataBeforeSubscribeAck {
            return self.pending.push_back(bytes);
        }
        if let Some(channel) = ack_channel(&env) {
            self.release_ack();
            self.held_ack = Some((channel.to_string(), bytes));
            return;
        }
        let replay = message_channel(&env)
            .zip(self.held_ack.as_ref())
            .is_some_and(|(m, (a, _))| m == a);
        if !replay {
            self.release_ack();
        }
        self.pending.push_back(bytes);
    }

    fn release_ack(&mut self) {
        if let Some((_, ack)) = self.held_ack.take() {
            self.pending.push_back(ack);
        }
    }

    /// Hands `pending` to the inner sink.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            std::task::ready!(self.inner.poll_ready(cx))?;
            let frame = self.pending.pop_front().expect("not empty");
            self.inner.start_send(frame)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: FrameSink> FrameSink for FaultySink<W> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        self.inner.poll_ready(cx)
    }

    fn start_send(&mut self, frame: Bytes) -> io::Result<()> {
        self.rewrite(frame);
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.release_ack();
        std::task::ready!(self.poll_pending(cx))?;
        self.inner.poll_flush(cx)
    }

    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, reason: &'a str) -> Cold<'a, ()> {
        let code = match self.fault {
            // Breaks CLOSE-OVERSIZE.
            Fault::WrongOversizeCode if code == close::MESSAGE_TOO_BIG => close::BAD_FRAME,
            _ => code,
        };
        // Breaks CLOSE-REASON-REQUIRED.
        let reason = if self.fault == Fault::NoCloseReason {
            ""
        } else {
            reason
        };
        let notice = match (notice, self.wire) {
            (Some(n), Some(wire)) => match decode(wire, &n) {
                Some(mut env) => {
                    if let Some(Body::Disconnect(d)) = &mut env.body {
                        d.code = code as u32;
                        d.reason = reason.to_string();
                    }
                    wire.encode(&env).ok().or(Some(n))
                }
                None => Some(n),
            },
            (n, _) => n,
        };
        Box::pin(async move {
            let _ = std::future::poll_fn(|cx| {
                self.release_ack();
                self.poll_pending(cx)
            })
            .await;
            self.inner.close(notice, code, reason).await
        })
    }
}

/// The inbound half: rewrites or splits what clients send, so the session
/// core sees the requests a faulty server would act on.
pub(crate) struct FaultySource<R> {
    inner: R,
    fault: Fault,
    wire: Option<Wire>,
    seen_first: bool,
    /// Entries of a batch split into separate frames, still to hand out.
    split: VecDeque<(Bytes, bool)>,
    /// ResubscribeIgnoresResume: channels the client subscribed to.
    held: Vec<String>,
    /// Requests the client never sent (`phantom`).
    phantoms: Phantoms,
    env: Arc<Env>,
}

/// Whether clients may send this body type (docs/spec/session.md).
fn client_type(body: &Body) -> bool {
    matches!(
        body,
        Body::Hello(_)
            | Body::Ping(_)
            | Body::Pong(_)
            | Body::Refresh(_)
            | Body::Subscribe(_)
            | Body::Unsubscribe(_)
            | Body::Publish(_)
            | Body::PresenceQuery(_)
            | Body::Ephemeral(_)
            | Body::RpcRequest(_)
            | Body::Batch(_)
    )
}

impl<R: FrameSource> FaultySource<R> {
    /// What the session core gets instead of `env` (received as a `text` frame).
    fn rewrite(&mut self, wire: Wire, mut env: v2::Envelope, text: bool, first: bool) -> Inbound {
        let frame = |env: &v2::Envelope| match wire.encode(env) {
            Ok(bytes) => Inbound::Frame { bytes, text },
            Err(_) => Inbound::Control,
        };
        match self.fault {
            Fault::FirstFrameProtocolViolation
                if first && !matches!(env.body, Some(Body::Hello(_))) =>
            {
                return Inbound::Broken((
                    close::PROTOCOL_VIOLATION,
                    "the first message must be hello".into(),
                ));
            }
            Fault::GrantUnrequestedFeatures => {
                if let Some(Body::Hello(h)) = &mut env.body {
                    h.features = crate::features::FEATURES
                        .iter()
                        .map(|f| f.name.to_string())
                        .collect();
                }
            }
            Fault::IgnoreServerOnlyTypes if env.body.as_ref().is_some_and(|b| !client_type(b)) => {
                return Inbound::Control;
            }
            Fault::EmptyResumeNotRequested => {
                for e in entries(&mut env) {
                    if let Some(Body::Subscribe(s)) = &mut e.body {
                        if s.resume.as_ref().is_some_and(|p| *p == Default::default()) {
                            s.resume = None;
                        }
                    }
                }
            }
            Fault::BatchRatePartial | Fault::HelloInBatchProcessed => {
                if let Some(Body::Batch(b)) = env.body {
                    for e in b.envelopes {
                        if let Ok(bytes) = wire.encode(&e) {
                            self.split.push_back((bytes, text));
                        }
                    }
                    return match self.split.pop_front() {
                        Some((bytes, text)) => Inbound::Frame { bytes, text },
                        None => Inbound::Control,
                    };
                }
            }
            Fault::ResubscribeIgnoresResume => {
                for e in entries(&mut env) {
                    match &mut e.body {
                        Some(Body::Subscribe(s)) if self.held.contains(&s.channel) => {
                            s.resume = None;
                        }
                        Some(Body::Subscribe(s)) => self.held.push(s.channel.clone()),
                        Some(Body::Unsubscribe(u)) => self.held.retain(|c| *c != u.channel),
                        _ => {}
                    }
                }
            }
            Fault::SkipSeq => {
                for e in entries(&mut env) {
                    if let Some(Body::Subscribe(s)) = &mut e.body {
                        if let Some(p) = &mut s.resume {
                            p.seq = unskip(p.seq);
                        }
                    }
                }
            }
            Fault::SubscriptionsNeverFreed
            | Fault::RelayUnsubscribedEphemeral
            | Fault::UnsubscribeKeepsPresence => {
                let envs = self.phantoms.expand(self.fault, env);
                self.split.extend(phantom::frames(wire, envs, text));
                return match self.split.pop_front() {
                    Some((bytes, text)) => Inbound::Frame { bytes, text },
                    None => Inbound::Control,
                };
            }
            _ => {}
        }
        frame(&env)
    }
}

impl<R: FrameSource> FrameSource for FaultySource<R> {
    const INBOUND: bool = R::INBOUND;

    async fn next(&mut self) -> Inbound {
        if let Some((bytes, text)) = self.split.pop_front() {
            return Inbound::Frame { bytes, text };
        }
        let inbound = self.inner.next().await;
        let (Inbound::Frame { bytes, text }, Some(wire)) = (&inbound, self.wire) else {
            return inbound;
        };
        let first = !std::mem::replace(&mut self.seen_first, true);
        let touches = matches!(
            self.fault,
            Fault::SkipSeq
                | Fault::ResubscribeIgnoresResume
                | Fault::FirstFrameProtocolViolation
                | Fault::GrantUnrequestedFeatures
                | Fault::IgnoreServerOnlyTypes
                | Fault::EmptyResumeNotRequested
                | Fault::BatchRatePartial
                | Fault::HelloInBatchProcessed
                | Fault::SubscriptionsNeverFreed
                | Fault::RelayUnsubscribedEphemeral
                | Fault::ProcessAfterFailedHello
                | Fault::UnsubscribeKeepsPresence
        );
        if !touches {
            return inbound;
        }
        match decode(wire, bytes) {
            Some(env) if self.fault == Fault::ProcessAfterFailedHello => {
                if let (true, Some(Body::Hello(h))) = (first, &env.body) {
                    phantom::publish_behind_refused_hello(&self.env, wire, &mut self.inner, h)
                        .await;
                }
                inbound
            }
            Some(env) => {
                let text = *text;
                self.rewrite(wire, env, text, first)
            }
            // The first frame decides nothing else: undecodable is "not hello".
            None if first && self.fault == Fault::FirstFrameProtocolViolation => Inbound::Broken((
                close::PROTOCOL_VIOLATION,
                "the first message must be hello".into(),
            )),
            None => inbound,
        }
    }

    async fn drain(&mut self) {
        self.inner.drain().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_numbers_map_back() {
        let skipped: Vec<u64> = (0..8).map(skip).collect();
        assert_eq!(skipped, [0, 1, 2, 4, 5, 7, 8, 10]);
        for n in 0..1000 {
            assert_eq!(unskip(skip(n)), n);
        }
        assert_eq!(unskip(3), 2);
        assert_eq!(unskip(6), 4);
    }

    #[test]
    fn acks_move_behind_their_replay() {
        let ack = |c: &str| v2::Envelope {
            body: Some(Body::SubscribeAck(v2::SubscribeAck {
                channel: c.into(),
                ..Default::default()
            })),
        };
        let msg = |c: &str, seq| v2::Envelope {
            body: Some(Body::Message(v2::Message {
                channel: c.into(),
                seq,
                ..Default::default()
            })),
        };
        let mut envs = vec![ack("a"), msg("a", 1), msg("a", 2), msg("b", 1)];
        ack_after_data(&mut envs);
        assert_eq!(envs, vec![msg("a", 1), msg("a", 2), ack("a"), msg("b", 1)]);
    }
}
