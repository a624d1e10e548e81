//! The reading side of a server WebSocket (RFC 6455 section 5): client
//! frames parsed from the bytes read, unmasked into the message's own
//! buffer; fragmented messages assembled; pings answered, the close
//! handshake completed and every violation turned into the close the
//! session core sends (4000, or 1009 for an oversized message, judged at
//! the frame header before its payload is read).
//!
//! It owns no storage while a connection is idle: reads go to a buffer on
//! the stack, and only the bytes of a frame that has not fully arrived are
//! kept on the heap until the rest comes. Replies (pong, the close reply)
//! join the connection's send queue between whole frames
//! ([`super::ws_socket`]).

use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use courier_protocol::close;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ws_socket::{lock, Shared};
use crate::session::driver::Inbound;
use crate::session::Close;

/// Bytes one read takes at most: the reads go to a buffer on the stack of
/// the read, not in the connection's state (`ws_read_buffer_bytes` is
/// capped at this).
const MAX_READ: usize = 16 * 1024;

// RFC 6455 5.2 opcodes, for the reader and for the writer (`ws_socket`).
const OP_CONTINUATION: u8 = 0x0;
pub(super) const OP_TEXT: u8 = 0x1;
pub(super) const OP_BINARY: u8 = 0x2;
pub(super) const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
pub(super) const OP_PONG: u8 = 0xA;

/// What the reader keeps between reads.
#[derive(Default)]
pub(super) struct ReadState {
    /// Bytes read and not yet parsed (a frame that has not fully arrived);
    /// no storage when empty.
    buf: BytesMut,
    /// A fragmented text (`true`) or binary message being assembled.
    partial: Option<(bool, BytesMut)>,
    /// The largest message accepted (LIMIT-MESSAGE-SIZE), in bytes.
    max: usize,
    /// Bytes asked for per read (`ws_read_buffer_bytes`, at most [`MAX_READ`]).
    chunk: usize,
}

/// One frame parsed from the bytes read.
enum Frame {
    /// A whole data message.
    Message {
        bytes: Bytes,
        text: bool,
    },
    /// A fragment of a message still in progress, or a pong.
    Nothing,
    Ping(Bytes),
    Close(Option<u16>),
}

fn violation(reason: impl Into<String>) -> Close {
    (
        close::BAD_FRAME,
        format!("WebSocket protocol error: {}", reason.into()),
    )
}

/// Close codes a peer may send (RFC 6455 7.4): not 1004–1006, 1015, the
/// unassigned 1016–2999 or anything outside 1000–4999.
fn close_code_allowed(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// XORs `data` with the frame's masking key (RFC 6455 5.3).
fn unmask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
}

impl ReadState {
    /// A reader of messages up to `max` bytes, reading `chunk` bytes at a time.
    pub(super) fn new(max: usize, chunk: usize) -> Self {
        ReadState {
            max,
            chunk: chunk.clamp(1, MAX_READ),
            ..ReadState::default()
        }
    }

    /// Starts with `bytes` already read: what the peer sent behind its
    /// request head.
    pub(super) fn with_read(mut self, bytes: &[u8]) -> Self {
        if !bytes.is_empty() {
            self.buf.extend_from_slice(bytes);
        }
        self
    }

    /// Parses the next whole frame from `buf`; `Ok(None)` when more bytes
    /// are needed (room for them is reserved once the header is known).
    fn parse(&mut self) -> Result<Option<Frame>, Close> {
        let b = &self.buf[..];
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0f);
        if b[0] & 0x70 != 0 {
            // No extension was negotiated.
            return Err(violation("reserved bits set"));
        }
        if b[1] & 0x80 == 0 {
            return Err(violation("client frame not masked"));
        }
        let (len, head) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as u64, 4),
            127 if b.len() >= 10 => {
                let len = u64::from_be_bytes(b[2..10].try_into().expect("8 bytes"));
                if len >> 63 != 0 {
                    return Err(violation("frame length with the top bit set"));
                }
                (len, 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        let control = opcode & 0x8 != 0;
        match opcode {
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG => {}
            _ => return Err(violation(format!("unknown opcode {opcode:#x}"))),
        }
        if control && (!fin || len > 125) {
            return Err(violation("fragmented or oversized control frame"));
        }
        match (opcode, &self.partial) {
            (OP_CONTINUATION, None) => return Err(violation("continuation outside a message")),
            (OP_TEXT | OP_BINARY, Some(_)) => {
                return Err(violation("new message inside a fragmented one"))
            }
            _ => {}
        }
        // CLOSE-OVERSIZE: judged at the header, before the payload is read.
        let so_far = self.partial.as_ref().map_or(0, |(_, p)| p.len()) as u64;
        if !control && so_far + len > self.max as u64 {
            return Err((
                close::MESSAGE_TOO_BIG,
                format!(
                    "frame too large: message of at least {} bytes, limit {}",
                    so_far + len,
                    self.max
                ),
            ));
        }
        let len = len as usize; // within `max` or 125
        let total = head + 4 + len;
        if self.buf.len() < total {
            // Room for the rest of the frame, so that it is not copied again
            // as it arrives.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        let key: [u8; 4] = self.buf[head..head + 4].try_into().expect("4 bytes");
        self.buf.advance(head + 4);
        let mut payload = self.buf.split_to(len);
        unmask(&mut payload, key);
        if self.buf.is_empty() {
            // Nothing of a next frame: free the storage while idle.
            self.buf = BytesMut::new();
        }
        Ok(Some(match opcode {
            OP_PING => Frame::Ping(payload.freeze()),
            OP_PONG => Frame::Nothing,
            OP_CLOSE => Frame::Close(close_payload(&payload)?),
            _ => {
                let (text, message) = match self.partial.take() {
                    Some((text, mut so_far)) => {
                        so_far.extend_from_slice(&payload);
                        (text, so_far)
                    }
                    None => (opcode == OP_TEXT, payload),
                };
                if !fin {
                    self.partial = Some((text, message));
                    Frame::Nothing
                } else {
                    if text && std::str::from_utf8(&message).is_err() {
                        return Err((close::BAD_FRAME, "text frame is not valid UTF-8".into()));
                    }
                    Frame::Message {
                        bytes: message.freeze(),
                        text,
                    }
                }
            }
        }))
    }
}

/// The code of a close frame's payload (RFC 6455 5.5.1, 7.4).
fn close_payload(p: &[u8]) -> Result<Option<u16>, Close> {
    match p {
        [] => Ok(None),
        [_] => Err(violation("one-byte close payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close_code_allowed(code) {
                return Err(violation(format!("close code {code} not allowed")));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(violation("close reason is not UTF-8"));
            }
            Ok(Some(code))
        }
    }
}

/// Reads the next inbound event: a data message, a control frame (pings
/// are answered), the peer's close (answered), or the end of the stream.
pub(super) fn poll_next<S>(shared: &Shared<S>, cx: &mut Context<'_>) -> Poll<Inbound>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut state = lock(shared);
    loop {
        match state.read.parse() {
            Err(close) => return Poll::Ready(Inbound::Broken(close)),
            Ok(Some(Frame::Message { bytes, text })) => {
                return Poll::Ready(Inbound::Frame { bytes, text })
            }
            Ok(Some(Frame::Nothing)) => return Poll::Ready(Inbound::Control),
            Ok(Some(Frame::Ping(payload))) => {
                // RFC 6455 5.5.2: a pong with the ping's payload.
                let mut pong = Vec::with_capacity(2 + payload.len());
                pong.extend_from_slice(&[0x80 | OP_PONG, payload.len() as u8]);
                pong.extend_from_slice(&payload);
                state.control(&pong);
                let _ = state.poll_write_out(cx);
                return Poll::Ready(Inbound::Control);
            }
            Ok(Some(Frame::Close(code))) => {
                // RFC 6455 5.5.1: the reply echoes the code (none for none).
                let reply = match code {
                    Some(c) => {
                        let [hi, lo] = c.to_be_bytes();
                        vec![0x80 | OP_CLOSE, 2, hi, lo]
                    }
                    None => vec![0x80 | OP_CLOSE, 0],
                };
                state.control(&reply);
                let _ = state.poll_write_out(cx);
                return Poll::Ready(Inbound::Closed(code.unwrap_or(close::NORMAL)));
            }
            Ok(None) => {}
        }
        // Queued replies go out even while the session's writer is idle.
        if state.unwritten() > 0 {
            let _ = state.poll_write_out(cx);
        }
        let chunk = state.read.chunk;
        let st = &mut *state;
        let mut stack = [MaybeUninit::<u8>::uninit(); MAX_READ];
        let mut rb = ReadBuf::uninit(&mut stack[..chunk]);
        let got = match Pin::new(&mut st.io).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => 0,
            Poll::Ready(Ok(())) => {
                st.read.buf.extend_from_slice(rb.filled());
                rb.filled().len()
            }
        };
        if got == 0 {
            // The peer vanished without a close frame (or the read failed):
            // nothing to answer.
            return Poll::Ready(Inbound::Closed(close::ABNORMAL));
        }
    }
}

/// After the close: writes what is queued (the close reply), then reads
/// until the peer closes the TCP connection.
pub(super) fn poll_drain<S>(shared: &Shared<S>, cx: &mut Context<'_>) -> Poll<()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut state = lock(shared);
    if state.unwritten() > 0 && state.poll_write_out(cx).is_pending() {
        return Poll::Pending;
    }
    state.read.buf = BytesMut::new();
    state.read.partial = None;
    let mut stack = [MaybeUninit::<u8>::uninit(); 1024];
    loop {
        let mut rb = ReadBuf::uninit(&mut stack);
        match Pin::new(&mut state.io).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => continue,
            Poll::Ready(_) => return Poll::Ready(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use super::*;
    use crate::transport::ws_socket::split;

    /// A client frame: masked with a fixed key.
    fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![first];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    struct Peer {
        socket: Shared<DuplexStream>,
        client: DuplexStream,
    }

    impl Peer {
        fn new(max: usize, chunk: usize) -> Self {
            let (server, client) = tokio::io::duplex(1 << 20);
            let (socket, _sink) = split(server, false, ReadState::new(max, chunk));
            Peer { socket, client }
        }

        async fn next(&self) -> Inbound {
            std::future::poll_fn(|cx| poll_next(&self.socket, cx)).await
        }

        /// What the server wrote so far.
        async fn written(&mut self, n: usize) -> Vec<u8> {
            let mut got = vec![0; n];
            self.client.read_exact(&mut got).await.unwrap();
            got
        }
    }

    fn message(i: Inbound) -> (Vec<u8>, bool) {
        match i {
            Inbound::Frame { bytes, text } => (bytes.to_vec(), text),
            _ => panic!("expected a message"),
        }
    }

    fn broken(i: Inbound) -> (u16, String) {
        match i {
            Inbound::Broken(c) => c,
            _ => panic!("expected a protocol violation"),
        }
    }

    #[tokio::test]
    async fn messages_fragments_and_pings_in_one_read() {
        let mut p = Peer::new(1024, 512);
        let mut bytes = frame(0x82, &[1, 2, 3]);
        // "héllo" split inside the two-byte "é": valid once whole.
        bytes.extend(frame(0x01, b"h\xc3"));
        bytes.extend(frame(0x89, b"are you there"));
        bytes.extend(frame(0x00, b"\xa9l"));
        bytes.extend(frame(0x80, b"lo"));
        bytes.extend(frame(0x81, &[b'x'; 300]));
        p.client.write_all(&bytes).await.unwrap();
        assert_eq!(message(p.next().await), (vec![1, 2, 3], false));
        assert!(matches!(p.next().await, Inbound::Control)); // first fragment
        assert!(matches!(p.next().await, Inbound::Control)); // the ping
        let pong = p.written(15).await;
        assert_eq!(pong, [&[0x8a, 13][..], b"are you there"].concat());
        assert!(matches!(p.next().await, Inbound::Control));
        assert_eq!(message(p.next().await), ("héllo".as_bytes().to_vec(), true));
        assert_eq!(message(p.next().await), (vec![b'x'; 300], true));
        // Everything was parsed: no storage is held while idle.
        assert_eq!(lock(&p.socket).read.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn a_frame_arriving_byte_by_byte_is_assembled() {
        let mut p = Peer::new(100_000, 512);
        let payload: Vec<u8> = (0..70_000u32).map(|i| i as u8).collect();
        let bytes = frame(0x82, &payload);
        let feed = async {
            for chunk in bytes.chunks(977) {
                p.client.write_all(chunk).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        let socket = p.socket.clone();
        let read = std::future::poll_fn(|cx| poll_next(&socket, cx));
        let (_, got) = tokio::join!(feed, read);
        assert_eq!(message(got), (payload, false));
    }

    #[tokio::test]
    async fn the_close_is_answered_with_its_code() {
        let mut p = Peer::new(1024, 512);
        let mut close = vec![0x03, 0xe9]; // 1001
        close.extend_from_slice(b"bye");
        p.client.write_all(&frame(0x88, &close)).await.unwrap();
        assert!(matches!(p.next().await, Inbound::Closed(1001)));
        assert_eq!(p.written(4).await, [0x88, 2, 0x03, 0xe9]);
        // A close without a code reads as 1000 and is answered without one.
        let mut p = Peer::new(1024, 512);
        p.client.write_all(&frame(0x88, &[])).await.unwrap();
        assert!(matches!(p.next().await, Inbound::Closed(close::NORMAL)));
        assert_eq!(p.written(2).await, [0x88, 0]);
    }

    #[tokio::test]
    async fn the_end_of_the_stream_is_an_abnormal_close() {
        let p = Peer::new(1024, 512);
        let Peer { socket, client } = p;
        drop(client);
        let got = std::future::poll_fn(|cx| poll_next(&socket, cx)).await;
        assert!(matches!(got, Inbound::Closed(close::ABNORMAL)));
    }

    #[tokio::test]
    async fn violations_close_with_4000() {
        let mut unmasked = frame(0x82, b"abc");
        unmasked[1] &= 0x7f;
        let mut too_long = frame(0x82, b"");
        too_long.splice(1..2, [0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0]);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("not masked", unmasked),
            ("reserved bits", frame(0xc2, b"abc")),
            ("unknown opcode", frame(0x83, b"abc")),
            ("continuation", frame(0x80, b"abc")),
            ("fragmented control", frame(0x09, b"abc")),
            ("oversized control", frame(0x89, &[0; 126])),
            ("one-byte close", frame(0x88, &[3])),
            ("close code 1005", frame(0x88, &[0x03, 0xed])),
            ("close code 999", frame(0x88, &[0x03, 0xe7])),
            ("close reason", frame(0x88, &[0x03, 0xe8, 0xff])),
            ("invalid UTF-8", frame(0x81, &[b'a', 0xc3, 0x28])),
            (
                "new message in a fragmented one",
                [frame(0x01, b"a"), frame(0x81, b"b")].concat(),
            ),
            ("top length bit", too_long),
        ];
        for (what, bytes) in cases {
            let mut p = Peer::new(1024, 512);
            p.client.write_all(&bytes).await.unwrap();
            let mut got = p.next().await;
            while matches!(got, Inbound::Control) {
                got = p.next().await;
            }
            let (code, reason) = broken(got);
            assert_eq!(code, close::BAD_FRAME, "{what}: {reason}");
        }
    }

    /// CLOSE-OVERSIZE: the header alone decides; its payload is never sent.
    #[tokio::test]
    async fn oversize_is_judged_at_the_header() {
        let mut p = Peer::new(1000, 512);
        let header = &frame(0x82, &[0; 1001])[..8];
        p.client.write_all(header).await.unwrap();
        assert_eq!(broken(p.next().await).0, close::MESSAGE_TOO_BIG);
        // Across fragments: 600 + 600 > 1000.
        let mut p = Peer::new(1000, 512);
        let mut bytes = frame(0x02, &[0; 600]);
        bytes.extend_from_slice(&frame(0x80, &[0; 600])[..8]);
        p.client.write_all(&bytes).await.unwrap();
        assert!(matches!(p.next().await, Inbound::Control));
        assert_eq!(broken(p.next().await).0, close::MESSAGE_TOO_BIG);
    }

    /// A peer that sends pings and never reads holds a bounded queue of
    /// pongs, not one per ping.
    #[tokio::test]
    async fn pings_from_a_peer_that_never_reads_are_bounded() {
        let (server, mut client) = tokio::io::duplex(1024);
        let (socket, _sink) = split(server, false, ReadState::new(1024, 512));
        let ping = frame(0x89, &[7; 100]);
        for _ in 0..2_000 {
            client.write_all(&ping).await.unwrap();
            let got = std::future::poll_fn(|cx| poll_next(&socket, cx)).await;
            assert!(matches!(got, Inbound::Control));
        }
        let queued = lock(&socket).unwritten();
        assert!(queued <= 32 * 1024 + 127, "{queued} bytes of pongs queued");
    }

    #[test]
    fn unmasking_matches_the_bytewise_definition() {
        let key = [1, 2, 3, 250];
        for len in 0..40 {
            let data: Vec<u8> = (0..len as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, key);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ key[i % 4])
                .collect();
            assert_eq!(fast, slow, "len {len}");
        }
    }
}
