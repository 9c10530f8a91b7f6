//! Manifest parsing never panics on any bytes and any Content-Type.
#![no_main]

use berth_oci::manifest;
use berth_oci::media_type::{self, ManifestKind};
use libfuzzer_sys::fuzz_target;

const TYPES: [Option<&str>; 6] = [
    None,
    Some(media_type::OCI_MANIFEST),
    Some(media_type::OCI_INDEX),
    Some(media_type::DOCKER_MANIFEST),
    Some(media_type::DOCKER_MANIFEST_LIST),
    Some("application/json"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    if let Ok(parsed) = manifest::parse(body, TYPES[selector as usize % TYPES.len()]) {
        assert_eq!(media_type::manifest_kind(&parsed.media_type), Some(parsed.kind));
        if parsed.kind == ManifestKind::Image {
            assert!(parsed.config.is_some() && parsed.children.is_empty());
        }
    }
});
