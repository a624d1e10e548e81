//! Subscriber sockets read as raw WebSocket frames (RFC 6455 §5.2) once the
//! handshake is done: frames are parsed in place from one read buffer, with
//! no per-frame allocation or waker bookkeeping, so that the generator spends
//! less per delivery than the server it measures (through tokio-tungstenite
//! it spent more, and capped the fan-out figures).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One frame from the server. Servers never mask (RFC 6455 §5.1).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Frame<'a> {
    /// A complete text (`true`) or binary message.
    Data(&'a [u8], bool),
    /// A WebSocket ping: answer with a pong carrying the same bytes.
    Ping(&'a [u8]),
    /// A close frame: the connection is over.
    Close,
    /// A pong or a frame this reader does not take apart (fragments).
    Other(u8),
}

/// Parses the frame at the start of `buf`: `None` while it is incomplete,
/// else the frame and the bytes it spans.
pub(super) fn parse(buf: &[u8]) -> Option<(Frame<'_>, usize)> {
    let (&b0, rest) = buf.split_first()?;
    let (&b1, rest) = rest.split_first()?;
    let (len, header) = match b1 & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(rest.get(..8)?.try_into().ok()?), 10),
        n => (u64::from(n), 2),
    };
    let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
    let end = header + mask + usize::try_from(len).ok()?;
    let payload = buf.get(header + mask..end)?;
    let fin = b0 & 0x80 != 0;
    let frame = match b0 & 0x0f {
        1 if fin => Frame::Data(payload, true),
        2 if fin => Frame::Data(payload, false),
        8 => Frame::Close,
        9 => Frame::Ping(payload),
        op => Frame::Other(op),
    };
    Some((frame, end))
}

/// A client frame (masked, as RFC 6455 §5.3 requires of clients).
pub(super) fn client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    out
}

/// A socket and its read buffer.
pub(super) struct RawSocket {
    tcp: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    mask: [u8; 4],
}

impl RawSocket {
    /// Wraps a socket whose handshake is done and that has nothing buffered.
    pub(super) fn new(tcp: TcpStream, index: usize) -> Self {
        // Masks only need to differ between connections here (no browser
        // cache to poison); a per-connection value is enough.
        let mask = (0x9e37_79b9u32.wrapping_mul(index as u32 + 1)).to_be_bytes();
        RawSocket {
            tcp,
            buf: vec![0; 16 * 1024],
            start: 0,
            end: 0,
            mask,
        }
    }

    /// Calls `each` on every complete frame buffered or, when none is, reads more.
    /// Returns `Ok(false)` when the peer closed the socket, and stops early
    /// when `each` returns `false`.
    pub(super) async fn read(
        &mut self,
        mut each: impl FnMut(Frame<'_>) -> bool,
    ) -> std::io::Result<bool> {
        let mut parsed = false;
        while let Some((frame, n)) = parse(&self.buf[self.start..self.end]) {
            self.start += n;
            parsed = true;
            if !each(frame) {
                return Ok(true);
            }
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
        } else if self.end == self.buf.len() {
            // Keep the partial frame; grow only for a frame larger than the buffer.
            self.buf.copy_within(self.start..self.end, 0);
            (self.start, self.end) = (0, self.end - self.start);
            if self.end == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
        }
        // Return before blocking on the socket when frames were handled: the
        // caller sends their replies (a `pong`) first. Waiting for more bytes
        // here held an idle subscriber's pong until the next ping, one
        // heartbeat interval late, and the server closed it with 4200.
        if parsed {
            return Ok(true);
        }
        let n = self.tcp.read(&mut self.buf[self.end..]).await?;
        self.end += n;
        Ok(n > 0)
    }

    /// Sends one message (`text` or binary) or control frame.
    pub(super) async fn send(&mut self, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
        self.tcp
            .write_all(&client_frame(opcode, payload, self.mask))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes_and_waits_for_complete_frames() {
        for len in [0usize, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut bytes = client_frame(2, &payload, [0, 0, 0, 0]);
            // Unmask the header bit as a server frame would have it.
            bytes[1] &= 0x7f;
            let header = bytes.len() - len - 4;
            bytes.drain(header..header + 4);
            assert_eq!(
                parse(&bytes),
                Some((Frame::Data(&payload, false), bytes.len()))
            );
            assert_eq!(parse(&bytes[..bytes.len() - 1]), None, "len {len}");
        }
        assert_eq!(parse(&[0x88, 0x00]), Some((Frame::Close, 2)));
        assert_eq!(parse(&[0x89, 0x01, 7]), Some((Frame::Ping(&[7]), 3)));
        assert_eq!(parse(&[0x02, 0x01, 7]), Some((Frame::Other(2), 3)));
        assert_eq!(parse(&[0x81]), None);
    }

    #[test]
    fn client_frames_are_masked() {
        let f = client_frame(1, b"hi", [1, 2, 3, 4]);
        assert_eq!(f, vec![0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
    }
}
