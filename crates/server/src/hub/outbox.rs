//! A session's send queue: the hub's deliveries and the session's own
//! replies enter it in order, already encoded for the session's [`Wire`];
//! the connection's writer drains it in batches. Overflow closes the
//! connection with 4100 and frees the queue, so the memory held for a slow
//! reader never grows past the bound.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use courier_protocol::{close, v2};

use super::frames::Frames;
use crate::features::Features;
use crate::frame::Wire;

/// Why and how the connection is closing.
#[derive(Debug, Clone)]
pub(crate) struct CloseRequest {
    pub code: u16,
    pub reason: String,
    pub retry_after_ms: Option<u64>,
}

struct Inner {
    queue: Frames,
    /// When the oldest queued frame was queued (send-queue wait metric).
    oldest: Option<Instant>,
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

/// The outbound side of a session, shared by its connection's writer, the
/// hub (deliveries) and the session's RPC tasks.
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    session_id: Arc<str>,
    wire: Wire,
    features: Features,
    capacity: usize,
    /// Fault `ungated-feature-events`: events of every feature reach this
    /// session, whatever it enabled.
    #[cfg(feature = "faults")]
    pub(crate) ungated: bool,
}

impl Outbox {
    /// An empty queue of `capacity` frames for session `session_id`.
    pub(crate) fn new(
        session_id: Arc<str>,
        wire: Wire,
        features: Features,
        capacity: usize,
    ) -> Self {
        Outbox {
            inner: Mutex::new(Inner {
                queue: Frames::new(),
                oldest: None,
                close: None,
                waker: None,
                signalled: false,
            }),
            session_id,
            wire,
            features,
            capacity,
            #[cfg(feature = "faults")]
            ungated: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn session_id(&self) -> &Arc<str> {
        &self.session_id
    }

    pub(crate) fn wire(&self) -> Wire {
        self.wire
    }

    pub(crate) fn features(&self) -> Features {
        self.features
    }

    /// Whether events of `feature` (presence events, ephemerals) reach this
    /// session: only when it enabled the feature (FEATURE-GATED).
    pub(crate) fn receives(&self, feature: crate::features::Feature) -> bool {
        #[cfg(feature = "faults")]
        if self.ungated {
            return true;
        }
        self.features.has(feature)
    }

    /// Queues a frame; `false` when the connection is closing or the frame
    /// overflowed the queue (which starts a 4100 close).
    pub(crate) fn push(&self, frame: Bytes) -> bool {
        self.push_at(frame, Instant::now())
    }

    /// [`Outbox::push`] of a frame produced at `now` (the hub reads the
    /// clock once per message, not once per recipient).
    pub(crate) fn push_at(&self, frame: Bytes, now: Instant) -> bool {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return false;
        }
        if inner.queue.len() >= self.capacity {
            drop(inner);
            self.overflow();
            return false;
        }
        let was_empty = inner.queue.is_empty();
        if was_empty {
            inner.oldest = Some(now);
        }
        inner.queue.push_back(frame);
        // Only the first frame of a batch wakes the writer: it takes the
        // whole queue.
        let waker = if was_empty { inner.signal() } else { None };
        drop(inner);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// LIMIT-SLOW-CONSUMER: closes rather than drop a message; the queued
    /// frames are discarded and the disconnect goes first.
    pub(crate) fn overflow(&self) {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return;
        }
        inner.queue.free();
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
    }

    /// Frames the queue holds before [`Outbox::overflow`].
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Encodes and queues an envelope for this session.
    pub(crate) fn send(&self, envelope: &v2::Envelope) -> bool {
        match self.wire.encode(envelope) {
            Ok(bytes) => self.push(bytes),
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
    /// the pending close, if any, and when the oldest moved frame was queued. An empty queue keeps its storage and
    /// `buf` keeps its own, so a writer that frees `buf` before waiting
    /// leaves an idle session holding no queue storage at all.
    pub(crate) fn take(&self, buf: &mut Frames) -> (Option<CloseRequest>, Option<Instant>) {
        let mut inner = self.lock();
        if !inner.queue.is_empty() {
            std::mem::swap(&mut inner.queue, buf);
        }
        (inner.close.clone(), inner.oldest.take())
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
