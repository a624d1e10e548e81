//! One WebSocket connection's socket and its send queue. The session's
//! writer appends each data frame, a 2–10-byte header and the payload the
//! hub encoded once per publish, to one contiguous buffer that goes out in
//! as few writes as the socket allows; the reader ([`super::ws_read`])
//! appends its replies (pong, the close reply) to the same buffer between
//! whole frames, so the two never interleave on the wire.
//!
//! A server frame is unmasked, so its header depends only on the opcode and
//! the payload length, and nothing of the payload is checked again per
//! connection (a JSON frame's text is UTF-8 as the codec wrote it). Copying
//! the payload into the buffer (~240 bytes, a few nanoseconds) was measured
//! faster than handing the kernel a vectored write of two slices per frame:
//! the kernel then copies one contiguous run (docs/benchmarks.md). A frame
//! that comes alone with nothing queued is the exception: header and shared
//! payload go out in one vectored write, with no send buffer at all.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::ws_read::{ReadState, OP_BINARY, OP_CLOSE, OP_PONG, OP_TEXT};
use crate::session::driver::{Cold, FrameSink};

/// Unwritten bytes the writer may hold for the socket before `poll_ready`
/// waits for it: frames beyond it stay in the session's outbox, whose bound
/// detects a slow consumer (LIMIT-SLOW-CONSUMER). Copied bytes, so this is
/// also the most a connection whose peer stopped reading holds here.
const WRITE_LIMIT: usize = 32 * 1024;

/// The header of a final (unfragmented), unmasked server frame (RFC 6455
/// 5.2) with a payload of `len` bytes: the bytes and how many are used.
fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(len) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// Appends a final, unmasked server frame.
fn put_frame(buf: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let (h, n) = header(opcode, payload.len());
    buf.extend_from_slice(&h[..n]);
    buf.extend_from_slice(payload);
}

pub(super) struct State<S> {
    pub(super) io: S,
    /// What the reader keeps between reads.
    pub(super) read: ReadState,
    /// Whole frames in wire order; `out[written..]` is still to write.
    out: Vec<u8>,
    written: usize,
    /// A close frame is queued: no frame may follow it (RFC 6455 5.5.1).
    closed: bool,
}

impl<S: AsyncWrite + Unpin> State<S> {
    /// Bytes queued and not yet written.
    pub(super) fn unwritten(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes queued frames until none is left or the socket is full.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.out.len() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.out[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        if self.out.capacity() > 0 {
            // All written: an idle connection holds no write storage (the
            // allocator hands the same block to the next burst, which
            // measured faster than keeping one per connection).
            self.out = Vec::new();
            self.written = 0;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Writes a frame that came alone straight from the shared payload
    /// when nothing is queued: header and payload in one vectored write,
    /// no copy and no send buffer (a quiet channel, the fixed-rate case,
    /// a reply). What the socket does not take is queued as usual.
    fn write_lone(&mut self, cx: &mut Context<'_>, opcode: u8, payload: &[u8]) -> io::Result<()> {
        if self.unwritten() == 0 && self.io.is_write_vectored() {
            let (h, n) = header(opcode, payload.len());
            let bufs = [io::IoSlice::new(&h[..n]), io::IoSlice::new(payload)];
            let wrote = match Pin::new(&mut self.io).poll_write_vectored(cx, &bufs) {
                Poll::Ready(r) => r?,
                Poll::Pending => 0,
            };
            if wrote == n + payload.len() {
                return Ok(());
            }
            self.out.clear();
            self.written = wrote;
        }
        put_frame(&mut self.out, opcode, payload);
        Ok(())
    }

    /// Queues frames behind the ones queued.
    fn queue(&mut self, frames: &mut Vec<u8>) {
        if self.unwritten() == 0 {
            // The usual case: take the storage instead of copying.
            self.out = std::mem::take(frames);
            self.written = 0;
        } else {
            self.out.extend_from_slice(frames);
            frames.clear();
        }
    }

    /// Queues a control frame the reader answers with, behind the frames
    /// queued (at most [`WRITE_LIMIT`] bytes: RFC 6455 5.5.1 lets a close
    /// reply wait for the message being sent). Nothing follows a close.
    /// A pong is dropped while [`WRITE_LIMIT`] bytes wait for the socket:
    /// a peer that sends pings and never reads would otherwise grow the
    /// queue without bound (RFC 6455 5.5.3 lets an endpoint answer only
    /// the most recent of several pings).
    pub(super) fn control(&mut self, frame: &[u8]) {
        if self.closed || frame.is_empty() {
            return;
        }
        let opcode = frame[0] & 0x0f;
        if opcode == OP_PONG && self.unwritten() >= WRITE_LIMIT {
            return;
        }
        self.closed = opcode == OP_CLOSE;
        self.out.extend_from_slice(frame);
    }
}

/// The socket's state, shared by the connection's reader and writer.
pub(super) type Shared<S> = Arc<Mutex<State<S>>>;

pub(super) fn lock<S>(s: &Shared<S>) -> MutexGuard<'_, State<S>> {
    s.lock().unwrap_or_else(|e| e.into_inner())
}

/// Splits a connection's socket into the state the reader polls
/// ([`super::ws_read`]) and the session's frame writer. Both run in the
/// connection's one task, so the lock is never contended; it is taken once
/// per read and once per batch of written frames.
pub(super) fn split<S>(io: S, text: bool, read: ReadState) -> (Shared<S>, WsSink<S>) {
    let shared = Arc::new(Mutex::new(State {
        io,
        read,
        out: Vec::new(),
        written: 0,
        closed: false,
    }));
    let sink = WsSink {
        shared: shared.clone(),
        lone: None,
        pending: Vec::new(),
        unwritten: 0,
        opcode: if text { OP_TEXT } else { OP_BINARY },
    };
    (shared, sink)
}

/// The writing half: session frames as text (JSON) or binary data frames.
pub(super) struct WsSink<S> {
    shared: Shared<S>,
    /// The one frame taken since the last flush, not yet framed: written
    /// from the shared payload if no other frame joins it.
    lone: Option<Bytes>,
    /// Frames taken since the last flush, framed, handed to the socket
    /// together.
    pending: Vec<u8>,
    /// The socket's unwritten bytes as of the last flush.
    unwritten: usize,
    opcode: u8,
}

impl<S: AsyncWrite + Unpin> WsSink<S> {
    /// Hands the pending frames to the socket and writes; `closing` marks
    /// the last of them as the close.
    fn flush(&mut self, cx: &mut Context<'_>, closing: bool) -> Poll<io::Result<()>> {
        let mut state = lock(&self.shared);
        if let Some(frame) = self.lone.take() {
            if state.closed {
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            state.write_lone(cx, self.opcode, &frame)?;
        }
        if !self.pending.is_empty() {
            if state.closed {
                // A close is queued (ours, or the reply to the peer's): the
                // connection takes no more frames.
                self.pending = Vec::new();
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            state.queue(&mut self.pending);
            state.closed = closing;
        }
        // With nothing new to hand over, a flush still writes what is
        // queued: a close frame that did not fit the socket at once goes out
        // when the writer is polled again.
        let result = state.poll_write_out(cx);
        self.unwritten = state.unwritten();
        result
    }

    /// Frames the lone frame into `pending`: another frame follows it.
    fn unlone(&mut self) {
        if let Some(first) = self.lone.take() {
            put_frame(&mut self.pending, self.opcode, &first);
        }
    }
}

impl<S: AsyncWrite + Unpin + Send> FrameSink for WsSink<S> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let lone = self.lone.as_ref().map_or(0, Bytes::len);
        if self.pending.len() + lone + self.unwritten >= WRITE_LIMIT {
            if let Poll::Ready(r) = self.flush(cx, false) {
                r?;
            }
            if self.unwritten >= WRITE_LIMIT {
                return Poll::Pending;
            }
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(&mut self, frame: Bytes) -> io::Result<()> {
        // A text frame's payload is JSON from the codec (serde_json writes
        // UTF-8 only): no validation per delivery.
        if self.pending.is_empty() && self.lone.is_none() {
            self.lone = Some(frame);
            return Ok(());
        }
        self.unlone();
        put_frame(&mut self.pending, self.opcode, &frame);
        Ok(())
    }

    fn reserve(&mut self, frames: usize, bytes: usize) {
        if frames < 2 {
            // A lone frame needs no send buffer.
            return;
        }
        let want = (bytes + 10 * frames).min(2 * WRITE_LIMIT);
        self.pending
            .reserve(want.saturating_sub(self.pending.len()));
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush(cx, false)
    }

    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, reason: &'a str) -> Cold<'a, ()> {
        Box::pin(async move {
            if let Some(notice) = notice {
                let _ = self.start_send(notice);
            }
            self.unlone();
            // CLOSE-REASON-REQUIRED: the caller keeps `reason` within 123
            // bytes, so the payload fits a control frame (125).
            let mut payload = Vec::with_capacity(2 + reason.len());
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
            put_frame(&mut self.pending, OP_CLOSE, &payload);
            let _ = std::future::poll_fn(|cx| self.flush(cx, true)).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn headers_follow_rfc6455_lengths() {
        for (len, head) in [
            (0usize, vec![0x82, 0]),
            (125, vec![0x82, 125]),
            (126, vec![0x82, 126, 0, 126]),
            (65_535, vec![0x82, 126, 0xff, 0xff]),
            (65_536, vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut f = Vec::new();
            put_frame(&mut f, OP_BINARY, &vec![7u8; len]);
            assert_eq!(&f[..head.len()], &head[..], "len {len}");
            assert_eq!(f.len(), head.len() + len);
        }
    }

    /// Frames that come alone are written straight from their payloads
    /// until the socket fills, then partly, then behind what is unwritten:
    /// the peer reads every frame whole and in order.
    #[tokio::test]
    async fn lone_frames_through_a_socket_that_fills_arrive_whole() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connect = tokio::spawn(async move {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.set_recv_buffer_size(4096).unwrap();
            socket.connect(addr).await.unwrap()
        });
        let (server, _) = listener.accept().await.unwrap();
        let mut client = connect.await.unwrap();
        let (_shared, mut sink) = split(server, false, ReadState::default());
        let mut expected = Vec::new();
        let (mut direct, mut held) = (0, 0);
        for i in 0..24_000u32 {
            let p = Bytes::from(vec![(i % 251) as u8; 100 + (i as usize * 7) % 300]);
            put_frame(&mut expected, OP_BINARY, &p);
            sink.start_send(p).unwrap();
            // One attempt, without waiting for the socket.
            let once = std::future::poll_fn(|cx| Poll::Ready(sink.poll_flush(cx))).await;
            match once {
                Poll::Ready(r) => r.unwrap(),
                Poll::Pending => held += 1,
            }
            if sink.unwritten == 0 {
                direct += 1;
            }
        }
        assert!(direct > 0 && held > 0, "direct {direct}, held {held}");
        let total = expected.len();
        let reader = tokio::spawn(async move {
            let mut got = vec![0u8; total];
            client.read_exact(&mut got).await.unwrap();
            got
        });
        std::future::poll_fn(|cx| sink.poll_flush(cx))
            .await
            .unwrap();
        assert!(reader.await.unwrap() == expected, "bytes differ");
    }

    /// Frames written through a socket that takes a few bytes per write
    /// arrive whole and in order, the close last, nothing after it.
    #[tokio::test]
    async fn partial_writes_keep_frames_whole() {
        let (a, mut b) = tokio::io::duplex(7);
        let (shared, mut sink) = split(a, false, ReadState::default());
        let payloads: Vec<Bytes> = (0..50u8)
            .map(|i| Bytes::from(vec![i; 1 + 3 * i as usize]))
            .collect();
        let mut expected = Vec::new();
        for p in &payloads {
            put_frame(&mut expected, OP_BINARY, p);
            sink.start_send(p.clone()).unwrap();
        }
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        });
        let writer = async {
            std::future::poll_fn(|cx| sink.poll_flush(cx))
                .await
                .unwrap();
            // A pong queued between data frames and the close.
            lock(&shared).control(&[0x8a, 1, b'p']);
            sink.close(None, 1000, "bye").await;
            // A pong after the close is dropped.
            lock(&shared).control(&[0x8a, 0]);
        };
        writer.await;
        drop(sink);
        drop(shared);
        let got = reader.await.unwrap();
        expected.extend_from_slice(&[0x8a, 1, b'p']);
        expected.extend_from_slice(&[0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(got, expected);
    }
}
