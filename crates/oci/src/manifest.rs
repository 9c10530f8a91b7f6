//! Lenient views of image manifests and indexes.
//!
//! The pushed bytes are what Berth stores and serves; this module only reads enough of them
//! to validate the document and to learn what it references (config, layers, child
//! manifests, subject) and how it presents itself to the referrers API.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::digest::Digest;
use crate::media_type::{self, ManifestKind};

/// Manifests larger than this are refused (the spec asks registries to take at least 4 MB).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
    /// The descriptor lists `urls` the content may also be fetched from.
    pub has_urls: bool,
}

impl Descriptor {
    /// Whether the registry must hold this blob for the manifest to be complete: foreign
    /// (non-distributable) layers that point elsewhere need not be pushed.
    pub fn must_be_present(&self) -> bool {
        !(self.has_urls && media_type::is_non_distributable(&self.media_type))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The manifest's media type, from `Content-Type`, the body's `mediaType`, or its shape.
    pub media_type: String,
    pub kind: ManifestKind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    /// Child manifests of an index.
    pub children: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// How the manifest shows in a referrers listing: its `artifactType`, else (for an image
    /// manifest) its config's media type.
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error(
        "Docker schema 1 manifests are not supported; push the image as Docker schema 2 or OCI (e.g. skopeo copy --format v2s2)"
    )]
    Schema1,
    #[error("{0}")]
    Invalid(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<Value>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
    subject: Option<RawDescriptor>,
    annotations: Option<Map<String, Value>>,
    /// Only schema 1 manifests have this.
    fs_layers: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: Option<String>,
    size: Option<i64>,
    artifact_type: Option<String>,
    annotations: Option<Map<String, Value>>,
    urls: Option<Vec<String>>,
}

fn invalid(msg: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(msg.into())
}

fn is_generic_content_type(ct: &str) -> bool {
    ct.is_empty() || ct == "application/json" || ct == "application/octet-stream"
}

/// Parses and validates a manifest. `content_type` is the request's `Content-Type`, if any.
pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
    if bytes.len() > MAX_MANIFEST_SIZE {
        return Err(invalid("manifest exceeds 4 MiB"));
    }
    let content_type = content_type.map(media_type::essence).filter(|ct| !is_generic_content_type(ct));
    if content_type.is_some_and(media_type::is_schema1) {
        return Err(ManifestError::Schema1);
    }
    let raw: RawManifest = serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("manifest is not valid JSON of the expected shape: {e}")))?;
    if raw.media_type.as_deref().is_some_and(media_type::is_schema1)
        || raw.fs_layers.is_some()
        || raw.schema_version.as_ref().and_then(Value::as_i64) == Some(1)
    {
        return Err(ManifestError::Schema1);
    }
    match raw.schema_version.as_ref().and_then(Value::as_i64) {
        Some(2) => {}
        Some(v) => return Err(invalid(format!("unsupported schemaVersion {v}; expected 2"))),
        None => return Err(invalid("schemaVersion must be the number 2")),
    }
    let media_type = match (content_type, raw.media_type.as_deref()) {
        (Some(ct), Some(body)) if ct != body => {
            return Err(invalid(format!("Content-Type {ct} does not match the manifest's mediaType {body}")));
        }
        (Some(ct), _) => ct.to_owned(),
        (None, Some(body)) => body.to_owned(),
        (None, None) if raw.manifests.is_some() => media_type::OCI_INDEX.to_owned(),
        (None, None) if raw.config.is_some() => media_type::OCI_MANIFEST.to_owned(),
        (None, None) => {
            return Err(invalid("cannot tell the manifest type: no Content-Type, mediaType, config or manifests"));
        }
    };
    let Some(kind) = media_type::manifest_kind(&media_type) else {
        return Err(invalid(format!(
            "unsupported manifest media type {media_type}; Berth stores OCI image manifests and indexes and Docker schema 2 manifests and manifest lists"
        )));
    };
    let subject = raw.subject.map(|d| descriptor(d, "subject")).transpose()?;
    let annotations = raw.annotations;
    match kind {
        ManifestKind::Image => {
            let config = raw.config.ok_or_else(|| invalid("an image manifest needs a config descriptor"))?;
            let config = descriptor(config, "config")?;
            let layers = raw
                .layers
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("layers[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let artifact_type = raw.artifact_type.or_else(|| Some(config.media_type.clone()));
            Ok(Manifest {
                media_type,
                kind,
                config: Some(config),
                layers,
                children: Vec::new(),
                subject,
                artifact_type,
                annotations,
            })
        }
        ManifestKind::Index => {
            let children = raw
                .manifests
                .ok_or_else(|| invalid("an index needs a manifests array"))?
                .into_iter()
                .enumerate()
                .map(|(i, d)| descriptor(d, &format!("manifests[{i}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Manifest {
                media_type,
                kind,
                config: None,
                layers: Vec::new(),
                children,
                subject,
                artifact_type: raw.artifact_type,
                annotations,
            })
        }
    }
}

fn descriptor(raw: RawDescriptor, field: &str) -> Result<Descriptor, ManifestError> {
    let media_type = raw.media_type.ok_or_else(|| invalid(format!("{field} has no mediaType")))?;
    let digest = raw.digest.ok_or_else(|| invalid(format!("{field} has no digest")))?;
    let digest = Digest::parse(&digest).map_err(|e| invalid(format!("{field}.digest: {e}")))?;
    let size = raw.size.ok_or_else(|| invalid(format!("{field} has no size")))?;
    let size = u64::try_from(size).map_err(|_| invalid(format!("{field}.size is negative")))?;
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: raw.artifact_type,
        annotations: raw.annotations,
        has_urls: raw.urls.is_some_and(|u| !u.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::*;
    use proptest::prelude::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",{extra}"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{D1}","size":7}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{D2}","size":42}}]}}"#
        )
    }

    #[test]
    fn parses_image_manifest() {
        let m = parse(image("").as_bytes(), Some(OCI_MANIFEST)).expect("valid");
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.layers[0].size, 42);
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.oci.image.config.v1+json"));
        assert!(m.subject.is_none());
    }

    #[test]
    fn artifact_type_and_subject() {
        let body = image(&format!(
            r#""artifactType":"application/vnd.example.sbom","subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{D2}","size":10}},"annotations":{{"a":"b"}},"#
        ));
        let m = parse(body.as_bytes(), None).expect("valid");
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example.sbom"));
        assert_eq!(m.subject.expect("subject").digest.as_str(), D2);
        assert_eq!(m.annotations.expect("annotations")["a"], "b");
    }

    #[test]
    fn index_and_detection_by_shape() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D1}","size":5,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
        );
        let m = parse(body.as_bytes(), Some("application/json")).expect("valid");
        assert_eq!(m.media_type, OCI_INDEX);
        assert_eq!(m.children.len(), 1);
        let m = parse(body.as_bytes(), Some(DOCKER_MANIFEST_LIST)).expect("valid");
        assert_eq!(m.kind, ManifestKind::Index);
    }

    #[test]
    fn refuses_bad_manifests() {
        assert_eq!(parse(b"{}", Some(DOCKER_SCHEMA1_SIGNED)), Err(ManifestError::Schema1));
        assert_eq!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#, None), Err(ManifestError::Schema1));
        for (body, ct) in [
            ("not json".to_owned(), None),
            ("[]".to_owned(), None),
            (r#"{"schemaVersion":2}"#.to_owned(), None),
            (r#"{"schemaVersion":3,"manifests":[]}"#.to_owned(), None),
            (image(""), Some(OCI_INDEX)),
            (image(""), Some("application/vnd.example")),
            (image("").replace("\"size\":42", "\"size\":-1"), None),
            (image("").replace("\"size\":42", "\"size\":4.5"), None),
            (image("").replace(D2, "sha256:zz"), None),
            (format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","layers":[]}}"#), None),
        ] {
            assert!(matches!(parse(body.as_bytes(), ct), Err(ManifestError::Invalid(_))), "{body} {ct:?}");
        }
    }

    #[test]
    fn foreign_layers_need_not_be_present() {
        let body = image("").replace(
            "\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\"",
            "\"mediaType\":\"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip\",\"urls\":[\"https://example.com/l\"]",
        );
        let m = parse(body.as_bytes(), None).expect("valid");
        assert!(!m.layers[0].must_be_present());
        assert!(m.config.expect("config").must_be_present());
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), ct in proptest::option::of(".{0,40}")) {
            let _ = parse(&bytes, ct.as_deref());
        }
    }
}
