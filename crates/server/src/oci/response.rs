//! Building responses: JSON bodies and header values.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};

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
