use berth_oci::range::ByteRange;
use berth_oci::{Digest, RepositoryName};

use serde_json::json;

use super::Registry;
use crate::access::Actor;
use crate::ports::BlobRecord;
use crate::stream::ByteStream;
use crate::tenancy::audit;
use crate::time::now_ms;
use crate::{Error, Result};

/// A blob read in progress: the whole blob's record, the part being sent, and its bytes.
pub struct BlobRead {
    pub blob: BlobRecord,
    /// `(start, end)` inclusive when a range was served.
    pub range: Option<(u64, u64)>,
    pub body: ByteStream,
}

impl Registry {
    /// The blob as `name` serves it.
    pub async fn blob(&self, name: &RepositoryName, digest: &Digest) -> Result<BlobRecord> {
        let found = self
            .blob_cache
            .get_or_load(&self.generations, name.as_str(), digest.as_str(), self.meta.repository_blob(name, digest))
            .await?;
        found.ok_or_else(|| Error::BlobUnknown(digest.clone()))
    }

    /// Opens the blob for reading, honouring a `Range` request that has already been
    /// resolved against its size. `Unsatisfiable` ranges are the caller's to answer.
    pub async fn read_blob(&self, blob: BlobRecord, range: ByteRange) -> Result<BlobRead> {
        let (range, store_range) = match range {
            ByteRange::Partial { start, end } => (Some((start, end)), Some((start, end - start + 1))),
            ByteRange::Full | ByteRange::Unsatisfiable => (None, None),
        };
        let body = self.blobs.read(&blob.storage_key, store_range).await?;
        Ok(BlobRead { blob, range, body })
    }

    /// Where a client may download the whole blob itself, when redirects are on and the blob
    /// store can hand out such URLs.
    pub async fn blob_redirect(&self, blob: &BlobRecord) -> Result<Option<String>> {
        match self.config.blob_redirect_ttl {
            Some(ttl) => self.blobs.direct_url(&blob.storage_key, ttl).await,
            None => Ok(None),
        }
    }

    /// Stops `name` from serving the blob. The bytes stay while other repositories use them.
    pub async fn delete_blob(&self, name: &RepositoryName, digest: &Digest, actor: &Actor) -> Result<()> {
        let entry = audit(
            actor,
            "delete_blob",
            Some(name.namespace()),
            Some(name.as_str()),
            Some(json!({ "digest": digest.as_str() })),
        );
        if !self.meta.unlink_blob(name, digest, &entry).await? {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        self.changed(name.as_str()).await;
        Ok(())
    }

    /// Cross-repository mount: lets `name` serve a blob that `from` holds (the caller has
    /// checked that the actor may read `from`), or, without `from`, one held by any repository
    /// the actor may read. `None` when there is nothing to mount.
    pub async fn mount_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        from: Option<&RepositoryName>,
        actor: &Actor,
    ) -> Result<Option<BlobRecord>> {
        let source = match from {
            Some(from) => self.meta.repository_blob(from, digest).await?,
            None => self.meta.readable_blob(&actor.principal, digest).await?,
        };
        let Some(blob) = source else { return Ok(None) };
        self.meta.link_blob(name, digest, &actor.principal, &super::creation_audit(actor, name), now_ms()).await?;
        self.changed(name.as_str()).await;
        Ok(Some(blob))
    }
}
