use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use berth_core::Result;
use berth_core::registry::Registry;
use berth_oci::media_type::OCI_INDEX;
use berth_oci::{Digest, RepositoryName};
use serde_json::{Map, Value, json};

use super::response::json_as;

/// An index with no referrers.
pub fn empty() -> Response<Body> {
    json_as(StatusCode::OK, OCI_INDEX, &json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] }))
}

/// The referrers of `digest` as an image index (empty when there are none).
pub async fn list(
    registry: &Registry,
    name: &RepositoryName,
    digest: &Digest,
    artifact_type: Option<&str>,
) -> Result<Response<Body>> {
    let found = registry.referrers(name, digest, artifact_type).await?;
    let manifests: Vec<Value> = found
        .referrers
        .iter()
        .map(|r| {
            let mut d = Map::new();
            d.insert("mediaType".into(), json!(r.media_type));
            d.insert("digest".into(), json!(r.digest.as_str()));
            d.insert("size".into(), json!(r.size));
            if let Some(t) = &r.artifact_type {
                d.insert("artifactType".into(), json!(t));
            }
            if let Some(a) = &r.annotations {
                d.insert("annotations".into(), Value::Object(a.clone()));
            }
            Value::Object(d)
        })
        .collect();
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests });
    let mut response = json_as(StatusCode::OK, OCI_INDEX, &index);
    if found.filtered {
        response.headers_mut().insert("oci-filters-applied", HeaderValue::from_static("artifactType"));
    }
    Ok(response)
}
