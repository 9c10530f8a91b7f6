//! A request body that fails when the client stops sending: waiting on a stalled upload would
//! hold its connection, its upload session and its traffic-class slot for as long as the
//! client likes. The clock runs only while the handler waits for bytes, so a handler busy
//! elsewhere (hashing, the database) never trips it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body bytes for {0:?}")]
pub struct BodyStalled(Duration);

pub struct ProgressTimeout<B> {
    inner: B,
    within: Duration,
    /// Allocated on the first wait, then reset for each.
    stall: Option<Pin<Box<Sleep>>>,
    waiting: bool,
}

impl<B> ProgressTimeout<B> {
    pub fn new(inner: B, within: Duration) -> ProgressTimeout<B> {
        ProgressTimeout { inner, within, stall: None, waiting: false }
    }
}

impl<B> Body for ProgressTimeout<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.waiting = false;
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if !this.waiting {
            this.waiting = true;
            let deadline = Instant::now() + this.within;
            match &mut this.stall {
                Some(stall) => stall.as_mut().reset(deadline),
                None => this.stall = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
        }
        match this.stall.as_mut().map(|stall| stall.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => {
                metrics::counter!("berth_slow_clients_cut_total", "phase" => "body").increment(1);
                Poll::Ready(Some(Err(BodyStalled(this.within).into())))
            }
            _ => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_fails_and_a_steady_one_does_not() {
        let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
        let stream = tokio_stream_of(receiver);
        let mut body = ProgressTimeout::new(StreamBody::new(stream), Duration::from_secs(10));
        // Bytes every 6 s: each wait is shorter than the limit, though the whole is longer.
        let steady = tokio::spawn(async move {
            for _ in 0..3 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                sender.send(Ok(Frame::data(Bytes::from_static(b"abc")))).await.expect("send");
            }
            // Then silence, with the sender kept open.
            std::future::pending::<()>().await;
        });
        for _ in 0..3 {
            let frame = body.frame().await.expect("a frame").expect("data");
            assert_eq!(frame.into_data().ok(), Some(Bytes::from_static(b"abc")));
        }
        let stalled = body.frame().await.expect("an error").expect_err("stalled");
        assert!(stalled.is::<BodyStalled>(), "{stalled}");
        steady.abort();
    }

    fn tokio_stream_of<T: Send + 'static>(
        mut receiver: tokio::sync::mpsc::Receiver<T>,
    ) -> impl futures_util::Stream<Item = T> + Unpin {
        Box::pin(futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx)))
    }
}
