//! Runs a connection's reader and writer in its one task, polling each only
//! when something it waits for happened. With one waker for both (as
//! `tokio::select!` has), every delivery that wakes the writer also polled
//! the reader: its socket's lock and readiness, its tick watch, ~540 of a
//! lone delivery's ~2,800 user-space instructions (callgrind,
//! docs/benchmarks.md step 12). Each half gets a waker of its own that marks
//! it and wakes the task. A second task per connection would do the same
//! and cost a task's memory on every idle connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// One half's waker: marks the half, then wakes the connection's task.
struct Half {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Half {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

fn half() -> (Arc<Half>, Waker) {
    // Woken at first: both halves are polled on the first poll.
    let h = Arc::new(Half {
        woken: AtomicBool::new(true),
        task: AtomicWaker::new(),
    });
    let waker = Waker::from(h.clone());
    (h, waker)
}

/// Which half finished first.
pub(crate) enum First<R, W> {
    Reader(R),
    Writer(W),
}

/// Polls `reader` and `writer` until one finishes; the reader first when
/// both were woken, so frames that arrived together are handled before the
/// writer takes the queue and their replies share its write.
pub(crate) fn race<'a, R: Future, W: Future>(
    mut reader: Pin<&'a mut R>,
    mut writer: Pin<&'a mut W>,
) -> impl Future<Output = First<R::Output, W::Output>> + 'a {
    let (r, r_waker) = half();
    let (w, w_waker) = half();
    std::future::poll_fn(move |cx| {
        // Registered before the marks are read: a wake-up after the read
        // below marks its half again and wakes this task.
        r.task.register(cx.waker());
        w.task.register(cx.waker());
        if r.woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(out) = reader.as_mut().poll(&mut Context::from_waker(&r_waker)) {
                return Poll::Ready(First::Reader(out));
            }
        }
        if w.woken.swap(false, Ordering::AcqRel) {
            if let Poll::Ready(out) = writer.as_mut().poll(&mut Context::from_waker(&w_waker)) {
                return Poll::Ready(First::Writer(out));
            }
        }
        Poll::Pending
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A future that counts its polls and finishes once told to.
    fn counted(
        polls: &AtomicUsize,
        rx: tokio::sync::oneshot::Receiver<u8>,
    ) -> impl Future<Output = u8> + '_ {
        let mut rx = rx;
        std::future::poll_fn(move |cx| {
            polls.fetch_add(1, Ordering::Relaxed);
            Pin::new(&mut rx).poll(cx).map(|r| r.unwrap_or(0))
        })
    }

    /// A wake-up of one half polls that half only; the first poll polls
    /// both; the half that finishes is reported with its output.
    #[tokio::test]
    async fn each_half_is_polled_when_it_was_woken() {
        let (reads, writes) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (r_tx, r_rx) = tokio::sync::oneshot::channel();
        let (w_tx, w_rx) = tokio::sync::oneshot::channel::<u8>();
        let mut reader = std::pin::pin!(counted(&reads, r_rx));
        let mut writer = std::pin::pin!(counted(&writes, w_rx));
        let mut both = std::pin::pin!(race(reader.as_mut(), writer.as_mut()));
        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        assert!(both.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            (
                reads.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed)
            ),
            (1, 1)
        );
        // Polled again without a wake-up: neither half is polled.
        assert!(both.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            (
                reads.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed)
            ),
            (1, 1)
        );
        r_tx.send(7).unwrap();
        match both.as_mut().poll(&mut cx) {
            Poll::Ready(First::Reader(7)) => {}
            _ => panic!("the reader's output"),
        }
        assert_eq!(
            (
                reads.load(Ordering::Relaxed),
                writes.load(Ordering::Relaxed)
            ),
            (2, 1)
        );
        drop(w_tx);
    }

    /// The task is woken by either half's wake-up, also when the half's
    /// waker fires between polls (no wake-up is lost).
    #[tokio::test]
    async fn a_wake_up_of_either_half_wakes_the_task() {
        let (reads, writes) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (_r_tx, r_rx) = tokio::sync::oneshot::channel::<u8>();
        let (w_tx, w_rx) = tokio::sync::oneshot::channel();
        let reader = std::pin::pin!(counted(&reads, r_rx));
        let writer = std::pin::pin!(counted(&writes, w_rx));
        let both = race(reader, writer);
        let send = async {
            tokio::task::yield_now().await;
            w_tx.send(3).unwrap();
        };
        let (out, ()) = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            tokio::join!(both, send)
        })
        .await
        .expect("woken");
        assert!(matches!(out, First::Writer(3)));
        assert_eq!(reads.load(Ordering::Relaxed), 1, "the reader was not woken");
    }
}
