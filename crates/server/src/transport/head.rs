//! A connection's first request head, read off the socket before any HTTP
//! machinery is built for it. A WebSocket connection makes exactly one
//! request, the opening handshake (RFC 6455 4.1), so `http::serve` answers
//! a plain, acceptable upgrade to `/ws` itself: the head parsed in place
//! (httparse, the parser hyper uses), the `101` written in one write, and
//! the connection's task goes on as the WebSocket session. Everything else
//! (other routes, refused or unusual upgrades, heads over [`MAX_HEAD`])
//! goes to hyper with the bytes read so far replayed first ([`Prefixed`]).
//!
//! Why: a profile of 10,000 connects put hyper's per-connection work (its
//! connection state, an 8 KiB read buffer, header map, upgrade channel and
//! a second task for the upgraded socket) in the way of the connect rate
//! (docs/benchmarks.md, step 8).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The most bytes of a head parsed here. A larger head (a browser with
/// many cookies) goes to hyper, whose limit is larger.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Header lines parsed here; a request with more goes to hyper.
const MAX_HEADERS: usize = 48;

/// Bytes asked for by the first read: an upgrade head is 200–700 bytes, and
/// a buffer this size is served from the allocator's per-thread cache.
const FIRST_READ: usize = 1024;

/// The headers of a request, from hyper's map or from a head parsed here:
/// what the handshake and the Origin check read, one code path for both.
pub(crate) trait RequestHeaders {
    /// Every value of the header `name` (lowercase), in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a;

    /// The first value of `name`.
    fn header<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.values(name).next()
    }
}

impl RequestHeaders for hyper::HeaderMap {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name).iter().map(|v| v.as_bytes())
    }
}

impl RequestHeaders for [httparse::Header<'_>] {
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// A request head parsed from the connection's first bytes.
pub(crate) struct Parsed<'b, 'h> {
    pub method: &'b str,
    /// The request target, query included.
    pub path: &'b str,
    /// `true` for HTTP/1.1 (an upgrade needs 1.1: RFC 6455 4.1).
    pub http11: bool,
    pub headers: &'h [httparse::Header<'b>],
}

impl Parsed<'_, '_> {
    /// The request carries a body (`Content-Length` other than 0, or
    /// `Transfer-Encoding`): left to hyper, which reads bodies.
    pub(crate) fn has_body(&self) -> bool {
        self.headers.header("transfer-encoding").is_some()
            || self
                .headers
                .header("content-length")
                .is_some_and(|v| v.trim_ascii() != b"0")
    }
}

/// Reads until `buf` holds a whole request head, then hands it to `pick`;
/// returns what `pick` returned and the head's length, or `None` for the
/// pick when the bytes are not a head parsed here (malformed, too many
/// headers, over [`MAX_HEAD`]): hyper then reads them again and answers.
/// `Err` when the peer left before a whole head.
pub(crate) async fn read<I, T>(
    io: &mut I,
    buf: &mut Vec<u8>,
    pick: impl FnOnce(&Parsed<'_, '_>) -> Option<T>,
) -> io::Result<Option<(T, usize)>>
where
    I: AsyncRead + Unpin,
{
    buf.reserve(FIRST_READ);
    loop {
        if io.read_buf(buf).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        // Uninitialised: initialising 48 headers costs more than parsing
        // an upgrade head's ~8.
        let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        match req.parse_with_uninit_headers(buf, &mut headers) {
            Ok(httparse::Status::Complete(len)) => {
                let parsed = Parsed {
                    method: req.method.unwrap_or(""),
                    path: req.path.unwrap_or(""),
                    http11: req.version == Some(1),
                    headers: req.headers,
                };
                return Ok(pick(&parsed).map(|t| (t, len)));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {
                buf.reserve(buf.len().min(MAX_HEAD - buf.len()));
            }
            // Malformed, too many headers, or too long: hyper's to answer.
            _ => return Ok(None),
        }
    }
}

/// A connection whose first bytes were already read: they are read again
/// first, then the socket. Writes go straight to the socket.
pub(crate) struct Prefixed<I> {
    prefix: Vec<u8>,
    pos: usize,
    io: I,
}

impl<I> Prefixed<I> {
    pub(crate) fn new(prefix: Vec<u8>, io: I) -> Self {
        Prefixed { prefix, pos: 0, io }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(out.remaining());
            out.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.prefix.len() {
                this.prefix = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, out)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn pick_path(chunks: &[&[u8]]) -> (io::Result<Option<(String, usize)>>, Vec<u8>) {
        let (mut a, mut b) = tokio::io::duplex(64 * 1024);
        for c in chunks {
            b.write_all(c).await.unwrap();
        }
        drop(b);
        let mut buf = Vec::new();
        let r = read(&mut a, &mut buf, |p| Some(p.path.to_string())).await;
        (r, buf)
    }

    #[tokio::test]
    async fn a_head_and_the_bytes_behind_it() {
        let head = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n";
        let mut all = head.to_vec();
        all.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let (r, buf) = pick_path(&[&all]).await;
        let (path, len) = r.unwrap().unwrap();
        assert_eq!(path, "/ws?x=1");
        assert_eq!(len, head.len());
        assert_eq!(&buf[len..], &[0x81, 0x80, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn malformed_long_or_cut_heads_are_not_parsed_here() {
        let (r, buf) = pick_path(&[b"GET /ws HTTP/1.1\r\nBad Header\r\n\r\n"]).await;
        assert!(r.unwrap().is_none());
        assert!(
            buf.starts_with(b"GET /ws"),
            "the bytes read are kept for hyper"
        );
        let long = format!("GET /ws HTTP/1.1\r\nCookie: {}\r\n", "c".repeat(MAX_HEAD));
        let (r, buf) = pick_path(&[long.as_bytes()]).await;
        assert!(r.unwrap().is_none());
        assert!(
            buf.len() >= MAX_HEAD && buf.len() < 2 * MAX_HEAD,
            "bounded: {}",
            buf.len()
        );
        let (r, _) = pick_path(&[b"GET /ws HTTP/1.1\r\nHost"]).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn prefixed_replays_then_reads_the_socket() {
        let (a, mut b) = tokio::io::duplex(64);
        b.write_all(b" world").await.unwrap();
        drop(b);
        let mut p = Prefixed::new(b"hello".to_vec(), a);
        let mut got = String::new();
        p.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");
    }

    #[test]
    fn bodies_are_seen() {
        fn has_body(headers: &[httparse::Header<'_>]) -> bool {
            let parsed = Parsed {
                method: "GET",
                path: "/ws",
                http11: true,
                headers,
            };
            parsed.has_body()
        }
        let h = |name, value| httparse::Header { name, value };
        assert!(!has_body(&[h("Content-Length", b" 0")]));
        assert!(has_body(&[h("content-length", b"5")]));
        assert!(has_body(&[h("Transfer-Encoding", b"chunked")]));
        assert!(!has_body(&[]));
    }
}
