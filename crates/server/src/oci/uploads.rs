use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, header};
use berth_core::access::Actor;
use berth_core::registry::{Registry, UploadBody, UploadStatus};
use berth_core::{Error, Result};
use berth_oci::path::{UploadId, UploadStart};
use berth_oci::range::parse_content_range;
use berth_oci::{Digest, RepositoryName};

use super::response::{empty, value};
use super::{body_stream, error, header_str};
use crate::AppState;

fn upload_body(headers: &HeaderMap, body: Body) -> Result<UploadBody> {
    let content_length = match header_str(headers, header::CONTENT_LENGTH) {
        Some(l) => {
            Some(l.trim().parse::<u64>().map_err(|_| Error::SizeInvalid(format!("invalid Content-Length {l:?}")))?)
        }
        None => None,
    };
    let content_range = match header_str(headers, header::CONTENT_RANGE) {
        Some(r) => Some(parse_content_range(r).map_err(|e| Error::BlobUploadInvalid(e.to_string()))?),
        None => None,
    };
    Ok(UploadBody { stream: body_stream(body), content_length, content_range })
}

/// `202` describing an open session: where to send the next chunk and what has arrived.
fn session(status: StatusCode, name: &RepositoryName, upload: &UploadStatus) -> Response<Body> {
    let mut response = empty(status);
    let h = response.headers_mut();
    h.insert(header::LOCATION, value(format!("/v2/{name}/blobs/uploads/{}", upload.id)));
    h.insert(header::RANGE, value(format!("0-{}", upload.length.saturating_sub(1))));
    h.insert("docker-upload-uuid", value(&upload.id));
    response
}

fn created(name: &RepositoryName, digest: &Digest) -> Response<Body> {
    let mut response = empty(StatusCode::CREATED);
    let h = response.headers_mut();
    h.insert(header::LOCATION, value(format!("/v2/{name}/blobs/{digest}")));
    h.insert("docker-content-digest", value(digest.as_str()));
    response
}

/// A chunk that does not continue the upload: 416, with where the upload stands.
fn out_of_order(name: &RepositoryName, id: &UploadId, offset: u64) -> Response<Body> {
    let mut response = error::response(Error::ChunkOutOfOrder { offset });
    let h = response.headers_mut();
    h.insert(header::LOCATION, value(format!("/v2/{name}/blobs/uploads/{}", id.as_str())));
    h.insert(header::RANGE, value(format!("0-{}", offset.saturating_sub(1))));
    h.insert("docker-upload-uuid", value(id.as_str()));
    response
}

pub async fn start(
    state: &AppState,
    name: &RepositoryName,
    start: UploadStart,
    headers: &HeaderMap,
    body: Body,
    actor: &Actor,
) -> Result<Response<Body>> {
    let registry = &state.registry;
    match start {
        UploadStart::Session { algorithm } => {
            let upload = registry.start_upload(name, algorithm, actor).await?;
            Ok(session(StatusCode::ACCEPTED, name, &upload))
        }
        UploadStart::Monolithic { digest } => {
            let blob = registry.upload_blob(name, &digest, upload_body(headers, body)?, actor).await?;
            Ok(created(name, &blob.digest))
        }
        UploadStart::Mount { digest, from } => {
            // Mounting from a repository the caller cannot read falls back to an upload,
            // exactly as when the blob is not there.
            let mounted = match from {
                Some(from) if !state.tenancy.access(&actor.principal, &from).await?.pull => None,
                from => registry.mount_blob(name, &digest, from.as_ref(), actor).await?,
            };
            match mounted {
                Some(blob) => Ok(created(name, &blob.digest)),
                None => {
                    let upload = registry.start_upload(name, digest.algorithm(), actor).await?;
                    Ok(session(StatusCode::ACCEPTED, name, &upload))
                }
            }
        }
    }
}

pub async fn status(registry: &Registry, name: &RepositoryName, id: &UploadId) -> Result<Response<Body>> {
    let upload = registry.upload_status(name, id.as_str()).await?;
    Ok(session(StatusCode::NO_CONTENT, name, &upload))
}

pub async fn patch(
    registry: &Registry,
    name: &RepositoryName,
    id: &UploadId,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response<Body>> {
    match registry.append_upload(name, id.as_str(), upload_body(headers, body)?).await {
        Ok(upload) => Ok(session(StatusCode::ACCEPTED, name, &upload)),
        Err(Error::ChunkOutOfOrder { offset }) => Ok(out_of_order(name, id, offset)),
        Err(e) => Err(e),
    }
}

pub async fn put(
    registry: &Registry,
    name: &RepositoryName,
    id: &UploadId,
    digest: &Digest,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response<Body>> {
    match registry.finish_upload(name, id.as_str(), digest, upload_body(headers, body)?).await {
        Ok(blob) => Ok(created(name, &blob.digest)),
        Err(Error::ChunkOutOfOrder { offset }) => Ok(out_of_order(name, id, offset)),
        Err(e) => Err(e),
    }
}

pub async fn cancel(registry: &Registry, name: &RepositoryName, id: &UploadId) -> Result<Response<Body>> {
    registry.cancel_upload(name, id.as_str()).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
