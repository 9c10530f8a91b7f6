//! Manifest media types Berth stores, and `Accept` negotiation over them.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Layer media types whose bytes may live elsewhere (`urls`), so a manifest may reference
/// them without the blob being pushed.
const NON_DISTRIBUTABLE: &[&str] = &[
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
];

/// The kinds of manifest Berth accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest (OCI or Docker schema 2): a config and layers.
    Image,
    /// An image index (OCI) or manifest list (Docker): child manifests.
    Index,
}

pub fn manifest_kind(media_type: &str) -> Option<ManifestKind> {
    match media_type {
        OCI_MANIFEST | DOCKER_MANIFEST => Some(ManifestKind::Image),
        OCI_INDEX | DOCKER_MANIFEST_LIST => Some(ManifestKind::Index),
        _ => None,
    }
}

pub fn is_schema1(media_type: &str) -> bool {
    media_type == DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_SIGNED
}

pub fn is_non_distributable(media_type: &str) -> bool {
    NON_DISTRIBUTABLE.contains(&media_type)
}

/// The media type without parameters, trimmed and lowercased ASCII-wise.
pub fn essence(value: &str) -> &str {
    value.split(';').next().unwrap_or("").trim()
}

/// Whether a manifest stored as `stored` may be served to a client that sent `accept`
/// (every `Accept` header value, in order). A client that names no manifest type at all,
/// or accepts anything, gets what is stored; one that lists manifest types but not this
/// one does not (the registry cannot convert between formats).
pub fn accepts<'a>(accept: impl IntoIterator<Item = &'a str>, stored: &str) -> bool {
    let mut named_a_manifest_type = false;
    for value in accept {
        for item in value.split(',') {
            let item = essence(item);
            if item == stored || item == "*/*" || item == "application/*" {
                return true;
            }
            if manifest_kind(item).is_some() || is_schema1(item) {
                named_a_manifest_type = true;
            }
        }
    }
    !named_a_manifest_type
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation() {
        assert!(accepts([], OCI_INDEX));
        assert!(accepts(["application/json"], OCI_INDEX));
        assert!(accepts([DOCKER_MANIFEST, "application/vnd.oci.image.index.v1+json; q=0.5"], OCI_INDEX));
        assert!(accepts([format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}").as_str()], OCI_MANIFEST));
        assert!(!accepts([DOCKER_MANIFEST], OCI_INDEX));
        assert!(!accepts([DOCKER_SCHEMA1_SIGNED], DOCKER_MANIFEST));
        assert!(accepts(["*/*"], OCI_INDEX));
    }
}
