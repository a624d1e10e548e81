//! A connection's bounded outbound queue (LIMIT-SLOW-CONSUMER). Replies and
//! deliveries enter it in order; the connection's writer drains it in
//! batches. Overflow closes the connection with 4100 and frees the queue,
//! so the memory held for a slow reader never grows past the bound.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use courier_protocol::{close, v2, Codec, Subprotocol};

use crate::broker::Subscriber;
use crate::frame::SharedFrame;

/// Feature flags of a session, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Features(pub u8);

impl Features {
    pub const PRESENCE: u8 = 1;
    pub const EPHEMERAL: u8 = 2;
    pub const RPC: u8 = 4;
    pub const BATCH: u8 = 8;
    pub const REAUTH: u8 = 16;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

/// One queued frame.
pub(crate) enum Out {
    /// An envelope encoded for this session alone, with its type name.
    Own(Bytes, &'static str),
    /// A frame shared with other sessions, for a transport that needs the
    /// envelope itself (SSE writes event ids from it).
    Shared(Arc<SharedFrame>),
    /// A frame shared with other sessions, already in this session's
    /// encoding: the refcounted bytes are taken at delivery, so the writer
    /// touches neither the envelope nor its `Arc` (one refcount pair per
    /// delivery instead of three).
    Encoded(Bytes),
}

/// Why and how the connection is closing.
#[derive(Debug, Clone)]
pub(crate) struct CloseRequest {
    pub code: u16,
    pub reason: String,
    pub retry_after_ms: Option<u64>,
}

struct Inner {
    queue: VecDeque<Out>,
    close: Option<CloseRequest>,
    /// The writer waiting in [`Outbox::changed`]. One waiter per outbox
    /// (its connection's writer), so a slot under the queue's lock replaces
    /// a `Notify`: no second lock per push, and an 8-byte wait future
    /// instead of a 64-byte `Notified` in every connection's task.
    waker: Option<Waker>,
    /// Something was queued into an empty queue, or a close was requested,
    /// since `changed` last resolved (a permit, as `Notify::notify_one` keeps).
    signalled: bool,
}

impl Inner {
    /// Records a change; the returned waker must be woken after unlocking.
    fn signal(&mut self) -> Option<Waker> {
        self.signalled = true;
        self.waker.take()
    }
}

/// The outbound side of a session, shared with the broker (as its
/// [`Subscriber`]) and with RPC tasks.
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    member: v2::PresenceMember,
    codec: Codec,
    features: Features,
    capacity: usize,
    unbounded: bool,
    keep_envelopes: bool,
}

impl Outbox {
    /// `keep_envelopes`: queue shared frames as envelopes ([`Out::Shared`])
    /// rather than as this session's bytes ([`Out::Encoded`]).
    pub(crate) fn new(
        member: v2::PresenceMember,
        subprotocol: Subprotocol,
        features: Features,
        capacity: usize,
        unbounded: bool,
        keep_envelopes: bool,
    ) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                close: None,
                waker: None,
                signalled: false,
            }),
            member,
            codec: Codec::new(subprotocol),
            features,
            capacity,
            unbounded,
            keep_envelopes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn member_ref(&self) -> &v2::PresenceMember {
        &self.member
    }

    pub(crate) fn subprotocol(&self) -> Subprotocol {
        self.codec.subprotocol()
    }

    pub(crate) fn features(&self) -> Features {
        self.features
    }

    /// Queues a frame; `false` when the connection is closing or the frame
    /// overflowed the queue (which starts a 4100 close).
    pub(crate) fn push(&self, out: Out) -> bool {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return false;
        }
        if inner.queue.len() >= self.capacity && !self.unbounded {
            // LIMIT-SLOW-CONSUMER: close rather than drop a message; the
            // queued frames are discarded and the disconnect goes first.
            inner.queue = VecDeque::new();
            inner.close = Some(CloseRequest {
                code: close::SLOW_CONSUMER,
                reason: format!("slow consumer: more than {} frames queued", self.capacity),
                retry_after_ms: None,
            });
            let waker = inner.signal();
            drop(inner);
            if let Some(w) = waker {
                w.wake();
            }
            return false;
        }
        let was_empty = inner.queue.is_empty();
        inner.queue.push_back(out);
        // Only the first frame of a batch wakes the writer: it takes the
        // whole queue.
        let waker = if was_empty { inner.signal() } else { None };
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// Encodes and queues an envelope for this session.
    pub(crate) fn send(&self, envelope: &v2::Envelope) -> bool {
        use courier_protocol::WireEnvelope;
        let ty = envelope.type_name().unwrap_or("unknown");
        match self.codec.encode(envelope) {
            Ok(bytes) => self.push(Out::Own(bytes, ty)),
            Err(e) => {
                // Only reachable for v2-only types on v1, which callers gate.
                tracing::warn!(error = %e, "dropping an envelope that cannot be encoded for this session");
                true
            }
        }
    }

    /// Starts closing with `code`; the first request wins. Frames already
    /// queued are still written before the disconnect, except for 4100.
    pub(crate) fn close(&self, code: u16, reason: impl Into<String>, retry_after_ms: Option<u64>) {
        let mut inner = self.lock();
        if inner.close.is_none() {
            inner.close = Some(CloseRequest {
                code,
                reason: reason.into(),
                retry_after_ms,
            });
        }
        let waker = inner.signal();
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// The pending close, if any.
    pub(crate) fn closing(&self) -> Option<CloseRequest> {
        self.lock().close.clone()
    }

    /// Moves the queued frames into `buf` (which must be empty) and returns
    /// the pending close, if any. An empty queue keeps its storage and
    /// `buf` keeps its own, so a writer that frees `buf` before waiting
    /// leaves an idle session holding no queue storage at all.
    pub(crate) fn take(&self, buf: &mut VecDeque<Out>) -> Option<CloseRequest> {
        let mut inner = self.lock();
        if !inner.queue.is_empty() {
            std::mem::swap(&mut inner.queue, buf);
        }
        inner.close.clone()
    }

    /// Frames currently queued (metrics).
    pub(crate) fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Waits until something was queued or a close was requested since the
    /// last time this resolved. For the connection's writer only: a second
    /// concurrent waiter would take the first one's wake-up.
    pub(crate) async fn changed(&self) {
        std::future::poll_fn(|cx| self.poll_changed(cx)).await
    }

    fn poll_changed(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if std::mem::take(&mut inner.signalled) {
            return Poll::Ready(());
        }
        match &inner.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => inner.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl Subscriber for Outbox {
    fn member(&self) -> &v2::PresenceMember {
        &self.member
    }
    fn wants_presence(&self) -> bool {
        self.features.has(Features::PRESENCE)
    }
    fn wants_ephemeral(&self) -> bool {
        self.features.has(Features::EPHEMERAL)
    }
    fn deliver(&self, frame: &Arc<SharedFrame>) -> bool {
        if self.keep_envelopes {
            return self.push(Out::Shared(frame.clone()));
        }
        match frame.bytes(self.subprotocol()) {
            Ok(bytes) => self.push(Out::Encoded(bytes)),
            Err(e) => {
                // Shared frames are message, presence_event and ephemeral,
                // which every version has; kept as the writer did before.
                tracing::warn!(error = %e, "dropping a shared frame that cannot be encoded for this session");
                true
            }
        }
    }
    fn reply(&self, envelope: v2::Envelope) -> bool {
        self.send(&envelope)
    }
}
