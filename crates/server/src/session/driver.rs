//! The one loop that connects a session to a transport: a reader (decode,
//! rate limit, dispatch, heartbeat ticks, shutdown) and a writer (drains
//! the outbox, many frames per flush, then the `disconnect` and close) side
//! by side in the connection's task. A transport supplies a
//! [`FrameSource`] and a [`FrameSink`]; everything else is here, so the
//! same request gets the same reply, error, close code and metrics over
//! every transport.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use courier_protocol::v2::envelope::Body;
use courier_protocol::{close, v2, Codec, DecodeError, Version};

use super::halves::{self, First};
use super::{Close, Env, Hello, Session};
use crate::features::BATCH;
use crate::frame::{assemble_batch, Wire, BATCH_ENTRY_OVERHEAD, BATCH_OVERHEAD};
use crate::hub::frames::Frames;
use crate::hub::{CloseRequest, Outbox};

/// How long a closing connection waits for the client's close (and for
/// its own notice and close to be written).
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// One socket write in this many per session records its queue wait
/// (`courier_send_queue_wait_seconds`); the first write of a session does.
const QUEUE_WAIT_SAMPLE: u8 = 16;
/// How long a write blocked on a full socket may delay a close (other than 4100).
const BLOCKED_WRITE_GRACE: Duration = Duration::from_secs(1);

/// A boxed future: the cold paths of a connection (hello phase, closes)
/// run in their own allocation, freed when they finish, so that every
/// open connection's task is only as large as its steady state.
pub(crate) type Cold<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a [`FrameSource`] read.
pub(crate) enum Inbound {
    /// A data frame; `text` tells a text frame from a binary one.
    Frame { bytes: Bytes, text: bool },
    /// A frame with no envelope (a WebSocket ping or pong): proof of life only.
    Control,
    /// The peer left, with the close code observed (1006 without one).
    Closed(u16),
    /// The transport cannot be read any further: close with this code.
    Broken(Close),
}

/// The inbound side of a transport.
pub(crate) trait FrameSource: Send {
    /// Whether clients send frames on this transport: the heartbeat
    /// deadline applies only then (HB-DEADLINE, SSE-HEARTBEAT).
    const INBOUND: bool;
    /// The next inbound event.
    fn next(&mut self) -> impl Future<Output = Inbound> + Send;
    /// Reads until the peer is gone (completing a close handshake).
    fn drain(&mut self) -> impl Future<Output = ()> + Send;
}

/// The outbound side of a transport: frames already in the session's
/// [`Wire`] form, written as a `futures::Sink` writes (a frame is taken
/// only when the sink is ready for it, so an abandoned write loses
/// nothing it had accepted).
pub(crate) trait FrameSink: Send + Unpin {
    /// Ready to take a frame.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Takes a frame (after `poll_ready`).
    fn start_send(&mut self, frame: Bytes) -> io::Result<()>;
    /// Room for `frames` frames of `bytes` bytes in all, about to be sent.
    fn reserve(&mut self, _frames: usize, _bytes: usize) {}
    /// Writes what was taken.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Ends the connection: the encoded `disconnect` notice when the
    /// session has an encoding, then the transport's own close with `code`
    /// and `reason` (at most 123 bytes).
    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, reason: &'a str) -> Cold<'a, ()>;
}

/// HELLO-FIRST, HELLO-DEADLINE: waits for `hello`; `Ok(None)` when the
/// peer left first.
pub(crate) async fn read_hello<R: FrameSource>(
    env: &Env,
    source: &mut R,
    codec: Codec,
) -> Result<Option<Hello>, Close> {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(env.config.hello_timeout_ms);
    loop {
        let (bytes, text) = match tokio::time::timeout_at(deadline, source.next()).await {
            Err(_) => {
                return Err((
                    close::AUTH_TIMEOUT,
                    "no hello before the first-message deadline".into(),
                ))
            }
            Ok(Inbound::Closed(_)) => return Ok(None),
            Ok(Inbound::Broken(c)) => return Err(c),
            Ok(Inbound::Control) => continue,
            Ok(Inbound::Frame { bytes, text }) => (bytes, text),
        };
        env.metrics.received(&bytes);
        let envelope: v2::Envelope = codec
            .decode_frame(&bytes, Some(text))
            .map_err(decode_close)?;
        return match envelope.body {
            Some(Body::Hello(h)) => Ok(Some(Hello {
                token: h.token,
                features: h.features,
            })),
            // HELLO-FIRST, CLOSE-UNAUTHENTICATED.
            _ => Err((
                close::PROTOCOL_VIOLATION,
                "the first message must be hello".into(),
            )),
        };
    }
}

/// CLOSE-MALFORMED, CLOSE-UNKNOWN-TYPE, CLOSE-OVERSIZE: the close for a
/// frame that does not decode.
fn decode_close(e: DecodeError) -> Close {
    (e.close_code(), e.to_string())
}

/// Closes a connection whose session never opened: the notice (when the
/// wire is agreed), the close, then a short wait for the client's close.
pub(crate) async fn close_early<W: FrameSink, R: FrameSource>(
    env: &Env,
    sink: &mut W,
    source: &mut R,
    wire: Option<Wire>,
    (code, reason): Close,
) {
    tracing::info!(code, reason = %reason, "connection closed before its session opened");
    let request = CloseRequest {
        code,
        reason,
        retry_after_ms: None,
    };
    send_close(env, sink, wire, request).await;
    let _ = tokio::time::timeout(CLOSE_WAIT, source.drain()).await;
}

/// Runs an open session until its connection ends, then leaves its channels.
///
/// The session is boxed: it is a few hundred bytes, and each future it
/// passes through on the way here would otherwise reserve room for it in
/// every connection's task.
pub(crate) async fn run<W: FrameSink, R: FrameSource>(
    mut session: Box<Session>,
    sink: &mut W,
    source: &mut R,
) {
    let env = session.env.clone();
    let outbox = session.outbox.clone();
    {
        // Pinned in place (`tokio::pin!` on a binding would keep a second,
        // moved-from copy of each future in this task).
        let mut writer = std::pin::pin!(write_loop(&env, sink, &outbox));
        let mut reader = std::pin::pin!(read_loop(&mut session, source));
        // Each half polled when it was woken (`halves`), the reader first:
        // the frames a read brought are handled before the writer takes the
        // queue, so their replies share its write (a `subscribe` pipelined
        // behind `hello` is answered in `welcome`'s write).
        let peer_code = match halves::race(reader.as_mut(), writer.as_mut()).await {
            First::Reader(code) => {
                if outbox.closing().is_none() {
                    env.metrics.disconnect(code);
                }
                Some(code)
            }
            First::Writer(()) => None,
        };
        if peer_code.is_none() {
            let wait: Cold<'_, _> = Box::pin(tokio::time::timeout(CLOSE_WAIT, &mut reader));
            let _ = wait.await;
        }
        // One line per session end, with the code that ended it: the
        // server's close when it initiated one, else the client's.
        let (code, by) = match outbox.closing() {
            Some(c) => (c.code, "server"),
            None => (peer_code.unwrap_or(close::ABNORMAL), "client"),
        };
        tracing::info!(session = %outbox.session_id(), code, by, "session closed");
    }
    let leave: Cold<'_, ()> = Box::pin(session.leave_all());
    leave.await;
}

/// The reader half: returns the close code observed when the peer left.
async fn read_loop<R: FrameSource>(session: &mut Session, source: &mut R) -> u16 {
    let env = session.env.clone();
    let outbox = session.outbox.clone();
    let codec = Codec::new(outbox.wire().subprotocol())
        .with_max_message_bytes(env.config.max_message_bytes as usize);
    // One watch for ticks and shutdown (shutdown also ticks): one wait
    // future per connection instead of two.
    let mut tick = env.lifecycle.tick_rx();
    let mut closing = false;
    if env.lifecycle.is_shutting_down() {
        // Opened while the server stops taking sessions.
        shutdown(&outbox);
        closing = true;
    }
    loop {
        tokio::select! {
            _ = tick.changed(), if !closing => {
                if env.lifecycle.is_draining() {
                    shutdown(&outbox);
                    closing = true;
                } else if let Err((code, reason)) = session.tick(Instant::now(), R::INBOUND) {
                    outbox.close(code, reason, None);
                    closing = true;
                }
            }
            inbound = source.next() => {
                let (bytes, text) = match inbound {
                    Inbound::Closed(code) => return code,
                    Inbound::Broken((code, reason)) => {
                        outbox.close(code, reason, None);
                        // The source cannot be read past a broken frame;
                        // wait for the writer to send the close.
                        return std::future::pending().await;
                    }
                    Inbound::Control => {
                        // HB-ANY-FRAME: every frame proves liveness.
                        session.last_rx = Instant::now();
                        continue;
                    }
                    Inbound::Frame { bytes, text } => (bytes, text),
                };
                session.last_rx = Instant::now();
                if closing {
                    continue;
                }
                env.metrics.received(&bytes);
                // Shutdown: a request arriving after the intake closed is
                // not handled (no reply; the client resends it elsewhere).
                let Some(_in_flight) = env.lifecycle.enter() else {
                    continue;
                };
                // Boxed: request handling may wait on the engine, and its
                // state would otherwise enlarge every idle connection's task.
                let handled: Cold<'_, _> = Box::pin(process(session, codec, &bytes, text));
                if let Err((code, reason)) = handled.await {
                    outbox.close(code, reason, session.retry_after_ms(code));
                    closing = true;
                }
            }
        }
    }
}

/// CLOSE-SHUTDOWN; v2 reconnects are spread (CLOSE-RETRY-AFTER).
fn shutdown(outbox: &Outbox) {
    let retry =
        (outbox.wire().subprotocol().version == Version::V2).then(|| fastrand::u64(0..1000));
    outbox.close(close::GOING_AWAY, "server shutting down", retry);
}

async fn process(
    session: &mut Session,
    codec: Codec,
    bytes: &[u8],
    text: bool,
) -> Result<(), Close> {
    let envelope: v2::Envelope = codec
        .decode_frame(bytes, Some(text))
        .map_err(decode_close)?;
    let n = match &envelope.body {
        Some(Body::Batch(b)) => b.envelopes.len().max(1),
        _ => 1,
    };
    session.charge(n, Instant::now())?;
    session.handle(envelope).await
}

/// The writer half: drains the outbox, then sends the disconnect and close.
async fn write_loop<W: FrameSink>(env: &Env, sink: &mut W, outbox: &Outbox) {
    let mut buf = Frames::new();
    let mut writes: u8 = 0;
    // The last write carried more than one frame: deliveries arrive in
    // bursts, and the next wake-up waits for the rest of its burst.
    let mut bursting = false;
    let wire = outbox.wire();
    let c = &env.config;
    // v2 sessions that enabled `batch` get queued deliveries coalesced.
    let batching = match wire {
        Wire::WebSocket(sp)
            if sp.version == Version::V2 && outbox.features().has(BATCH) && c.batch_deliveries =>
        {
            Some(Batching {
                encoding: sp.encoding,
                max_batch: c.max_batch as usize,
                max_frame: 2 * c.max_message_bytes as usize,
            })
        }
        _ => None,
    };
    loop {
        // A flag rather than the request: the request stays in the outbox
        // (the first one wins), and the flag keeps it out of the write's state.
        let (mut closing, oldest) = {
            let (close, oldest) = outbox.take(&mut buf);
            (close.is_some(), oldest)
        };
        if !buf.is_empty() {
            let n = buf.len() as u64;
            bursting = n > 1;
            let bytes: usize = buf.iter().map(Bytes::len).sum();
            sink.reserve(buf.len(), bytes);
            let result = tokio::select! {
                r = write_frames(sink, &mut buf, batching) => r.map(|_| true),
                // Abandoned: whole frames stay buffered, the close follows them.
                _ = blocked_write_abort(outbox) => Ok(false),
            };
            buf.clear();
            env.metrics.messages_out(n);
            env.metrics
                .bytes_out
                .fetch_add(bytes as u64, Ordering::Relaxed);
            // Sampled, one write in QUEUE_WAIT_SAMPLE: reading the clock
            // for every write would cost each delivery ~10%.
            writes = writes.wrapping_add(1);
            if let (Ok(true), Some(oldest), 1) = (&result, oldest, writes % QUEUE_WAIT_SAMPLE) {
                env.metrics.queue_wait.observe(oldest.elapsed());
            }
            match result {
                // Frames pushed during the write may have had their wake-up
                // consumed by `blocked_write_abort`: take again before waiting.
                Ok(true) if !closing => continue,
                Ok(true) => {}
                Ok(false) => closing = true,
                Err(e) => {
                    tracing::debug!(error = %e, "write failed");
                    if let Some(c) = outbox.closing() {
                        env.metrics.disconnect(c.code);
                    }
                    return;
                }
            }
        }
        if let Some(c) = outbox.closing().filter(|_| closing) {
            return send_close(env, sink, Some(wire), c).await;
        }
        // Idle: an idle session holds no queue storage (`Outbox::take`
        // left the queue's own storage with it; this frees the writer's).
        buf.free();
        outbox.changed().await;
        // Woken by the first frame of a burst: yield once, so the runtime
        // polls the sockets and the publishers' tasks queue what they have
        // read before this writer takes the queue (more frames per write).
        // Not after a lone frame: a message that comes alone (a quiet
        // channel, a reply) is written at once rather than after every
        // other woken connection had its turn.
        if bursting {
            tokio::task::yield_now().await;
        }
    }
}

/// CLOSE-DISCONNECT-NOTICE, CLOSE-REASON-REQUIRED: the disconnect envelope,
/// then the transport's close. Boxed: it runs once per connection, so its
/// state should not enlarge every idle connection's future.
fn send_close<'a, W: FrameSink>(
    env: &'a Env,
    sink: &'a mut W,
    wire: Option<Wire>,
    c: CloseRequest,
) -> Cold<'a, ()> {
    Box::pin(async move {
        env.metrics.disconnect(c.code);
        let mut reason = c.reason;
        truncate(&mut reason, 123);
        let notice = wire.and_then(|w| {
            w.encode(&v2::Envelope {
                body: Some(Body::Disconnect(v2::Disconnect {
                    code: c.code as u32,
                    reason: reason.clone(),
                    retry_after_ms: c.retry_after_ms,
                })),
            })
            .ok()
        });
        // A slow consumer's notice waits behind the bytes in transit.
        let wait = if c.code == close::SLOW_CONSUMER {
            Duration::from_millis(env.config.slow_consumer_grace_ms)
        } else {
            CLOSE_WAIT
        };
        let _ = tokio::time::timeout(wait, sink.close(notice, c.code, &reason)).await;
    })
}

/// Resolves when a blocked write should be abandoned: at once for a slow
/// consumer (its socket is full), after a grace period for other closes.
async fn blocked_write_abort(outbox: &Outbox) {
    loop {
        outbox.changed().await;
        if let Some(code) = outbox.closing().map(|c| c.code) {
            if code != close::SLOW_CONSUMER {
                // Boxed: this future is built for every write, the timer
                // only on a close.
                Box::pin(tokio::time::sleep(BLOCKED_WRITE_GRACE)).await;
            }
            return;
        }
    }
}

/// Coalescing of queued frames into `batch` envelopes (v2, feature `batch`).
#[derive(Clone, Copy)]
struct Batching {
    encoding: courier_protocol::Encoding,
    max_batch: usize,
    max_frame: usize,
}

/// Hands every queued frame to the sink and flushes once. Written against
/// the poll methods: its state is the queue itself, so every connection's
/// task holds a few references here instead of an async body with a
/// message in flight.
fn write_frames<'a, W: FrameSink>(
    sink: &'a mut W,
    buf: &'a mut Frames,
    batching: Option<Batching>,
) -> impl Future<Output = io::Result<()>> + 'a {
    std::future::poll_fn(move |cx| {
        loop {
            // A frame leaves the queue only once the sink can take it, so a
            // write abandoned while pending loses nothing it had accepted.
            std::task::ready!(sink.poll_ready(cx))?;
            let Some(bytes) = next_frame(buf, batching) else {
                break;
            };
            sink.start_send(bytes)?;
        }
        sink.poll_flush(cx)
    })
}

/// The next frame to write: the queue's first, or with batching the
/// longest run of queued frames that fits one `batch` envelope (at most
/// `max_batch` entries, LIMIT-SERVER-FRAME).
fn next_frame(buf: &mut Frames, batching: Option<Batching>) -> Option<Bytes> {
    let first = buf.pop_front()?;
    let Some(b) = batching.filter(|_| !buf.is_empty()) else {
        return Some(first);
    };
    let mut size = BATCH_OVERHEAD + first.len() + BATCH_ENTRY_OVERHEAD;
    let mut frames = vec![first];
    while frames.len() < b.max_batch {
        let Some(next) = buf.pop_front() else { break };
        if size + next.len() + BATCH_ENTRY_OVERHEAD > b.max_frame {
            buf.push_front(next);
            break;
        }
        size += next.len() + BATCH_ENTRY_OVERHEAD;
        frames.push(next);
    }
    Some(if frames.len() > 1 {
        assemble_batch(b.encoding, &frames)
    } else {
        frames.pop().expect("one frame")
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}
