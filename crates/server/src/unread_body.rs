//! A response sent before its request's body was read (a 429 for a shed upload, a 401, a 404)
//! leaves the rest of that body on the connection, so hyper closes the connection after the
//! response. It does not say so, and an HTTP/1.1 client that puts the connection back in its
//! pool loses the next request it sends on it: under a push flood, pulls sharing a client's
//! pool failed that way. `Connection: close` tells the client first.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, Version, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Body as _, Frame, SizeHint};

pub async fn close_if_body_unread(request: Request, next: Next) -> Response {
    // HTTP/2 streams end on their own (and forbid `Connection`); bodiless requests have
    // nothing to leave behind.
    let http1 = matches!(request.version(), Version::HTTP_10 | Version::HTTP_11);
    if !http1 || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let finished = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| Body::new(Tracked { body, finished: finished.clone() }));
    let mut response = next.run(request).await;
    if !finished.load(Ordering::Acquire) {
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A request body that notes when it has been read to the end.
struct Tracked {
    body: Body,
    finished: Arc<AtomicBool>,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.body.is_end_stream() {
            self.finished.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
