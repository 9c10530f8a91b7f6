//! The OCI distribution API under `/v2`: one dispatcher over the typed endpoint grammar.

mod blobs;
mod error;
mod listing;
mod manifests;
mod referrers;
pub(crate) mod response;
mod uploads;

use std::io;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use berth_core::Error;
use berth_core::access::{Actor, Principal};
use berth_core::stream::ByteStream;
use berth_oci::ErrorCode;
use berth_oci::path::{self, Endpoint};
use futures_util::TryStreamExt;

use crate::auth::{self, Decision, Need, Rejection};
use crate::held_body::hold_until_sent;
use crate::limits::TrafficClass;
use crate::observe::RouteLabel;
use crate::{AppState, ClientAddr};

pub async fn dispatch(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response<Body> {
    let (parts, body) = request.into_parts();
    let endpoint = match path::parse(parts.method.as_str(), parts.uri.path(), parts.uri.query()) {
        Ok(endpoint) => endpoint,
        Err(e) => return with_api_version(error::path_error(e)),
    };
    let class = traffic_class(&endpoint);
    let label = RouteLabel { class: class.as_str(), route: endpoint.kind() };
    let mut response = respond(&state, endpoint, class, parts, body).await;
    response.extensions_mut().insert(label);
    response
}

async fn respond(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    class: TrafficClass,
    parts: axum::http::request::Parts,
    body: Body,
) -> Response<Body> {
    let client_ip = ClientAddr::ip_of(&parts.extensions);
    let admitted = if matches!(endpoint, Endpoint::StartUpload { .. }) {
        state.limits.admit_new_work(class, client_ip).await
    } else {
        state.limits.admit(class, client_ip).await
    };
    let admission = match admitted {
        Ok(admission) => admission,
        Err(shed) => return with_api_version(error::response(shed)),
    };
    // A streamed blob body keeps its slot until the last byte is sent; every other response
    // is complete when its handler returns.
    let streams_body = matches!(endpoint, Endpoint::GetBlob { head: false, .. });
    let response = admission.run(handle(state, endpoint, class, &parts, body, client_ip)).await;
    if streams_body {
        with_api_version(response.map(|body| hold_until_sent(body, admission)))
    } else {
        drop(admission);
        with_api_version(response)
    }
}

async fn handle(
    state: &Arc<AppState>,
    endpoint: Endpoint,
    class: TrafficClass,
    parts: &axum::http::request::Parts,
    body: Body,
    client_ip: Option<std::net::IpAddr>,
) -> Response<Body> {
    let headers = &parts.headers;
    let actor = match authorize(state, &endpoint, headers, client_ip).await {
        Ok(principal) => Actor { principal, client_ip },
        Err(refusal) => return refusal,
    };
    if let Err(shed) = state.limits.check_principal(class, &actor.principal) {
        return error::response(shed);
    }
    let registry = &state.registry;
    let result = match endpoint {
        Endpoint::ApiVersion => Ok(response::json(StatusCode::OK, &serde_json::json!({}))),
        Endpoint::Catalog(page) => listing::catalog(registry, &actor, &page).await,
        Endpoint::ListTags { name, page } => listing::tags(registry, &name, &page).await,
        Endpoint::GetManifest { name, reference, head } => {
            manifests::get(registry, &name, &reference, head, headers).await
        }
        Endpoint::PutManifest { name, reference, tags } => {
            manifests::put(registry, &name, &reference, &tags, headers, body, &actor).await
        }
        Endpoint::DeleteManifest { name, reference } => manifests::delete(registry, &name, &reference, &actor).await,
        Endpoint::GetBlob { name, digest, head } => blobs::get(registry, &name, &digest, head, headers).await,
        Endpoint::DeleteBlob { name, digest } => blobs::delete(registry, &name, &digest, &actor).await,
        Endpoint::StartUpload { name, start } => uploads::start(state, &name, start, headers, body, &actor).await,
        Endpoint::GetUpload { name, id } => uploads::status(registry, &name, &id).await,
        Endpoint::PatchUpload { name, id } => uploads::patch(registry, &name, &id, headers, body).await,
        Endpoint::PutUpload { name, id, digest } => uploads::put(registry, &name, &id, &digest, headers, body).await,
        Endpoint::DeleteUpload { name, id } => uploads::cancel(registry, &name, &id).await,
        Endpoint::Referrers { name, digest, artifact_type } => {
            referrers::list(registry, &name, &digest, artifact_type.as_deref()).await
        }
    };
    result.unwrap_or_else(error::response)
}

/// Checks the caller against what the endpoint needs; the refusal is the whole response.
async fn authorize(
    state: &AppState,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    client_ip: Option<std::net::IpAddr>,
) -> Result<Principal, Response<Body>> {
    let challenge = |scope: Option<String>, error: Option<&str>, message: String| {
        let mut r = error::single(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            response::value(auth::challenge(state, headers, scope.as_deref(), error)),
        );
        r
    };
    let need = need(endpoint);
    let caller = match auth::caller(state, headers, client_ip).await {
        Ok(caller) => caller,
        Err(Rejection::Throttled(secs)) => {
            return Err(error::response(Error::TooManyRequests { retry_after_secs: secs }));
        }
        Err(Rejection::Failed(e)) => return Err(error::response(e)),
        Err(Rejection::BadCredentials(message)) => return Err(challenge(need.scope(), None, message)),
        Err(Rejection::BadToken(message)) => return Err(challenge(need.scope(), Some("invalid_token"), message)),
    };
    match auth::decide(state, &caller, &need).await {
        Ok(Decision::Allow(principal)) => Ok(principal),
        Ok(Decision::Challenge(scope)) => Err(challenge(scope, None, "authentication required".into())),
        Ok(Decision::NotVisible) => Err(not_visible(endpoint)),
        Ok(Decision::Denied) => {
            Err(error::single(StatusCode::FORBIDDEN, ErrorCode::Denied, "requested access to the resource is denied"))
        }
        Err(e) => Err(error::response(e)),
    }
}

/// What each endpoint needs of the caller.
fn need(endpoint: &Endpoint) -> Need<'_> {
    match endpoint {
        Endpoint::ApiVersion => Need::Authenticated,
        Endpoint::Catalog(_) => Need::Catalog,
        Endpoint::ListTags { name, .. }
        | Endpoint::GetManifest { name, .. }
        | Endpoint::GetBlob { name, .. }
        | Endpoint::Referrers { name, .. } => Need::Pull(name),
        Endpoint::PutManifest { name, .. }
        | Endpoint::StartUpload { name, .. }
        | Endpoint::GetUpload { name, .. }
        | Endpoint::PatchUpload { name, .. }
        | Endpoint::PutUpload { name, .. }
        | Endpoint::DeleteUpload { name, .. } => Need::Push(name),
        Endpoint::DeleteManifest { name, .. } | Endpoint::DeleteBlob { name, .. } => Need::Delete(name),
    }
}

/// What a pull of a repository the caller cannot read answers: the same as if it did not
/// exist.
fn not_visible(endpoint: &Endpoint) -> Response<Body> {
    match endpoint {
        Endpoint::GetManifest { reference, name, .. } => {
            error::response(Error::ManifestUnknown(format!("manifest {reference} is not known in {name}")))
        }
        Endpoint::GetBlob { digest, .. } => error::response(Error::BlobUnknown(digest.clone())),
        Endpoint::Referrers { .. } => referrers::empty(),
        Endpoint::ListTags { name, .. } => error::response(Error::NameUnknown(name.to_string())),
        _ => error::single(StatusCode::FORBIDDEN, ErrorCode::Denied, "requested access to the resource is denied"),
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

/// A JSON response, for the other modules of the server.
pub(crate) fn json_response(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    response::json(status, value)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}
