//! Building responses: JSON bodies, and a body wrapper that keeps the request's traffic-class
//! slot until the last byte is sent.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Response, StatusCode, header};
use http_body::{Frame, SizeHint};

use crate::limits::Admission;

pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    json_as(status, "application/json", value)
}

pub fn json_as(status: StatusCode, content_type: &'static str, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// An empty response with `Content-Length: 0`.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    response
}

/// A header value from text that came from validated data (digests, names, numbers);
/// anything unrepresentable degrades to an empty value rather than a panic.
pub fn value(text: impl AsRef<str>) -> HeaderValue {
    HeaderValue::from_str(text.as_ref()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A response body that keeps its request's place in its traffic class until it is sent.
pub struct HoldPermit {
    body: Body,
    _admission: Admission,
}

impl HoldPermit {
    pub fn new(body: Body, admission: Admission) -> HoldPermit {
        HoldPermit { body, _admission: admission }
    }
}

impl http_body::Body for HoldPermit {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
