//! The one place where errors become management-API responses: RFC 9457 problem JSON
//! `{"type","title","status","detail","code"}`, where `code` is stable for programs.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::response::IntoResponse;
use berth_core::Error;
use serde_json::json;

/// An error on its way to becoming a problem response.
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response<Body> {
        let (status, code) = match &self.0 {
            Error::InvalidInput(_)
            | Error::InvalidVersion(_)
            | Error::ManifestInvalid(_)
            | Error::DigestInvalid(_)
            | Error::SizeInvalid(_)
            | Error::Unsupported(_)
            | Error::BlobUploadInvalid(_)
            | Error::ChunkOutOfOrder { .. }
            | Error::ManifestBlobUnknown(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Denied(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_)
            | Error::PackageNotFound(_)
            | Error::ReleaseNotFound(_)
            | Error::ChannelNotFound(_)
            | Error::NameUnknown(_)
            | Error::ManifestUnknown(_)
            | Error::BlobUnknown(_)
            | Error::BlobUploadUnknown => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict(_) | Error::WrongKind(_) => (StatusCode::CONFLICT, "conflict"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Error::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Backend(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let detail = if let Error::Backend(detail) = &self.0 {
            tracing::error!(error = %detail, "management API request failed inside Berth");
            "internal error; see the server log".to_owned()
        } else {
            self.0.to_string()
        };
        let mut response = problem(status, code, &detail);
        let h = response.headers_mut();
        match &self.0 {
            Error::Unauthorized(_) => {
                h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"berth\""));
            }
            Error::TooManyRequests { retry_after_secs } | Error::Unavailable { retry_after_secs, .. } => {
                h.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

/// A problem response with this status, stable code and detail.
pub fn problem(status: StatusCode, code: &str, detail: &str) -> Response<Body> {
    let body = json!({
        "type": "about:blank",
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut response = Response::new(Body::from(serde_json::to_vec(&body).unwrap_or_default()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}
