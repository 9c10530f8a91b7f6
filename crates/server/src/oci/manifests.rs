use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, header};
use berth_core::access::Actor;
use berth_core::registry::Registry;
use berth_core::{Error, Result};
use berth_oci::manifest::MAX_MANIFEST_SIZE;
use berth_oci::{Reference, RepositoryName, Tag};
use http_body_util::{BodyExt, Limited};

use super::header_str;
use super::response::{empty, value};

pub async fn get(
    registry: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response<Body>> {
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok());
    let manifest = registry.manifest(name, reference, accept).await?;
    let len = manifest.bytes.len();
    let body = if head { Body::empty() } else { Body::from(manifest.bytes.clone()) };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, value(&manifest.media_type));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert("docker-content-digest", value(manifest.digest.as_str()));
    h.insert(header::ETAG, value(format!("\"{}\"", manifest.digest)));
    Ok(response)
}

pub async fn put(
    registry: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    extra_tags: &[Tag],
    headers: &HeaderMap,
    body: Body,
    actor: &Actor,
) -> Result<Response<Body>> {
    let too_large = || Error::TooLarge(format!("manifest is larger than {MAX_MANIFEST_SIZE} bytes"));
    if header_str(headers, header::CONTENT_LENGTH)
        .and_then(|l| l.parse::<u64>().ok())
        .is_some_and(|l| l > MAX_MANIFEST_SIZE as u64)
    {
        return Err(too_large());
    }
    let bytes = match Limited::new(body, MAX_MANIFEST_SIZE).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err(Error::ManifestInvalid(format!("could not read the manifest body: {e}"))),
    };
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let pushed = registry.push_manifest(name, reference, extra_tags, content_type, bytes, actor).await?;
    let mut response = empty(StatusCode::CREATED);
    let h = response.headers_mut();
    h.insert(header::LOCATION, value(format!("/v2/{name}/manifests/{}", pushed.digest)));
    h.insert("docker-content-digest", value(pushed.digest.as_str()));
    if let Some(subject) = &pushed.subject {
        h.insert("oci-subject", value(subject.as_str()));
    }
    for tag in &pushed.tags {
        h.append("oci-tag", value(tag.as_str()));
    }
    Ok(response)
}

pub async fn delete(
    registry: &Registry,
    name: &RepositoryName,
    reference: &Reference,
    actor: &Actor,
) -> Result<Response<Body>> {
    registry.delete_manifest(name, reference, actor).await?;
    Ok(empty(StatusCode::ACCEPTED))
}
