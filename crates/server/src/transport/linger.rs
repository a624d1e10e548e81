//! The lingering close of a WebSocket connection's socket.
//!
//! A socket closed while bytes the peer sent are still unread makes the
//! kernel answer with a reset instead of a FIN, and a reset discards what
//! was still in flight towards the peer: the close frame itself. That is the
//! case after CLOSE-OVERSIZE (the frame is refused at its header and its
//! payload is never read). Directly on loopback the close frame usually
//! arrives first; through a proxy it is lost often (the proxy, reset on its
//! upstream side, resets the client's side too and the client sees 1006).
//! So, as nginx's `lingering_close` and other WebSocket servers do, the
//! socket is not dropped at once: once the connection is done with it, it
//! sends its FIN and reads and discards what the peer still sends, until
//! the peer closes or [`LINGER_TIME`] or [`LINGER_BYTES`] is reached. A
//! socket whose reads already reached the peer's FIN has nothing left to
//! read and closes at once (no task per closed connection in the usual
//! case, the client closing first).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest a closed connection's socket lingers.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most bytes read and discarded while lingering (a peer still sending
/// past this is reset: the lingering only covers the frame in progress and
/// the close handshake, not a client that keeps streaming).
pub(crate) const LINGER_BYTES: usize = 1 << 20;

/// A socket that lingers when dropped (see the module docs). Reads and
/// writes pass through unchanged.
pub(crate) struct Lingering<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> {
    io: Option<S>,
    /// A read returned the end of the stream: the peer's FIN came after
    /// everything it sent, all of it was read, and a close cannot reset the
    /// connection. The common end (the client closes first) then needs no
    /// lingering task.
    eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Lingering<S> {
    pub(crate) fn new(io: S) -> Self {
        Self {
            io: Some(io),
            eof: false,
        }
    }

    fn io(&mut self) -> &mut S {
        // `io` is taken only in `drop`.
        self.io.as_mut().expect("socket present until dropped")
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Drop for Lingering<S> {
    fn drop(&mut self) {
        let Some(io) = self.io.take() else { return };
        if self.eof {
            return;
        }
        // Outside a runtime (or while it shuts down) the socket is simply
        // closed: nothing is left to deliver the close frame to anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(linger(io));
        }
    }
}

/// Sends the FIN, then discards what the peer still sends, within bounds.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut io: S) {
    let _ = tokio::time::timeout(LINGER_TIME, async {
        // An error here (the peer already gone, or the socket already shut
        // down by the WebSocket layer) leaves the reads below to tell.
        let _ = io.shutdown().await;
        let mut buf = vec![0u8; 2 * 1024];
        let mut left = LINGER_BYTES;
        while left > 0 {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncRead for Lingering<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let room = buf.remaining();
        let r = Pin::new(self.io()).poll_read(cx, buf);
        if room > 0 && buf.remaining() == room && matches!(r, Poll::Ready(Ok(()))) {
            self.eof = true;
        }
        r
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncWrite for Lingering<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io()).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(self.io()).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.as_ref().is_some_and(|io| io.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.io()).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket dropped with the peer's bytes unread lingers (a task reads
    /// them); one whose reads reached the peer's FIN closes at once.
    #[tokio::test]
    async fn lingers_only_before_the_end_of_the_stream() {
        let tasks = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let (a, mut peer) = tokio::io::duplex(64);
        peer.write_all(b"unread").await.unwrap();
        drop(Lingering::new(a));
        assert_eq!(tasks(), 1, "unread bytes: the socket lingers");
        drop(peer);
        tokio::time::timeout(LINGER_TIME, async {
            while tasks() > 0 {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the lingering ends when the peer closes");

        let (a, mut peer) = tokio::io::duplex(64);
        peer.write_all(b"read").await.unwrap();
        peer.shutdown().await.unwrap();
        let mut socket = Lingering::new(a);
        let mut got = Vec::new();
        socket.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"read");
        drop(socket);
        assert_eq!(tasks(), 0, "read to the end: closed at once");
    }
}
