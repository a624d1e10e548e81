//! One WebSocket connection's socket and its send queue. The session's
//! writer sends data frames as a WebSocket header in front of the shared
//! payload `Bytes` the hub handed to every subscriber, many frames per
//! vectored write; the reader ([`super::ws_read`]) queues its replies
//! (pong, the close reply) into the same queue between whole frames, so
//! the two never interleave on the wire.
//!
//! A server frame is unmasked, so its header is 2–10 bytes that depend
//! only on the opcode and the payload length: nothing of the payload is
//! copied or checked again per connection (a JSON frame's text is UTF-8 as
//! the codec wrote it).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::ws_read::ReadState;
use crate::session::driver::{Cold, FrameSink};

/// Unwritten bytes the writer may hand the socket before `poll_ready`
/// waits for the socket: frames beyond it stay in the session's outbox,
/// whose bound detects a slow consumer (LIMIT-SLOW-CONSUMER).
const WRITE_LIMIT: usize = 64 * 1024;
/// I/O slices per vectored write (two per frame: header and payload).
const MAX_SLICES: usize = 256;

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;

/// A frame waiting for the socket: its header and its payload.
struct Out {
    head: [u8; 10],
    head_len: u8,
    body: Bytes,
}

impl Out {
    /// A final (unfragmented), unmasked server frame.
    fn frame(opcode: u8, body: Bytes) -> Self {
        let mut head = [0u8; 10];
        head[0] = 0x80 | opcode;
        let len = body.len();
        let head_len = if len < 126 {
            head[1] = len as u8;
            2
        } else if let Ok(len) = u16::try_from(len) {
            head[1] = 126;
            head[2..4].copy_from_slice(&len.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Out {
            head,
            head_len,
            body,
        }
    }

    /// A whole control frame the reader formatted.
    fn raw(bytes: &[u8]) -> Self {
        Out {
            head: [0; 10],
            head_len: 0,
            body: Bytes::copy_from_slice(bytes),
        }
    }

    fn len(&self) -> usize {
        self.head_len as usize + self.body.len()
    }
}

pub(super) struct State<S> {
    pub(super) io: S,
    /// What the reader keeps between reads.
    pub(super) read: ReadState,
    /// Whole frames in wire order; the first may be partly written.
    out: VecDeque<Out>,
    /// Bytes of `out`'s first frame already written.
    written: usize,
    /// Bytes of `out` not yet written.
    unwritten: usize,
    /// A close frame is queued: no frame may follow it (RFC 6455 5.5.1).
    closed: bool,
}

impl<S: AsyncWrite + Unpin> State<S> {
    /// Bytes queued and not yet written.
    pub(super) fn unwritten(&self) -> usize {
        self.unwritten
    }

    /// Writes queued frames until none is left or the socket is full.
    pub(super) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut n = 0;
            let mut skip = self.written;
            for f in &self.out {
                if n + 2 > MAX_SLICES {
                    break;
                }
                let head = &f.head[..f.head_len as usize];
                if skip < head.len() {
                    slices[n] = IoSlice::new(&head[skip..]);
                    n += 1;
                    skip = 0;
                } else {
                    skip -= head.len();
                }
                if skip < f.body.len() {
                    slices[n] = IoSlice::new(&f.body[skip..]);
                    n += 1;
                }
                skip = 0;
            }
            let wrote = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(wrote);
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn advance(&mut self, mut n: usize) {
        self.unwritten -= n;
        while let Some(f) = self.out.front() {
            let left = f.len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.written = 0;
            self.out.pop_front();
        }
    }

    /// Queues frames behind the ones queued.
    fn queue(&mut self, frames: &mut VecDeque<Out>) {
        self.unwritten += frames.iter().map(Out::len).sum::<usize>();
        if self.out.is_empty() {
            // The usual case: hand the storage over instead of copying.
            std::mem::swap(&mut self.out, frames);
        } else {
            self.out.append(frames);
        }
    }

    /// Queues a control frame the reader answers with: a pong goes right
    /// after the frame being written (RFC 6455 5.5.3: "as soon as
    /// practical"); a close reply drops the data frames not started, so
    /// nothing follows it.
    pub(super) fn control(&mut self, bytes: &[u8]) {
        if self.closed || bytes.is_empty() {
            return;
        }
        let keep = usize::from(self.written > 0);
        let out = Out::raw(bytes);
        if carries_close(bytes) {
            self.closed = true;
            for dropped in self.out.drain(keep..) {
                self.unwritten -= dropped.len();
            }
            self.unwritten += out.len();
            self.out.push_back(out);
        } else {
            self.unwritten += out.len();
            self.out.insert(keep, out);
        }
    }
}

/// Whether the unmasked frames in `bytes` include a close frame.
fn carries_close(mut bytes: &[u8]) -> bool {
    while bytes.len() >= 2 {
        if bytes[0] & 0x0f == OP_CLOSE {
            return true;
        }
        let (ext, len) = match bytes[1] & 0x7f {
            126 if bytes.len() >= 4 => (2, u16::from_be_bytes([bytes[2], bytes[3]]) as usize),
            127 if bytes.len() >= 10 => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&bytes[2..10]);
                (8, u64::from_be_bytes(b) as usize)
            }
            126 | 127 => return false,
            n => (0, n as usize),
        };
        bytes = bytes.get(2 + ext + len..).unwrap_or_default();
    }
    false
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
        out: VecDeque::new(),
        written: 0,
        unwritten: 0,
        closed: false,
    }));
    let sink = WsSink {
        shared: shared.clone(),
        batch: VecDeque::new(),
        batch_bytes: 0,
        unwritten: 0,
        opcode: if text { OP_TEXT } else { OP_BINARY },
    };
    (shared, sink)
}

/// The writing half: session frames as text (JSON) or binary data frames.
pub(super) struct WsSink<S> {
    shared: Shared<S>,
    /// Frames taken since the last flush, handed to the socket together.
    batch: VecDeque<Out>,
    batch_bytes: usize,
    /// The socket's unwritten bytes as of the last flush.
    unwritten: usize,
    opcode: u8,
}

impl<S: AsyncWrite + Unpin> WsSink<S> {
    /// Hands the batch to the socket and writes; `closing` marks the batch's
    /// last frame as the close.
    fn flush(&mut self, cx: &mut Context<'_>, closing: bool) -> Poll<io::Result<()>> {
        let mut state = lock(&self.shared);
        if !self.batch.is_empty() {
            if state.closed {
                // A close is queued (ours, or the reply to the peer's): the
                // connection takes no more frames.
                self.batch.clear();
                self.batch_bytes = 0;
                return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
            }
            state.queue(&mut self.batch);
            state.closed = closing;
            self.batch_bytes = 0;
        }
        // With nothing new to hand over, a flush still writes what is
        // queued: a close frame that did not fit the socket at once goes out
        // when the writer is polled again.
        let result = state.poll_write_out(cx);
        self.unwritten = state.unwritten;
        result
    }
}

impl<S: AsyncWrite + Unpin + Send> FrameSink for WsSink<S> {
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.batch_bytes + self.unwritten >= WRITE_LIMIT {
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
        self.batch_bytes += frame.len();
        self.batch.push_back(Out::frame(self.opcode, frame));
        Ok(())
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flush(cx, false)
    }

    fn release(&mut self) {
        self.batch = VecDeque::new();
        let mut state = lock(&self.shared);
        if state.out.is_empty() {
            state.out = VecDeque::new();
        }
    }

    fn close<'a>(&'a mut self, notice: Option<Bytes>, code: u16, reason: &'a str) -> Cold<'a, ()> {
        Box::pin(async move {
            if let Some(notice) = notice {
                let _ = self.start_send(notice);
            }
            // CLOSE-REASON-REQUIRED: the caller keeps `reason` within 123
            // bytes, so the payload fits a control frame (125).
            let mut payload = Vec::with_capacity(2 + reason.len());
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
            self.batch.push_back(Out::frame(OP_CLOSE, payload.into()));
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
            let f = Out::frame(OP_BINARY, Bytes::from(vec![0u8; len]));
            assert_eq!(&f.head[..f.head_len as usize], &head[..], "len {len}");
        }
    }

    #[test]
    fn close_frames_are_found_behind_others() {
        let pong = [0x8a, 1, b'x'];
        let close = [0x88, 2, 0x03, 0xe8];
        assert!(!carries_close(&pong));
        assert!(carries_close(&close));
        assert!(carries_close(&[&pong[..], &close[..]].concat()));
    }

    /// Frames written through a socket that takes a few bytes per write
    /// arrive whole and in order, with a pong between two frames and
    /// nothing after a close.
    #[tokio::test]
    async fn partial_writes_keep_frames_whole() {
        let (a, mut b) = tokio::io::duplex(7);
        let (shared, mut sink) = split(a, false, ReadState::default());
        let payloads: Vec<Bytes> = (0..50u8)
            .map(|i| Bytes::from(vec![i; 1 + 3 * i as usize]))
            .collect();
        let mut expected = Vec::new();
        for p in &payloads {
            let f = Out::frame(OP_BINARY, p.clone());
            expected.extend_from_slice(&f.head[..f.head_len as usize]);
            expected.extend_from_slice(p);
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
            sink.close(None, 1000, "bye").await;
            // A pong after the close is dropped.
            lock(&shared).control(&[0x8a, 0]);
        };
        writer.await;
        drop(sink);
        drop(shared);
        let got = reader.await.unwrap();
        expected.extend_from_slice(&[0x88, 5, 0x03, 0xe8, b'b', b'y', b'e']);
        assert_eq!(got, expected);
    }
}
