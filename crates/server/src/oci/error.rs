//! The one place where errors become OCI error envelopes:
//! `{"errors":[{"code","message","detail"}]}` with the status the spec gives each code.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use berth_core::Error;
use berth_oci::ErrorCode;
use berth_oci::digest::DigestError;
use berth_oci::path::PathError;
use serde_json::{Value, json};

use super::response;

fn envelope(status: StatusCode, errors: Vec<(ErrorCode, String, Value)>) -> Response<Body> {
    let errors: Vec<Value> = errors
        .into_iter()
        .map(|(code, message, detail)| json!({ "code": code.as_str(), "message": message, "detail": detail }))
        .collect();
    response::json(status, &json!({ "errors": errors }))
}

pub fn single(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response<Body> {
    envelope(status, vec![(code, message.into(), Value::Null)])
}

pub fn response(error: Error) -> Response<Body> {
    let message = error.to_string();
    match error {
        Error::BlobUnknown(digest) => {
            envelope(StatusCode::NOT_FOUND, vec![(ErrorCode::BlobUnknown, message, json!(digest.as_str()))])
        }
        Error::BlobUploadUnknown => single(StatusCode::NOT_FOUND, ErrorCode::BlobUploadUnknown, message),
        Error::BlobUploadInvalid(_) => single(StatusCode::BAD_REQUEST, ErrorCode::BlobUploadInvalid, message),
        Error::ChunkOutOfOrder { .. } => {
            single(StatusCode::RANGE_NOT_SATISFIABLE, ErrorCode::BlobUploadInvalid, message)
        }
        Error::DigestInvalid(_) => single(StatusCode::BAD_REQUEST, ErrorCode::DigestInvalid, message),
        Error::ManifestBlobUnknown(missing) => envelope(
            StatusCode::BAD_REQUEST,
            missing
                .iter()
                .map(|d| {
                    (
                        ErrorCode::ManifestBlobUnknown,
                        format!("manifest references unknown blob or manifest {d}"),
                        json!(d.as_str()),
                    )
                })
                .collect(),
        ),
        Error::ManifestInvalid(_) => single(StatusCode::BAD_REQUEST, ErrorCode::ManifestInvalid, message),
        Error::ManifestUnknown(_) => single(StatusCode::NOT_FOUND, ErrorCode::ManifestUnknown, message),
        Error::NameUnknown(_) => single(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, message),
        Error::SizeInvalid(_) => single(StatusCode::BAD_REQUEST, ErrorCode::SizeInvalid, message),
        Error::TooLarge(_) => single(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::SizeInvalid, message),
        Error::Unsupported(_) => single(StatusCode::BAD_REQUEST, ErrorCode::Unsupported, message),
        Error::TooManyRequests { retry_after_secs } => {
            let mut r = single(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyRequests, message);
            r.headers_mut().insert(header::RETRY_AFTER, response::value(retry_after_secs.to_string()));
            r
        }
        Error::Unavailable { retry_after_secs, .. } => {
            let mut r = single(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, message);
            r.headers_mut().insert(header::RETRY_AFTER, response::value(retry_after_secs.to_string()));
            r
        }
        Error::Unauthorized(_) => single(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message),
        Error::Denied(_) | Error::WrongKind(_) => single(StatusCode::FORBIDDEN, ErrorCode::Denied, message),
        Error::NotFound(_) | Error::PackageNotFound(_) | Error::ReleaseNotFound(_) | Error::ChannelNotFound(_) => {
            single(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, message)
        }
        Error::Conflict(_) | Error::InvalidInput(_) | Error::InvalidVersion(_) => {
            single(StatusCode::BAD_REQUEST, ErrorCode::Unsupported, message)
        }
        Error::Backend(detail) => {
            tracing::error!(error = %detail, "request failed inside Berth");
            single(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Unknown, "internal error; see the server log")
        }
    }
}

/// Requests that do not parse into an endpoint.
pub fn path_error(error: PathError) -> Response<Body> {
    let message = error.to_string();
    match error {
        PathError::NotFound => single(StatusCode::NOT_FOUND, ErrorCode::NameUnknown, message),
        PathError::MethodNotAllowed { allow } => {
            let mut r = single(StatusCode::METHOD_NOT_ALLOWED, ErrorCode::Unsupported, message);
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        PathError::Name(_) => single(StatusCode::BAD_REQUEST, ErrorCode::NameInvalid, message),
        PathError::Digest(DigestError::Malformed(_)) | PathError::MissingDigest => {
            single(StatusCode::BAD_REQUEST, ErrorCode::DigestInvalid, message)
        }
        PathError::Digest(DigestError::Unsupported(_)) => {
            single(StatusCode::BAD_REQUEST, ErrorCode::Unsupported, message)
        }
        PathError::Tag { put: true, .. } => single(StatusCode::BAD_REQUEST, ErrorCode::ManifestInvalid, message),
        PathError::Tag { put: false, .. } => single(StatusCode::NOT_FOUND, ErrorCode::ManifestUnknown, message),
        PathError::UploadUnknown(_) => single(StatusCode::NOT_FOUND, ErrorCode::BlobUploadUnknown, message),
        PathError::Pagination(_) => single(StatusCode::BAD_REQUEST, ErrorCode::PaginationNumberInvalid, message),
    }
}
