//! Errors on `/cnr`, in Quay's App Registry shape: `{"error": {"code", "message", "details"}}`.
//! Every core error maps here, in one place.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use berth_core::Error;
use serde_json::{Value, json};

use super::endpoint::PathError;
use crate::oci::response;

/// An App Registry error response in the making.
#[derive(Debug)]
pub struct CnrError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    retry_after: Option<u64>,
}

impl CnrError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> CnrError {
        CnrError { status, code, message: message.into(), details: json!({}), retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> CnrError {
        self.details = details;
        self
    }

    pub fn into_response(self) -> Response<Body> {
        let body = json!({ "error": { "code": self.code, "message": self.message, "details": self.details } });
        let mut response = response::json(self.status, &body);
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<Error> for CnrError {
    fn from(e: Error) -> CnrError {
        let message = e.to_string();
        let (status, code) = match &e {
            Error::PackageNotFound(_) | Error::NameUnknown(_) | Error::NotFound(_) | Error::BlobUnknown(_) => {
                (StatusCode::NOT_FOUND, "package-not-found")
            }
            Error::ReleaseNotFound(_) | Error::ManifestUnknown(_) => {
                (StatusCode::NOT_FOUND, "package-release-not-found")
            }
            Error::ChannelNotFound(_) => (StatusCode::NOT_FOUND, "channel-not-found"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "package-exists"),
            Error::InvalidVersion(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-release"),
            // Quay answered 405 for a package push onto an image repository's name.
            Error::WrongKind(_) => (StatusCode::METHOD_NOT_ALLOWED, "invalid-usage"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized-access"),
            Error::Denied(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "invalid-usage"),
            Error::Unsupported(_) => (StatusCode::NOT_IMPLEMENTED, "unsupported"),
            Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests"),
            Error::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::InvalidInput(_)
            | Error::DigestInvalid(_)
            | Error::SizeInvalid(_)
            | Error::ManifestInvalid(_)
            | Error::ManifestBlobUnknown(_)
            | Error::BlobUploadInvalid(_)
            | Error::BlobUploadUnknown
            | Error::ChunkOutOfOrder { .. } => (StatusCode::BAD_REQUEST, "invalid-usage"),
            Error::Backend(detail) => {
                tracing::error!(%detail, "App Registry request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal-error")
            }
        };
        let message = if matches!(e, Error::Backend(_)) { "internal error".to_owned() } else { message };
        let retry_after = match e {
            Error::TooManyRequests { retry_after_secs } | Error::Unavailable { retry_after_secs, .. } => {
                Some(retry_after_secs)
            }
            _ => None,
        };
        CnrError { status, code, message, details: json!({}), retry_after }
    }
}

impl From<PathError> for CnrError {
    fn from(e: PathError) -> CnrError {
        match e {
            PathError::NotFound => CnrError::new(StatusCode::NOT_FOUND, "not-found", "no such App Registry endpoint"),
            PathError::MethodNotAllowed(allow) => CnrError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                format!("this endpoint takes {allow}"),
            ),
            PathError::Name(detail) => {
                CnrError::new(StatusCode::BAD_REQUEST, "invalid-usage", format!("invalid package name {detail}"))
            }
        }
    }
}

pub type CnrResult<T> = Result<T, CnrError>;
