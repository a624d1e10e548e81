//! Close codes tungstenite refuses although they are registered: 1014
//! (Bad Gateway, registered with IANA after RFC 6455). tungstenite 0.30
//! (and its main branch, snapview/tungstenite-rs#502) files 1014 under
//! "reserved" and hands the application a 1002 "Protocol violation" in its
//! place, which CLOSE-RANGES makes terminal: a gateway's 1014 would end the
//! client's session for good instead of backing off. No setting changes
//! that, so [`CloseCodes`] sits between the socket and tungstenite: it
//! follows the server's frames and, in a close frame carrying 1014, writes
//! 1011 instead (same high byte, so only the low byte changes, and 1011
//! calls for the same reaction: back off, reconnect, resume), remembering
//! that it did; [`CloseCodes::received_close_code`] gives the code as sent.
//! Only the 2-byte code of a close frame is ever changed; every other byte
//! passes untouched.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The code tungstenite refuses and the code handed to it instead.
const BAD_GATEWAY: u16 = 1014;
const STAND_IN: u16 = 1011;
const _: () = assert!(BAD_GATEWAY >> 8 == STAND_IN >> 8);

/// Where the scanner is in the server's frame stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading a frame header: the bytes so far.
    Header { buf: [u8; 14], have: usize },
    /// Inside a payload: bytes left, and for an unmasked close frame the
    /// offset reached in it (the code is its first two bytes).
    Payload {
        left: u64,
        close_at: Option<u8>,
        high: u8,
    },
}

/// A frame-following scanner over the server-to-client byte stream.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    state: State,
    replaced: Option<u16>,
}

impl Default for Scanner {
    fn default() -> Self {
        Scanner {
            state: State::Header {
                buf: [0; 14],
                have: 0,
            },
            replaced: None,
        }
    }
}

impl Scanner {
    /// Scans (and where needed rewrites) the next bytes of the stream.
    pub(crate) fn scan(&mut self, mut bytes: &mut [u8]) {
        while !bytes.is_empty() {
            match &mut self.state {
                State::Header { buf, have } => {
                    buf[*have] = bytes[0];
                    *have += 1;
                    bytes = &mut bytes[1..];
                    if let Some(next) = header_done(buf, *have) {
                        self.state = next;
                    }
                }
                State::Payload {
                    left,
                    close_at,
                    high,
                } => {
                    if let Some(at) = close_at {
                        // The close code: byte 0 is the high byte, byte 1 the low.
                        if *at == 0 {
                            *high = bytes[0];
                        } else if u16::from_be_bytes([*high, bytes[0]]) == BAD_GATEWAY {
                            bytes[0] = STAND_IN.to_be_bytes()[1];
                            self.replaced = Some(BAD_GATEWAY);
                        }
                        *at += 1;
                        if *at == 2 {
                            *close_at = None;
                        }
                        *left -= 1;
                        bytes = &mut bytes[1..];
                    } else {
                        let n = (*left).min(bytes.len() as u64) as usize;
                        *left -= n as u64;
                        bytes = &mut bytes[n..];
                    }
                    if *left == 0 {
                        self.state = State::default_header();
                    }
                }
            }
        }
    }

    /// The close code the server sent when it was replaced.
    pub(crate) fn replaced(&self) -> Option<u16> {
        self.replaced
    }
}

impl State {
    fn default_header() -> State {
        State::Header {
            buf: [0; 14],
            have: 0,
        }
    }
}

/// The state after a header of `have` bytes, or `None` while incomplete.
fn header_done(buf: &[u8; 14], have: usize) -> Option<State> {
    if have < 2 {
        return None;
    }
    let masked = buf[1] & 0x80 != 0;
    let len7 = buf[1] & 0x7f;
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let need = 2 + ext + if masked { 4 } else { 0 };
    if have < need {
        return None;
    }
    let left = match ext {
        2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
        8 => u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")),
        _ => u64::from(len7),
    };
    // A server's frames are unmasked; tungstenite refuses a masked one, so
    // a masked close is left alone.
    let close = buf[0] & 0x0f == 0x8 && !masked && left >= 2;
    if left == 0 {
        return Some(State::default_header());
    }
    Some(State::Payload {
        left,
        close_at: close.then_some(0),
        high: 0,
    })
}

/// A socket whose incoming close frames tungstenite can read (module docs).
pub struct CloseCodes<S> {
    inner: S,
    scanner: Scanner,
}

impl<S> CloseCodes<S> {
    /// Wraps `inner` right after the upgrade; `rest` (bytes read past the
    /// HTTP head, handed to tungstenite first) is scanned in place.
    pub(crate) fn new(inner: S, rest: &mut [u8]) -> Self {
        let mut scanner = Scanner::default();
        scanner.scan(rest);
        CloseCodes { inner, scanner }
    }

    /// The close code the server sent, given the one tungstenite reported:
    /// a reported 1011 was 1014 when the scanner put it in its place.
    pub fn close_code(&self, reported: u16) -> u16 {
        match self.scanner.replaced() {
            Some(code) if reported == STAND_IN => code,
            _ => reported,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CloseCodes<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.scanner.scan(&mut buf.filled_mut()[before..]);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CloseCodes<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(code: u16, reason: &str) -> Vec<u8> {
        let mut f = vec![0x88, (2 + reason.len()) as u8];
        f.extend_from_slice(&code.to_be_bytes());
        f.extend_from_slice(reason.as_bytes());
        f
    }

    fn text(len: usize) -> Vec<u8> {
        let mut f = vec![0x81];
        match len {
            0..=125 => f.push(len as u8),
            126..=65535 => {
                f.push(126);
                f.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                f.push(127);
                f.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        // Payload bytes that look like close frames with 1014.
        f.extend(close(1014, "x").iter().cycle().take(len));
        f
    }

    /// Scans `stream` split into pieces of `chunk` bytes.
    fn scan_in(stream: &[u8], chunk: usize) -> (Vec<u8>, Option<u16>) {
        let mut s = Scanner::default();
        let mut out = stream.to_vec();
        for piece in out.chunks_mut(chunk) {
            s.scan(piece);
        }
        (out, s.replaced())
    }

    #[test]
    fn replaces_1014_only_in_close_frames_however_split() {
        let mut stream = text(10);
        stream.extend(text(300));
        stream.extend(text(70_000));
        stream.extend(text(0));
        let data_end = stream.len();
        stream.extend(close(1014, "upstream gone"));
        for chunk in [1, 2, 3, 7, 64, 4096, stream.len()] {
            let (out, replaced) = scan_in(&stream, chunk);
            assert_eq!(out[..data_end], stream[..data_end], "data frames untouched");
            assert_eq!(out[data_end + 2..data_end + 4], 1011u16.to_be_bytes());
            assert_eq!(out[data_end + 4..], *b"upstream gone");
            assert_eq!(replaced, Some(1014), "chunk {chunk}");
        }
    }

    #[test]
    fn leaves_other_close_codes_alone() {
        for code in [1000u16, 1001, 1002, 1011, 1012, 1013, 1015, 3014, 4014] {
            let stream = close(code, "r");
            let (out, replaced) = scan_in(&stream, 1);
            assert_eq!(out, stream);
            assert_eq!(replaced, None);
        }
        // A close without a code, and a masked one (tungstenite refuses it).
        let (out, replaced) = scan_in(&[0x88, 0x00], 1);
        assert_eq!((out, replaced), (vec![0x88, 0x00], None));
        let masked = [0x88, 0x82, 0, 0, 0, 0, 0x03, 0xf6];
        let (out, replaced) = scan_in(&masked, 1);
        assert_eq!((out, replaced), (masked.to_vec(), None));
    }

    #[test]
    fn reports_the_code_as_sent() {
        let mut rest = close(1014, "");
        let c = CloseCodes::new((), &mut rest);
        assert_eq!(c.close_code(1011), 1014);
        let c = CloseCodes::new((), &mut close(1011, ""));
        assert_eq!(c.close_code(1011), 1011);
    }
}
