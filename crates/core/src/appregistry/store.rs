//! The App Registry half of the metadata store port. Every read costs a fixed number of
//! queries whatever the number of packages, releases or channels; every mutation is one
//! transaction with its audit row.

use std::collections::HashSet;

use async_trait::async_trait;
use berth_oci::RepositoryName;

use super::{AppChannel, AppPackage, ListedRelease};
use crate::Result;
use crate::access::{Principal, RepositoryKind, Visibility};
use crate::ports::BlobRecord;
use crate::tenancy::records::AuditEntry;

/// One application repository with the releases a listing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRow {
    pub name: String,
    pub visibility: Visibility,
    pub created_at: i64,
    /// Every (release, media type), in no particular order.
    pub releases: Vec<ListedRelease>,
}

/// Everything one push writes.
#[derive(Debug, Clone)]
pub struct AppPush {
    pub name: RepositoryName,
    pub release: String,
    pub media_type: String,
    /// The protocol's digest: hex SHA-256 of the uncompressed tar.
    pub digest: String,
    /// The gzip bytes as stored in the BlobStore.
    pub blob: BlobRecord,
    /// Free JSON the client attached, echoed by `show`.
    pub metadata: Option<String>,
    /// Replace an existing (release, media type) instead of failing with `Conflict`.
    pub force: bool,
    /// The visibility of the package if this push creates it.
    pub visibility: Visibility,
    pub creator: Principal,
    pub now: i64,
    /// Written if the push creates the repository.
    pub creation_audit: AuditEntry,
    pub audit: AuditEntry,
}

#[async_trait]
pub trait AppRegistryStore: Send + Sync + 'static {
    /// The repository with every release (and its blob) and every channel; `None` when no
    /// repository has the name. An image repository comes back with its kind and nothing else.
    async fn app_package(&self, name: &RepositoryName) -> Result<Option<AppPackage>>;
    /// Every application repository in `namespace` (all namespaces when `None`) that has
    /// releases, with its releases, in one query.
    async fn app_packages(&self, namespace: Option<&str>) -> Result<Vec<PackageRow>>;
    /// The private application repositories in `namespace` (all when `None`) that
    /// `principal` may read, in one query.
    async fn readable_private_packages(
        &self,
        principal: &Principal,
        namespace: Option<&str>,
    ) -> Result<HashSet<String>>;
    /// The kind of the repository called `name`, if there is one.
    async fn repository_kind(&self, name: &RepositoryName) -> Result<Option<RepositoryKind>>;

    /// Stores a release's blob record and manifest, creating the package as a push does.
    /// Fails with `Conflict` when the (release, media type) exists and `force` is off, and
    /// with `WrongKind` on an image repository. Returns the blob as stored: a blob with the
    /// same protocol digest stored earlier wins, and when its key differs from
    /// `push.blob.storage_key` the caller deletes its now redundant object.
    async fn app_push(&self, push: &AppPush) -> Result<BlobRecord>;
    /// Deletes one (release, media type). When the release has no media type left it leaves
    /// every channel: a channel left empty is deleted, one whose current release it was moves
    /// to its highest remaining release. False when there was no such manifest.
    async fn app_delete_release(
        &self,
        name: &RepositoryName,
        release: &str,
        media_type: &str,
        audit: &AuditEntry,
    ) -> Result<bool>;
    /// Adds an existing release to a channel (creating the channel) and makes it current.
    /// `NotFound` when the package has no such release.
    async fn app_channel_add(
        &self,
        name: &RepositoryName,
        channel: &str,
        release: &str,
        audit: &AuditEntry,
    ) -> Result<AppChannel>;
    /// Takes a release out of a channel; the channel moves to its highest remaining release
    /// or, with none left, is deleted. `None` when the channel does not exist.
    async fn app_channel_remove(
        &self,
        name: &RepositoryName,
        channel: &str,
        release: &str,
        audit: &AuditEntry,
    ) -> Result<Option<()>>;
    /// Deletes a channel (its releases stay). False when it did not exist.
    async fn app_channel_delete(&self, name: &RepositoryName, channel: &str, audit: &AuditEntry) -> Result<bool>;
}
