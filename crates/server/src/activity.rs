//! When a connection is idle: no request in flight (from its head until its response body is
//! dropped) and nothing read from the client for a while. hyper closes idle HTTP/1
//! connections itself but keeps HTTP/2 ones open forever, so the serve loop watches both.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

pub struct Activity {
    epoch: Instant,
    last_read_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity { epoch: Instant::now(), last_read_ms: AtomicU64::new(0), in_flight: AtomicUsize::new(0) })
    }

    fn read_now(&self) {
        self.last_read_ms.store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Counts a request in flight until the guard is dropped (hold it with the response body:
    /// [`crate::held_body::hold_until_sent`]).
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Resolves once the connection has been idle for `after`.
    pub async fn idle(&self, after: Duration) {
        loop {
            let last_read = Duration::from_millis(self.last_read_ms.load(Ordering::Relaxed));
            let quiet = self.epoch.elapsed().saturating_sub(last_read);
            if self.in_flight.load(Ordering::Acquire) == 0 && quiet >= after {
                return;
            }
            tokio::time::sleep(after.saturating_sub(quiet).max(after / 4)).await;
        }
    }
}

pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A connection's byte stream, noting when the client last sent anything.
pub struct ReadClock<S> {
    stream: S,
    activity: Arc<Activity>,
}

impl<S> ReadClock<S> {
    pub fn new(stream: S, activity: Arc<Activity>) -> ReadClock<S> {
        activity.read_now();
        ReadClock { stream, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadClock<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read_now();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadClock<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
