use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use berth_core::Result;
use berth_core::access::Actor;
use berth_core::registry::Registry;
use berth_oci::range::{ByteRange, parse_range};
use berth_oci::{Digest, RepositoryName};

use super::header_str;
use super::response::{empty, value};

pub async fn get(
    registry: &Registry,
    name: &RepositoryName,
    digest: &Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response<Body>> {
    let blob = registry.blob(name, digest).await?;
    let range = match header_str(headers, header::RANGE) {
        Some(r) if !head => parse_range(r, blob.size),
        _ => ByteRange::Full,
    };
    if range == ByteRange::Unsatisfiable {
        let mut response = empty(StatusCode::RANGE_NOT_SATISFIABLE);
        response.headers_mut().insert(header::CONTENT_RANGE, value(format!("bytes */{}", blob.size)));
        return Ok(response);
    }
    if !head
        && range == ByteRange::Full
        && let Some(url) = registry.blob_redirect(&blob).await?
    {
        let mut response = empty(StatusCode::TEMPORARY_REDIRECT);
        response.headers_mut().insert(header::LOCATION, value(url));
        response.headers_mut().insert("docker-content-digest", value(digest.as_str()));
        return Ok(response);
    }
    let size = blob.size;
    let (status, body, len, content_range) = if head {
        (StatusCode::OK, Body::empty(), size, None)
    } else {
        let read = registry.read_blob(blob, range).await?;
        match read.range {
            Some((start, end)) => (
                StatusCode::PARTIAL_CONTENT,
                Body::from_stream(read.body),
                end - start + 1,
                Some(format!("bytes {start}-{end}/{size}")),
            ),
            None => (StatusCode::OK, Body::from_stream(read.body), size, None),
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, len.into());
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("docker-content-digest", value(digest.as_str()));
    h.insert(header::ETAG, value(format!("\"{digest}\"")));
    if let Some(content_range) = content_range {
        h.insert(header::CONTENT_RANGE, value(content_range));
    }
    Ok(response)
}

pub async fn delete(
    registry: &Registry,
    name: &RepositoryName,
    digest: &Digest,
    actor: &Actor,
) -> Result<Response<Body>> {
    registry.delete_blob(name, digest, actor).await?;
    Ok(empty(StatusCode::ACCEPTED))
}
