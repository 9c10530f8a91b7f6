//! The registry use cases: what each OCI operation means, independent of HTTP and SQL.

mod blobs;
mod listing;
mod manifests;
mod referrers;
mod uploads;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

pub use blobs::BlobRead;
pub use listing::Listing;
pub use manifests::PushedManifest;
pub use referrers::Referrers;
pub use uploads::{UploadBody, UploadStatus};

use berth_oci::RepositoryName;

use crate::access::Actor;
use crate::cache::{Generations, RepoCache};
use crate::changes;
use crate::ports::{BlobRecord, BlobStore, Change, ManifestRecord, MetaStore};
use crate::tenancy::audit;
use crate::tenancy::records::AuditEntry;

#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// Largest blob accepted, in bytes.
    pub max_blob_size: u64,
    /// Most tags or repositories one listing page returns, whatever `n` asks for.
    pub page_limit: u32,
    /// Most referrers one response lists.
    pub referrers_limit: u32,
    /// Memory for cached manifests (by tag and by digest), in bytes.
    pub manifest_cache_bytes: u64,
    /// Memory for cached blob lookups, in bytes.
    pub blob_cache_bytes: u64,
    /// When set, whole-blob downloads are redirected to a URL of the blob store valid this
    /// long (when the store has such URLs), so the bytes bypass Berth.
    pub blob_redirect_ttl: Option<std::time::Duration>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            max_blob_size: 32 << 30,
            page_limit: 10_000,
            referrers_limit: 10_000,
            manifest_cache_bytes: 16 << 20,
            blob_cache_bytes: 4 << 20,
            blob_redirect_ttl: None,
        }
    }
}

/// The registry: use cases over a metadata store and a blob store, with the pull-path caches.
pub struct Registry {
    meta: Arc<dyn MetaStore>,
    blobs: Arc<dyn BlobStore>,
    config: RegistryConfig,
    generations: Generations,
    manifest_cache: RepoCache<Option<Arc<ManifestRecord>>>,
    blob_cache: RepoCache<Option<BlobRecord>>,
    tag_cache: RepoCache<Option<Arc<Vec<String>>>>,
    upload_locks: UploadLocks,
}

impl Registry {
    pub fn new(meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>, config: RegistryConfig) -> Registry {
        let manifest_cache =
            RepoCache::new("manifests", config.manifest_cache_bytes, |m: &Option<Arc<ManifestRecord>>| {
                m.as_ref().map_or(0, |m| u32::try_from(m.bytes.len() + m.media_type.len() + 160).unwrap_or(u32::MAX))
            });
        let blob_cache = RepoCache::new("blobs", config.blob_cache_bytes, |b: &Option<BlobRecord>| {
            b.as_ref().map_or(0, |b| u32::try_from(b.storage_key.len() + 200).unwrap_or(u32::MAX))
        });
        let tag_cache = RepoCache::new("tags", config.manifest_cache_bytes / 4, |t: &Option<Arc<Vec<String>>>| {
            t.as_ref().map_or(0, |t| u32::try_from(t.iter().map(|s| s.len() + 24).sum::<usize>()).unwrap_or(u32::MAX))
        });
        Registry {
            meta,
            blobs,
            config,
            generations: Generations::default(),
            manifest_cache,
            blob_cache,
            tag_cache,
            upload_locks: UploadLocks::default(),
        }
    }

    /// Whether both stores answer (readiness).
    pub async fn check_stores(&self) -> crate::Result<()> {
        self.meta.ping().await?;
        self.blobs.ping().await
    }

    /// The metadata store's connection pools, for the metrics.
    pub fn connection_pools(&self) -> Vec<crate::ports::PoolUsage> {
        self.meta.connection_pools()
    }

    /// Upload sessions open now, for the metrics.
    pub async fn count_uploads(&self) -> crate::Result<u64> {
        self.meta.count_uploads().await
    }

    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    /// After a change to `repository` committed: drops what this instance cached about it
    /// and tells the other instances to do the same.
    async fn changed(&self, repository: &str) {
        self.generations.bump(repository);
        changes::announce(&*self.meta, Change::Repository(repository.to_owned())).await;
    }

    /// Drops everything cached about a repository whose metadata changed elsewhere (its
    /// visibility, its permissions), here and on the other instances.
    pub async fn forget(&self, name: &RepositoryName) {
        self.changed(name.as_str()).await;
    }

    /// Applies a change another instance announced.
    pub fn apply_change(&self, change: &Change) {
        match change {
            Change::Repository(name) => self.generations.bump(name),
            Change::Everything => self.generations.bump_all(),
            _ => {}
        }
    }

    /// After a repository was deleted: removes the bytes of its ended upload sessions and
    /// forgets it. Blob bytes stay for garbage collection (other repositories may use them).
    pub async fn repository_deleted(&self, name: &RepositoryName, upload_keys: &[String]) {
        for key in upload_keys {
            self.discard_object(key).await;
        }
        self.changed(name.as_str()).await;
    }
}

/// The "repository created" audit row written if a push creates the repository.
fn creation_audit(actor: &Actor, name: &RepositoryName) -> AuditEntry {
    audit(
        actor,
        "create_repository",
        Some(name.namespace()),
        Some(name.as_str()),
        Some(serde_json::json!({ "visibility": "private" })),
    )
}

/// One async mutex per live upload session, so requests on the same session take turns;
/// entries disappear once nobody holds them.
#[derive(Default)]
struct UploadLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl UploadLocks {
    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= 1024 {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.to_owned(), Arc::downgrade(&lock));
        lock
    }
}
