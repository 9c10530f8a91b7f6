//! Quay's App Registry (CNR): packages made of SemVer releases, one gzip'd tar blob per
//! (release, media type), and channels pointing at releases.
//!
//! Built for OperatorHub's pattern (list a namespace, show each package's `default`, fetch
//! its blob, from thousands of clusters every hour): a package and a namespace listing are
//! each loaded in a fixed number of queries, cached until a write to them commits, and
//! concurrent misses share one load. Version resolution and listing filters run in memory.

pub mod store;
pub mod version;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::io::Read;
use std::sync::{Arc, OnceLock};

use berth_oci::{Digest, RepositoryName};
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::access::{Actor, Principal, RepositoryKind, Visibility};
use crate::cache::{Generations, RepoCache};
use crate::changes;
use crate::ports::{BlobRecord, BlobStore, Change, MetaStore};
use crate::stream::ByteStream;
use crate::tenancy::audit;
use crate::time::now_ms;
use crate::{Error, Result};
use store::AppPush;
use version::VersionQuery;

/// One (release, media type) of a package, with its blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRelease {
    pub release: String,
    pub media_type: String,
    /// Hex SHA-256 of the uncompressed tar (the protocol's digest).
    pub digest: String,
    /// The stored gzip bytes.
    pub blob: BlobRecord,
    /// JSON attached at push time.
    pub metadata: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppChannel {
    pub name: String,
    pub current: String,
    /// Newest first.
    pub releases: Vec<String>,
}

/// A repository as the App Registry sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppPackage {
    pub name: String,
    pub kind: RepositoryKind,
    pub visibility: Visibility,
    pub created_at: i64,
    /// Newest release first; one entry per media type.
    pub releases: Vec<AppRelease>,
    /// By name.
    pub channels: Vec<AppChannel>,
}

impl AppPackage {
    /// Release names, newest first, without repeats.
    pub fn release_names(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.releases.iter().map(|r| r.release.as_str()).filter(|r| seen.insert(*r)).collect()
    }

    /// The release a version query picks (`default`: the highest, pre-releases included).
    pub fn resolve(&self, query: &str) -> Result<Option<&str>> {
        let query = VersionQuery::parse(query).map_err(|e| Error::InvalidVersion(e.to_string()))?;
        Ok(version::resolve(&query, self.release_names()))
    }

    pub fn manifest(&self, release: &str, media_type: &str) -> Option<&AppRelease> {
        self.releases.iter().find(|r| r.release == release && r.media_type == media_type)
    }

    /// Channels whose current release is `release`.
    pub fn channels_at(&self, release: &str) -> Vec<&str> {
        self.channels.iter().filter(|c| c.current == release).map(|c| c.name.as_str()).collect()
    }

    pub fn channel(&self, name: &str) -> Option<&AppChannel> {
        self.channels.iter().find(|c| c.name == name)
    }

    /// The blob with protocol digest `digest`, if one of this package's releases has it.
    pub fn blob(&self, digest: &str) -> Option<&AppRelease> {
        self.releases.iter().find(|r| r.digest == digest)
    }
}

/// One (release, media type) as a listing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRelease {
    pub release: String,
    pub media_type: String,
    pub created_at: i64,
}

/// A package in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedPackage {
    pub name: String,
    pub namespace: String,
    pub visibility: Visibility,
    /// Newest first (only those with the listing's media type, when it has one).
    pub releases: Vec<String>,
    pub default: String,
    /// Media types of the default release.
    pub manifests: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A rendered response and its entity tag, computed once per cached value.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub body: Bytes,
    pub etag: String,
}

impl Rendered {
    /// `body` with a strong entity tag derived from its bytes.
    pub fn new(body: Bytes) -> Rendered {
        let hash = Sha256::digest(&body);
        let etag = format!("\"{}\"", hex::encode(&hash[..16]));
        Rendered { body, etag }
    }
}

/// The packages of a namespace (or of all namespaces), as loaded once per change.
#[derive(Debug)]
pub struct Listing {
    pub packages: Vec<ListedPackage>,
    /// What anonymous callers get (public packages only), rendered by the protocol layer
    /// on first use and shared until the listing changes.
    pub public_view: OnceLock<Rendered>,
}

/// A push as the protocol layer decoded it.
pub struct PushRequest {
    pub release: String,
    pub media_type: String,
    /// The gzip'd tar.
    pub blob: Bytes,
    pub metadata: Option<serde_json::Value>,
    pub force: bool,
    pub visibility: Visibility,
}

#[derive(Debug, Clone)]
pub struct AppRegistryConfig {
    /// Largest push request body (JSON with the base64 blob).
    pub max_push_bytes: u64,
    /// Largest uncompressed tar a push may carry (a gzip bomb stops here).
    pub max_unpacked_bytes: u64,
    /// Memory for cached packages and listings, in bytes.
    pub cache_bytes: u64,
}

impl Default for AppRegistryConfig {
    fn default() -> Self {
        AppRegistryConfig { max_push_bytes: 16 << 20, max_unpacked_bytes: 256 << 20, cache_bytes: 64 << 20 }
    }
}

/// The App Registry use cases.
pub struct AppRegistry {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    config: AppRegistryConfig,
    generations: Generations,
    packages: RepoCache<Option<Arc<AppPackage>>>,
    listings: RepoCache<Arc<Listing>>,
}

/// The generation key of a namespace's listing (`*`: all namespaces). Repository names
/// always contain a `/`, so these never collide with a package's key.
fn listing_key(namespace: Option<&str>) -> String {
    format!("listing:{}", namespace.unwrap_or("*"))
}

fn namespace_key(namespace: &str) -> String {
    format!("namespace:{namespace}")
}

impl AppRegistry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, config: AppRegistryConfig) -> AppRegistry {
        let packages = RepoCache::new("appr-packages", config.cache_bytes / 2, |p: &Option<Arc<AppPackage>>| {
            p.as_ref().map_or(64, |p| {
                let releases: usize = p.releases.iter().map(|r| 200 + r.metadata.as_ref().map_or(0, String::len)).sum();
                let channels: usize = p.channels.iter().map(|c| 64 + c.releases.len() * 24).sum();
                u32::try_from(128 + releases + channels).unwrap_or(u32::MAX)
            })
        });
        let listings = RepoCache::new("appr-listings", config.cache_bytes / 2, |l: &Arc<Listing>| {
            let packages: usize = l.packages.iter().map(|p| 160 + p.releases.len() * 24).sum();
            // The rendered view is about the size of the packages again.
            u32::try_from(2 * packages + 64).unwrap_or(u32::MAX)
        });
        AppRegistry { meta, blobs, config, generations: Generations::default(), packages, listings }
    }

    pub fn config(&self) -> &AppRegistryConfig {
        &self.config
    }

    /// The repository called `name` as the App Registry sees it (cached until it changes).
    pub async fn package(&self, name: &RepositoryName) -> Result<Option<Arc<AppPackage>>> {
        // Keyed also by the namespace's generation, which moves when a whole namespace goes.
        let key = format!("package@{}", self.generations.current(&namespace_key(name.namespace())));
        self.packages
            .get_or_load(&self.generations, name.as_str(), &key, async {
                Ok(self.meta.app_package(name).await?.map(Arc::new))
            })
            .await
    }

    /// The packages of `namespace` (all when `None`) having a release of `media_type` (any
    /// when `None`), loaded once per change.
    pub async fn listing(&self, namespace: Option<&str>, media_type: Option<&str>) -> Result<Arc<Listing>> {
        let key = listing_key(namespace);
        self.listings
            .get_or_load(&self.generations, &key, media_type.unwrap_or(""), async {
                let rows = self.meta.app_packages(namespace).await?;
                let packages = rows.into_iter().filter_map(|row| listed(row, media_type)).collect();
                Ok(Arc::new(Listing { packages, public_view: OnceLock::new() }))
            })
            .await
    }

    /// The private packages in `namespace` that `principal` may read.
    pub async fn readable_private(&self, principal: &Principal, namespace: Option<&str>) -> Result<HashSet<String>> {
        self.meta.readable_private_packages(principal, namespace).await
    }

    /// Publishes a release: validates it, stores the blob once in the global blob store and
    /// records the manifest, creating the package if needed.
    pub async fn push(&self, actor: &Actor, name: &RepositoryName, push: PushRequest) -> Result<()> {
        version::parse_release(&push.release).map_err(|e| Error::InvalidVersion(e.to_string()))?;
        let media_type = normalize_media_type(&push.media_type)?;
        if let Some(package) = self.package(name).await? {
            if package.kind != RepositoryKind::Application {
                return Err(Error::WrongKind(format!("{name} is an image repository, not an App Registry package")));
            }
            if !push.force && package.manifest(&push.release, &media_type).is_some() {
                return Err(exists(name, &push.release, &media_type));
            }
        }
        let limit = self.config.max_unpacked_bytes;
        let gzip = push.blob.clone();
        let digest = tokio::task::spawn_blocking(move || unpacked_digest(&gzip, limit))
            .await
            .map_err(|e| Error::Backend(format!("hashing task: {e}")))??;
        let (blob, written) = self.store_blob(&push.blob).await?;
        let now = now_ms();
        let details = json!({ "release": push.release, "media_type": media_type, "digest": digest });
        let record = AppPush {
            name: name.clone(),
            release: push.release,
            media_type,
            digest,
            blob: blob.clone(),
            metadata: push.metadata.map(|m| m.to_string()),
            force: push.force,
            visibility: push.visibility,
            creator: actor.principal.clone(),
            now,
            creation_audit: audit(
                actor,
                "create_repository",
                Some(name.namespace()),
                Some(name.as_str()),
                Some(json!({ "visibility": push.visibility.as_str(), "kind": "application" })),
            ),
            audit: audit(actor, "push_package", Some(name.namespace()), Some(name.as_str()), Some(details)),
        };
        let stored = self.meta.app_push(&record).await;
        if written && stored.as_ref().map_or(true, |s| s.storage_key != blob.storage_key) {
            self.discard(&blob.storage_key).await;
        }
        stored?;
        self.changed(name).await;
        Ok(())
    }

    /// Deletes one (release, media type); channels never keep pointing at a deleted release.
    pub async fn delete_release(
        &self,
        actor: &Actor,
        name: &RepositoryName,
        release: &str,
        media_type: &str,
    ) -> Result<()> {
        let media_type = normalize_media_type(media_type)?;
        let details = json!({ "release": release, "media_type": media_type });
        let entry = audit(actor, "delete_release", Some(name.namespace()), Some(name.as_str()), Some(details));
        let deleted = self.meta.app_delete_release(name, release, &media_type, &entry).await?;
        if !deleted {
            return Err(Error::PackageNotFound(format!(
                "package {name} has no release {release} of type {media_type}"
            )));
        }
        self.changed(name).await;
        Ok(())
    }

    /// Adds an existing release to a channel (creating it) and makes it the channel's current.
    pub async fn add_to_channel(
        &self,
        actor: &Actor,
        name: &RepositoryName,
        channel: &str,
        release: &str,
    ) -> Result<AppChannel> {
        check_channel_name(channel)?;
        let details = json!({ "channel": channel, "release": release });
        let entry = audit(actor, "set_channel", Some(name.namespace()), Some(name.as_str()), Some(details));
        let updated = self.meta.app_channel_add(name, channel, release, &entry).await?;
        self.changed(name).await;
        Ok(updated)
    }

    pub async fn remove_from_channel(
        &self,
        actor: &Actor,
        name: &RepositoryName,
        channel: &str,
        release: &str,
    ) -> Result<()> {
        let details = json!({ "channel": channel, "release": release });
        let entry = audit(actor, "remove_from_channel", Some(name.namespace()), Some(name.as_str()), Some(details));
        self.meta
            .app_channel_remove(name, channel, release, &entry)
            .await?
            .ok_or_else(|| Error::ChannelNotFound(format!("package {name} has no channel {channel}")))?;
        self.changed(name).await;
        Ok(())
    }

    pub async fn delete_channel(&self, actor: &Actor, name: &RepositoryName, channel: &str) -> Result<()> {
        let entry = audit(
            actor,
            "delete_channel",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "channel": channel })),
        );
        if !self.meta.app_channel_delete(name, channel, &entry).await? {
            return Err(Error::ChannelNotFound(format!("package {name} has no channel {channel}")));
        }
        self.changed(name).await;
        Ok(())
    }

    /// The gzip bytes of a release.
    pub async fn read_blob(&self, blob: &BlobRecord) -> Result<ByteStream> {
        self.blobs.read(&blob.storage_key, None).await
    }

    /// Forgets what is cached about a repository changed elsewhere (visibility, deletion),
    /// here and on the other instances.
    pub async fn forget(&self, name: &str) {
        self.forget_package(name);
        changes::announce(&*self.meta, Change::Package(name.to_owned())).await;
    }

    /// Forgets what is cached about a namespace whose repositories went away at once, here
    /// and on the other instances.
    pub async fn forget_namespace(&self, namespace: &str) {
        self.forget_packages_of(namespace);
        changes::announce(&*self.meta, Change::PackageNamespace(namespace.to_owned())).await;
    }

    /// Applies a change another instance announced.
    pub fn apply_change(&self, change: &Change) {
        match change {
            Change::Package(name) => self.forget_package(name),
            Change::PackageNamespace(namespace) => self.forget_packages_of(namespace),
            Change::Everything => self.generations.bump_all(),
            _ => {}
        }
    }

    fn forget_package(&self, name: &str) {
        self.generations.bump(name);
        let namespace = name.split_once('/').map_or(name, |(namespace, _)| namespace);
        self.generations.bump(&listing_key(Some(namespace)));
        self.generations.bump(&listing_key(None));
    }

    fn forget_packages_of(&self, namespace: &str) {
        self.generations.bump(&namespace_key(namespace));
        self.generations.bump(&listing_key(Some(namespace)));
        self.generations.bump(&listing_key(None));
    }

    /// Called after a write to `name` committed.
    async fn changed(&self, name: &RepositoryName) {
        self.forget(name.as_str()).await;
    }

    /// Stores gzip bytes once per content: returns the blob record and whether a new
    /// object was written.
    async fn store_blob(&self, bytes: &Bytes) -> Result<(BlobRecord, bool)> {
        let digest = Digest::parse(&format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
            .map_err(|e| Error::Backend(format!("computed digest: {e}")))?;
        if let Some(existing) = self.meta.blob(&digest).await? {
            return Ok((existing, false));
        }
        let object = self.blobs.create().await?;
        let body: ByteStream = Box::pin(futures_util::stream::once(std::future::ready(Ok(bytes.clone()))));
        let state = match self.blobs.append(&object.key, 0, &object.backend_state, body).await {
            Ok(state) => state,
            Err(e) => {
                self.discard(&object.key).await;
                return Err(e);
            }
        };
        if let Err(e) = self.blobs.complete(&object.key, &state).await {
            self.discard(&object.key).await;
            return Err(e);
        }
        Ok((BlobRecord { digest, size: bytes.len() as u64, storage_key: object.key }, true))
    }

    async fn discard(&self, key: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(key, error = %e, "removing a redundant App Registry object failed");
        }
    }
}

/// The 409 for a push over an existing release.
pub fn exists(name: &RepositoryName, release: &str, media_type: &str) -> Error {
    Error::Conflict(format!(
        "package {name} already has release {release} of type {media_type}; push with force to replace it"
    ))
}

/// A listing entry for `row`, or `None` when it has no release (of `media_type`).
fn listed(row: store::PackageRow, media_type: Option<&str>) -> Option<ListedPackage> {
    let mut by_release: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut updated_at = row.created_at;
    for r in &row.releases {
        updated_at = updated_at.max(r.created_at);
        if media_type.is_none_or(|m| m == r.media_type) {
            by_release.entry(r.release.clone()).or_default().insert(r.media_type.clone());
        }
    }
    let mut releases: Vec<String> = by_release.keys().cloned().collect();
    version::sort_descending(&mut releases);
    let default = releases.first()?.clone();
    let manifests = by_release.remove(&default).map(|m| m.into_iter().collect()).unwrap_or_default();
    let namespace = row.name.split_once('/').map_or("", |(ns, _)| ns).to_owned();
    Some(ListedPackage {
        name: row.name,
        namespace,
        visibility: row.visibility,
        releases,
        default,
        manifests,
        created_at: row.created_at,
        updated_at,
    })
}

/// The short form of a media type: `application/vnd.<v>.package-manifest.<t>.<...>.json`
/// becomes `<t>`; anything else must already be a short name.
pub fn normalize_media_type(media_type: &str) -> Result<String> {
    let short = media_type
        .strip_prefix("application/vnd.")
        .and_then(|rest| rest.split_once(".package-manifest."))
        .and_then(|(_, rest)| rest.split('.').next())
        .unwrap_or(media_type);
    let valid = !short.is_empty()
        && short.len() <= 64
        && short.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
    if !valid {
        return Err(Error::InvalidInput(format!(
            "{media_type:?} is not a media type (expected a short name such as helm, kpm or docker-compose)"
        )));
    }
    Ok(short.to_owned())
}

/// Quay's tag rule for channel names.
fn check_channel_name(channel: &str) -> Result<()> {
    let mut bytes = channel.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
    if first_ok && channel.len() <= 128 && bytes.all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b)) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("{channel:?} is not a valid channel name")))
    }
}

/// The protocol's digest: hex SHA-256 of the decompressed tar stream. Refuses data that is
/// not gzip, and stops at `limit` uncompressed bytes.
pub fn unpacked_digest(gzip: &[u8], limit: u64) -> Result<String> {
    let invalid =
        |detail: String| Error::InvalidInput(format!("the blob is not a gzip-compressed tar archive: {detail}"));
    let mut decoder = flate2::read::MultiGzDecoder::new(gzip).take(limit.saturating_add(1));
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut total: u64 = 0;
    loop {
        let n = decoder.read(&mut buffer).map_err(|e| invalid(e.to_string()))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buffer[..n]);
    }
    if total > limit {
        return Err(Error::TooLarge(format!("the package unpacks to more than {limit} bytes")));
    }
    if total == 0 {
        return Err(invalid("it is empty".into()));
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).expect("compress");
        encoder.finish().expect("finish")
    }

    #[test]
    fn digest_is_over_the_uncompressed_bytes() {
        let tar = vec![7u8; 3000];
        let want = hex::encode(Sha256::digest(&tar));
        assert_eq!(unpacked_digest(&gzip(&tar), 1 << 20).expect("valid"), want);
        let mut other = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        other.write_all(&tar).expect("compress");
        assert_eq!(unpacked_digest(&other.finish().expect("finish"), 1 << 20).expect("valid"), want);
        assert!(matches!(unpacked_digest(b"not gzip", 1 << 20), Err(Error::InvalidInput(_))));
        assert!(matches!(unpacked_digest(&gzip(&tar), 100), Err(Error::TooLarge(_))));
        assert!(matches!(unpacked_digest(&gzip(b""), 100), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn media_types_normalize_to_short_names() {
        assert_eq!(normalize_media_type("helm").expect("short"), "helm");
        assert_eq!(normalize_media_type("application/vnd.cnr.package-manifest.helm.v0.json").expect("long"), "helm");
        assert_eq!(
            normalize_media_type("application/vnd.appr.package-manifest.docker-compose.v0.json").expect("long"),
            "docker-compose"
        );
        assert!(normalize_media_type("").is_err());
        assert!(normalize_media_type("Helm/../x").is_err());
    }

    #[test]
    fn listings_sort_releases_and_pick_the_default() {
        let row = |releases: &[(&str, &str)]| store::PackageRow {
            name: "ns/pkg".into(),
            visibility: Visibility::Public,
            created_at: 1,
            releases: releases
                .iter()
                .enumerate()
                .map(|(i, (r, m))| ListedRelease {
                    release: (*r).into(),
                    media_type: (*m).into(),
                    created_at: i as i64,
                })
                .collect(),
        };
        let listed_all =
            listed(row(&[("1.0.0", "helm"), ("2.0.0-beta.1", "helm"), ("1.1.0", "kpm")]), None).expect("has releases");
        assert_eq!(listed_all.releases, ["2.0.0-beta.1", "1.1.0", "1.0.0"]);
        assert_eq!(listed_all.default, "2.0.0-beta.1");
        assert_eq!(listed_all.manifests, ["helm"]);
        assert_eq!(listed_all.namespace, "ns");
        let kpm = listed(row(&[("1.0.0", "helm"), ("1.1.0", "kpm")]), Some("kpm")).expect("has kpm");
        assert_eq!((kpm.releases, kpm.default), (vec!["1.1.0".to_owned()], "1.1.0".to_owned()));
        assert!(listed(row(&[("1.0.0", "helm")]), Some("kpm")).is_none());
        assert!(listed(row(&[]), None).is_none());
    }

    #[test]
    fn channel_names_follow_the_tag_rule() {
        assert!(check_channel_name("stable").is_ok());
        assert!(check_channel_name("_beta-1.x").is_ok());
        assert!(check_channel_name("").is_err());
        assert!(check_channel_name(".hidden").is_err());
        assert!(check_channel_name("a/b").is_err());
    }
}
