//! Building test content: pseudo-random bytes, image manifests, indexes, OCI layouts.

use std::path::Path;

use serde_json::{Value, json};

use super::sha256;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Deterministic pseudo-random bytes (xorshift), different for each seed.
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn descriptor(media_type: &str, content: &[u8]) -> Value {
    json!({ "mediaType": media_type, "digest": sha256(content), "size": content.len() })
}

/// An OCI image: a config, its layers and the manifest naming them.
pub struct Image {
    pub config: Vec<u8>,
    pub layers: Vec<Vec<u8>>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

/// A tar archive holding one regular file `name` with `content`, so that clients which
/// unpack layers (podman, buildah) accept it.
pub fn tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let field = |header: &mut [u8; 512], at: usize, value: &[u8]| header[at..at + value.len()].copy_from_slice(value);
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(&mut header, 124, format!("{:011o}\0", content.len()).as_bytes());
    field(&mut header, 136, b"00000000000\0");
    field(&mut header, 148, b"        ");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    let checksum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, format!("{checksum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

impl Image {
    /// An image whose layers are tar archives of `contents`.
    pub fn new(contents: &[&[u8]]) -> Image {
        Image::with(contents, "amd64", |_| {})
    }

    /// An image for `arch`, with `edit` applied to the manifest JSON before serializing.
    pub fn with(contents: &[&[u8]], arch: &str, edit: impl FnOnce(&mut Value)) -> Image {
        let layers: Vec<Vec<u8>> = contents.iter().enumerate().map(|(i, c)| tar(&format!("file{i}"), c)).collect();
        let layers: Vec<&[u8]> = layers.iter().map(Vec::as_slice).collect();
        let diff_ids: Vec<String> = layers.iter().map(|l| sha256(l)).collect();
        let config = serde_json::to_vec(&json!({
            "architecture": arch, "os": "linux",
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
            "config": {}
        }))
        .expect("json");
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, &config),
            "layers": layers.iter().map(|l| descriptor(OCI_LAYER, l)).collect::<Vec<_>>(),
        });
        edit(&mut manifest);
        let manifest = serde_json::to_vec(&manifest).expect("json");
        let digest = sha256(&manifest);
        Image { config, layers: layers.iter().map(|l| l.to_vec()).collect(), manifest, digest }
    }

    pub fn blobs(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.config.as_slice()).chain(self.layers.iter().map(Vec::as_slice))
    }
}

/// An OCI index over `(manifest bytes, arch)` pairs.
pub fn index(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(m, arch)| {
            let mut d = descriptor(OCI_MANIFEST, m);
            d["platform"] = json!({ "os": "linux", "architecture": arch });
            d
        })
        .collect();
    serde_json::to_vec(&json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests })).expect("json")
}

/// Writes an OCI image layout at `dir` holding `blobs` and naming `root` (an image manifest
/// or index, with its media type) as `tag`.
pub fn write_layout(dir: &Path, blobs: &[&[u8]], root: (&[u8], &str), tag: &str) {
    let blob_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blob_dir).expect("mkdir");
    for blob in blobs.iter().chain(std::iter::once(&root.0)) {
        let digest = sha256(blob);
        std::fs::write(blob_dir.join(digest.trim_start_matches("sha256:")), blob).expect("write blob");
    }
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("write oci-layout");
    let mut root_descriptor = descriptor(root.1, root.0);
    root_descriptor["annotations"] = json!({ "org.opencontainers.image.ref.name": tag });
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [root_descriptor] });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).expect("json")).expect("write index");
}
