//! The JSON shapes of the App Registry protocol.

use axum::body::Bytes;
use berth_core::appregistry::{AppChannel, AppPackage, AppRelease, ListedPackage};
use serde_json::{Value, json};

/// Times as the protocol writes them: ISO 8601, UTC, no zone designator.
fn timestamp(ms: i64) -> String {
    let (year, month, day, hour, minute, second) = berth_core::time::civil_utc(ms.div_euclid(1000));
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{:03}", ms.rem_euclid(1000))
}

/// One (release, media type) manifest; `show` adds the channels currently at the release.
/// Media types use the reference server's `vnd.appr` form, which the `appr` CLI shortens for
/// display (Quay's `vnd.cnr` it prints in full).
pub fn manifest(package: &AppPackage, release: &AppRelease, with_channels: bool) -> Value {
    let metadata = release.metadata.as_deref().and_then(|m| serde_json::from_str::<Value>(m).ok());
    let mut view = json!({
        "package": package.name,
        "release": release.release,
        "mediaType": format!("application/vnd.appr.package-manifest.{}.v0.json", release.media_type),
        "content": {
            "digest": release.digest,
            "size": release.blob.size,
            "mediaType": format!("application/vnd.appr.package.{}.v0.tar+gzip", release.media_type),
            "urls": [],
        },
        "created_at": timestamp(release.created_at),
        "metadata": metadata,
    });
    if with_channels && let Some(object) = view.as_object_mut() {
        object.insert("channels".into(), json!(package.channels_at(&release.release)));
    }
    view
}

pub fn channel(channel: &AppChannel) -> Value {
    json!({ "name": channel.name, "current": channel.current, "releases": channel.releases })
}

pub fn listed(package: &ListedPackage) -> Value {
    json!({
        "name": package.name,
        "namespace": package.namespace,
        "releases": package.releases,
        "default": package.default,
        "manifests": package.manifests,
        "visibility": package.visibility.as_str(),
        "created_at": timestamp(package.created_at),
        "updated_at": timestamp(package.updated_at),
        "channels": null,
    })
}

pub fn to_bytes(value: &impl serde::Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_have_no_zone() {
        assert_eq!(super::timestamp(1_795_709_153_042), "2026-11-26T16:05:53.042");
    }
}
