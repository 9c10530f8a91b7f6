//! The OCI distribution API under `/v2`: one dispatcher over the typed endpoint grammar.

mod blobs;
mod error;
mod listing;
mod manifests;
mod referrers;
mod response;
mod uploads;

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, header};
use berth_core::Error;
use berth_core::stream::ByteStream;
use berth_oci::path::{self, Endpoint};
use futures_util::TryStreamExt;

use crate::AppState;
use crate::limits::TrafficClass;
use response::HoldPermit;

pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let endpoint = match path::parse(parts.method.as_str(), parts.uri.path(), parts.uri.query()) {
        Ok(endpoint) => endpoint,
        Err(e) => return with_api_version(error::path_error(e)),
    };
    let Some(permit) = state.limits.admit(traffic_class(&endpoint)) else {
        return with_api_version(error::response(Error::TooManyRequests { retry_after_secs: 1 }));
    };
    // A streamed blob body keeps its slot until the last byte is sent; every other response
    // is complete when its handler returns.
    let streams_body = matches!(endpoint, Endpoint::GetBlob { head: false, .. });
    let registry = &state.registry;
    let headers = &parts.headers;
    let result = match endpoint {
        Endpoint::ApiVersion => Ok(response::json(axum::http::StatusCode::OK, &serde_json::json!({}))),
        Endpoint::Catalog(page) => listing::catalog(registry, &page).await,
        Endpoint::ListTags { name, page } => listing::tags(registry, &name, &page).await,
        Endpoint::GetManifest { name, reference, head } => {
            manifests::get(registry, &name, &reference, head, headers).await
        }
        Endpoint::PutManifest { name, reference, tags } => {
            manifests::put(registry, &name, &reference, &tags, headers, body).await
        }
        Endpoint::DeleteManifest { name, reference } => manifests::delete(registry, &name, &reference).await,
        Endpoint::GetBlob { name, digest, head } => blobs::get(registry, &name, &digest, head, headers).await,
        Endpoint::DeleteBlob { name, digest } => blobs::delete(registry, &name, &digest).await,
        Endpoint::StartUpload { name, start } => uploads::start(registry, &name, start, headers, body).await,
        Endpoint::GetUpload { name, id } => uploads::status(registry, &name, &id).await,
        Endpoint::PatchUpload { name, id } => uploads::patch(registry, &name, &id, headers, body).await,
        Endpoint::PutUpload { name, id, digest } => uploads::put(registry, &name, &id, &digest, headers, body).await,
        Endpoint::DeleteUpload { name, id } => uploads::cancel(registry, &name, &id).await,
        Endpoint::Referrers { name, digest, artifact_type } => {
            referrers::list(registry, &name, &digest, artifact_type.as_deref()).await
        }
    };
    let response = result.unwrap_or_else(error::response);
    if streams_body {
        with_api_version(response.map(|body| Body::new(HoldPermit::new(body, permit))))
    } else {
        drop(permit);
        with_api_version(response)
    }
}

fn traffic_class(endpoint: &Endpoint) -> TrafficClass {
    match endpoint {
        Endpoint::ApiVersion
        | Endpoint::Catalog(_)
        | Endpoint::ListTags { .. }
        | Endpoint::GetManifest { .. }
        | Endpoint::GetBlob { .. }
        | Endpoint::Referrers { .. } => TrafficClass::Pull,
        Endpoint::PutManifest { .. }
        | Endpoint::DeleteManifest { .. }
        | Endpoint::DeleteBlob { .. }
        | Endpoint::StartUpload { .. }
        | Endpoint::GetUpload { .. }
        | Endpoint::PatchUpload { .. }
        | Endpoint::PutUpload { .. }
        | Endpoint::DeleteUpload { .. } => TrafficClass::Push,
    }
}

fn with_api_version(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert("docker-distribution-api-version", HeaderValue::from_static("registry/2.0"));
    response
}

/// A request body as the stream the use cases consume.
fn body_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(io::Error::other))
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
