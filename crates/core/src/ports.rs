//! The two ports Berth's use cases run on. Implementations live in `berth-meta` (SQL) and
//! `berth-blob` (bytes); each has a conformance suite there that every backend must pass.
//!
//! The MetaStore's methods are coarse and use-case atomic (`commit_manifest`,
//! `commit_blob`): every one is a single transaction, so SQL never leaks into core and a
//! crash can never leave half of a use case behind.

use async_trait::async_trait;
use berth_oci::{Algorithm, Digest, Reference, RepositoryName, Tag};
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::Result;
use crate::access::Principal;
use crate::appregistry::store::AppRegistryStore;
use crate::stream::ByteStream;
use crate::tenancy::records::AuditEntry;
use crate::tenancy::store::TenancyStore;

/// A blob the registry holds: its digest, length and where the BlobStore keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRecord {
    pub digest: Digest,
    pub size: u64,
    pub storage_key: String,
}

/// An upload session: everything needed to continue it from any instance after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRecord {
    pub id: String,
    pub repository: RepositoryName,
    pub storage_key: String,
    /// Bytes received and durable so far.
    pub length: u64,
    pub hash_algorithm: Algorithm,
    pub hash_state: Vec<u8>,
    /// Which serialization `hash_state` is in (see `berth_oci::digest::HASH_STATE_FORMAT`).
    pub hash_state_format: String,
    /// Whatever the BlobStore needs to continue the object (e.g. multipart part ids).
    pub backend_state: Vec<u8>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A stored manifest, exactly as pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestRecord {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
}

/// Everything `commit_manifest` writes in one transaction.
#[derive(Debug, Clone)]
pub struct NewManifest {
    pub repository: RepositoryName,
    pub digest: Digest,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<Digest>,
    /// The manifest's annotations as a JSON object, for referrers listings.
    pub annotations: Option<String>,
    pub bytes: Bytes,
    /// Blobs that must be in the repository, with the size the manifest declares.
    pub blobs: Vec<(Digest, u64)>,
    /// Manifests that must be in the repository (an index's children).
    pub children: Vec<Digest>,
    pub tags: Vec<Tag>,
    pub now: i64,
    /// Who pushes: creates the repository if needed, as [`MetaStore::ensure_repository`].
    pub creator: Principal,
    /// The push's audit row.
    pub audit: AuditEntry,
}

/// A manifest that names another as its subject.
#[derive(Debug, Clone, PartialEq)]
pub struct Referrer {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
}

/// How much of a database connection pool is in use, for gauges rendered at scrape time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    /// The pool's name, e.g. `"reader"` or `"writer"`.
    pub pool: &'static str,
    pub in_use: u32,
    pub idle: u32,
    pub max: u32,
}

/// A committed change that instances sharing the database must hear about, to drop what
/// they cached about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// An image repository: tags, manifests, blob links, visibility or its deletion.
    Repository(String),
    /// An App Registry package, and the listings that show it.
    Package(String),
    /// Every App Registry package of a namespace (the namespace went away).
    PackageNamespace(String),
    /// Permissions, teams or memberships: cached access decisions.
    Access,
    /// Passwords, tokens or accounts: cached credentials and access decisions.
    Credentials,
    /// Changes may have been missed (the feed reconnected): drop everything cached.
    Everything,
}

impl Change {
    /// The change as one line of text, for a notification payload.
    pub fn encode(&self) -> String {
        match self {
            Change::Repository(name) => format!("repository {name}"),
            Change::Package(name) => format!("package {name}"),
            Change::PackageNamespace(namespace) => format!("package-namespace {namespace}"),
            Change::Access => "access".to_owned(),
            Change::Credentials => "credentials".to_owned(),
            Change::Everything => "everything".to_owned(),
        }
    }

    /// Reads [`Change::encode`]'s text; an unknown line (from a newer Berth) drops everything.
    pub fn decode(text: &str) -> Change {
        match text.split_once(' ') {
            Some(("repository", name)) => Change::Repository(name.to_owned()),
            Some(("package", name)) => Change::Package(name.to_owned()),
            Some(("package-namespace", namespace)) => Change::PackageNamespace(namespace.to_owned()),
            _ if text == "access" => Change::Access,
            _ if text == "credentials" => Change::Credentials,
            _ => Change::Everything,
        }
    }
}

/// The changes every instance publishes, as they arrive (see [`MetaStore::subscribe_changes`]).
pub type ChangeFeed = tokio::sync::mpsc::Receiver<Change>;

#[async_trait]
pub trait MetaStore: TenancyStore + AppRegistryStore + Send + Sync + 'static {
    /// Creates the repository if it does not exist yet, as a push by `creator` does: in its
    /// namespace (created as an organization when missing, which only a superuser can cause),
    /// granting the creator and the organization's default permissions, and writing `audit`.
    /// Returns whether it was created.
    async fn ensure_repository(&self, name: &RepositoryName, creator: &Principal, audit: &AuditEntry) -> Result<bool>;
    async fn repository_exists(&self, name: &RepositoryName) -> Result<bool>;
    /// Fails when the database cannot be reached (readiness).
    async fn ping(&self) -> Result<()>;
    /// Each connection pool's use now.
    fn connection_pools(&self) -> Vec<PoolUsage>;
    /// Tells every instance sharing this database (itself included) about a committed change.
    /// A backend only one process can use has nobody to tell.
    async fn publish_change(&self, _change: &Change) -> Result<()> {
        Ok(())
    }
    /// The changes published by every instance from now on, or `None` when the backend is
    /// used by one process only. After a lost connection the feed yields
    /// [`Change::Everything`], since changes may have been missed meanwhile.
    async fn subscribe_changes(&self) -> Result<Option<ChangeFeed>> {
        Ok(None)
    }
    /// Closes the connections (after the last request).
    async fn close(&self) {}
    /// The token service's signing keys as `(id, 32-byte seed)`, ids ascending.
    async fn signing_keys(&self) -> Result<Vec<(String, Vec<u8>)>>;
    /// Stores a new signing key and deletes the keys `retired` names, in one transaction.
    async fn add_signing_key(&self, id: &str, seed: &[u8], created_at: i64, retired: &[String]) -> Result<()>;

    /// The blob, if `name` may serve it.
    async fn repository_blob(&self, name: &RepositoryName, digest: &Digest) -> Result<Option<BlobRecord>>;
    /// The blob, if any repository holds it.
    async fn blob(&self, digest: &Digest) -> Result<Option<BlobRecord>>;
    /// The blob, if some repository `principal` may read holds it.
    async fn readable_blob(&self, principal: &Principal, digest: &Digest) -> Result<Option<BlobRecord>>;
    /// Lets `name` serve an existing blob (cross-repository mount), creating the repository
    /// as [`MetaStore::ensure_repository`] does.
    async fn link_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        creator: &Principal,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<()>;
    /// Stops `name` from serving the blob, writing `audit`. False if it did not.
    async fn unlink_blob(&self, name: &RepositoryName, digest: &Digest, audit: &AuditEntry) -> Result<bool>;

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()>;
    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>>;
    /// Records progress if the upload is still at `expected_length`; false otherwise (it
    /// ended, or another request moved it).
    async fn save_upload_progress(
        &self,
        id: &str,
        expected_length: u64,
        new_length: u64,
        hash_state: &[u8],
        backend_state: &[u8],
        now: i64,
    ) -> Result<bool>;
    /// Ends an upload session. False if it did not exist.
    async fn delete_upload(&self, id: &str) -> Result<bool>;
    /// Ends upload `id` by making its object the blob `blob` (unless that digest is already
    /// stored) and linking it to the repository, in one transaction. Returns the blob as
    /// stored: when its key differs from `blob.storage_key`, the upload's object is
    /// redundant and the caller deletes it.
    async fn commit_blob(
        &self,
        upload_id: &str,
        name: &RepositoryName,
        blob: &BlobRecord,
        now: i64,
    ) -> Result<BlobRecord>;
    /// Upload sessions idle since before `updated_before`, oldest first.
    async fn stale_uploads(&self, updated_before: i64, limit: u32) -> Result<Vec<UploadRecord>>;
    /// Upload sessions in progress (created, neither committed nor deleted).
    async fn count_uploads(&self) -> Result<u64>;

    async fn manifest(&self, name: &RepositoryName, reference: &Reference) -> Result<Option<ManifestRecord>>;
    /// Stores a manifest, its graph edges and its tags in one transaction, or fails with
    /// `ManifestBlobUnknown` (listing what is missing) / `ManifestInvalid` and writes nothing.
    async fn commit_manifest(&self, manifest: &NewManifest) -> Result<()>;
    /// Deletes a manifest and every tag on it, writing `audit`. False if there was none.
    async fn delete_manifest(&self, name: &RepositoryName, digest: &Digest, audit: &AuditEntry) -> Result<bool>;
    /// Ends a tag (the manifest stays), writing `audit`. False if the tag did not exist.
    async fn delete_tag(&self, name: &RepositoryName, tag: &Tag, now: i64, audit: &AuditEntry) -> Result<bool>;

    /// Live tags after `last`, in lexical order; `None` when the repository is unknown.
    async fn list_tags(&self, name: &RepositoryName, last: Option<&str>, limit: u32) -> Result<Option<Vec<String>>>;
    /// Manifests in `name` whose subject is `subject`, by digest, optionally only those of
    /// one artifact type.
    async fn referrers(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Referrer>>;
}

/// A fresh object for an upload.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub key: String,
    pub backend_state: Vec<u8>,
}

#[async_trait]
pub trait BlobStore: Send + Sync + 'static {
    /// Starts an empty object under a new opaque key.
    async fn create(&self) -> Result<NewObject>;
    /// Writes `body` at `offset`, the object's recorded length; anything beyond `offset`
    /// left by an interrupted earlier write is discarded first. The bytes are durable when
    /// this returns; the new backend state is returned. Errors of `body` are passed through.
    async fn append(&self, key: &str, offset: u64, backend_state: &[u8], body: ByteStream) -> Result<Vec<u8>>;
    /// Seals the object so it can be served as a blob (durable directory entry, completed
    /// multipart upload, ...).
    async fn complete(&self, key: &str, backend_state: &[u8]) -> Result<()>;
    /// Streams `len` bytes from `start`, or the whole object when `range` is `None`.
    async fn read(&self, key: &str, range: Option<(u64, u64)>) -> Result<ByteStream>;
    /// Removes the object (or abandons an unfinished upload); missing objects are fine.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Fails when the store cannot be reached (readiness).
    async fn ping(&self) -> Result<()>;
    /// A URL from which a client may fetch the whole object itself for `ttl` (a presigned
    /// object-store URL), or `None` when the backend has none and the bytes go through Berth.
    async fn direct_url(&self, key: &str, ttl: std::time::Duration) -> Result<Option<String>> {
        let _ = (key, ttl);
        Ok(None)
    }
}
