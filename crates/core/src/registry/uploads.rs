use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use berth_oci::digest::HASH_STATE_FORMAT;
use berth_oci::{Algorithm, Digest, Hasher, RepositoryName};
use futures_util::StreamExt;

use super::Registry;
use crate::access::Actor;
use crate::ports::{BlobRecord, UploadRecord};
use crate::stream::{ByteStream, Meter, MeteredBody};
use crate::time::now_ms;
use crate::{Error, Result};

/// Where an upload session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadStatus {
    pub id: String,
    /// Bytes received so far.
    pub length: u64,
}

/// A request body headed for an upload, with what its headers declare.
pub struct UploadBody {
    pub stream: ByteStream,
    pub content_length: Option<u64>,
    /// `Content-Range` as inclusive `(start, end)`.
    pub content_range: Option<(u64, u64)>,
}

impl UploadBody {
    fn is_declared_empty(&self) -> bool {
        self.content_range.is_none() && self.content_length == Some(0)
    }
}

impl Registry {
    /// Opens an upload session, creating the repository on the first push to it.
    pub async fn start_upload(
        &self,
        name: &RepositoryName,
        algorithm: Algorithm,
        actor: &Actor,
    ) -> Result<UploadStatus> {
        let now = now_ms();
        if self.meta.ensure_repository(name, &actor.principal, &super::creation_audit(actor, name)).await? {
            self.changed(name.as_str()).await;
        }
        let object = self.blobs.create().await?;
        let upload = UploadRecord {
            id: uuid::Uuid::new_v4().to_string(),
            repository: name.clone(),
            storage_key: object.key,
            length: 0,
            hash_algorithm: algorithm,
            hash_state: Hasher::new(algorithm).save_state(),
            hash_state_format: HASH_STATE_FORMAT.to_owned(),
            backend_state: object.backend_state,
            created_at: now,
            updated_at: now,
        };
        if let Err(e) = self.meta.create_upload(&upload).await {
            self.discard_object(&upload.storage_key).await;
            return Err(e);
        }
        Ok(UploadStatus { id: upload.id, length: 0 })
    }

    pub async fn upload_status(&self, name: &RepositoryName, id: &str) -> Result<UploadStatus> {
        let upload = self.load_upload(name, id).await?;
        Ok(UploadStatus { id: upload.id, length: upload.length })
    }

    /// Appends a chunk (`PATCH`), streamed or with a `Content-Range` that must start where
    /// the upload ends.
    pub async fn append_upload(&self, name: &RepositoryName, id: &str, body: UploadBody) -> Result<UploadStatus> {
        let lock = self.upload_locks.lock_for(id);
        let _turn = lock.lock().await;
        let upload = self.load_upload(name, id).await?;
        let (upload, _) = self.append_locked(upload, body).await?;
        Ok(UploadStatus { id: upload.id, length: upload.length })
    }

    /// Completes an upload (`PUT ?digest=`), with an optional last chunk: verifies the
    /// digest, makes the bytes durable, then records the blob.
    pub async fn finish_upload(
        &self,
        name: &RepositoryName,
        id: &str,
        digest: &Digest,
        body: UploadBody,
    ) -> Result<BlobRecord> {
        let lock = self.upload_locks.lock_for(id);
        let _turn = lock.lock().await;
        let upload = self.load_upload(name, id).await?;
        let (upload, hasher) = if body.is_declared_empty() {
            let hasher = self.restore_hasher(&upload).await?;
            (upload, hasher)
        } else {
            self.append_locked(upload, body).await?
        };
        let actual = if hasher.algorithm() == digest.algorithm() {
            hasher.finish()
        } else {
            self.rehash(&upload.storage_key, upload.length, digest.algorithm()).await?
        };
        if &actual != digest {
            self.end_upload(&upload).await?;
            return Err(Error::DigestInvalid(format!("uploaded content has digest {actual}, not {digest}")));
        }
        self.blobs.complete(&upload.storage_key, &upload.backend_state).await?;
        let blob = BlobRecord { digest: digest.clone(), size: upload.length, storage_key: upload.storage_key.clone() };
        let stored = self.meta.commit_blob(id, name, &blob, now_ms()).await?;
        if stored.storage_key != upload.storage_key {
            // The digest was already stored: this upload's copy is redundant.
            self.discard_object(&upload.storage_key).await;
        }
        self.changed(name.as_str()).await;
        Ok(stored)
    }

    /// A whole blob in one request (`POST ?digest=`).
    pub async fn upload_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        body: UploadBody,
        actor: &Actor,
    ) -> Result<BlobRecord> {
        let status = self.start_upload(name, digest.algorithm(), actor).await?;
        let result = self.finish_upload(name, &status.id, digest, body).await;
        // Best effort: a failure here leaves a stale session for the sweeper.
        if result.is_err()
            && let Ok(Some(upload)) = self.meta.upload(&status.id).await
        {
            let _ = self.end_upload(&upload).await;
        }
        result
    }

    /// Cancels an upload (`DELETE`), discarding what it received.
    pub async fn cancel_upload(&self, name: &RepositoryName, id: &str) -> Result<()> {
        let lock = self.upload_locks.lock_for(id);
        let _turn = lock.lock().await;
        let upload = self.load_upload(name, id).await?;
        self.end_upload(&upload).await
    }

    /// Ends upload sessions idle for longer than `idle`, at most `batch` of them; returns how
    /// many it ended. Sessions in use right now are skipped.
    pub async fn sweep_stale_uploads(&self, idle: Duration, batch: u32) -> Result<usize> {
        let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
        let stale = self.meta.stale_uploads(now_ms().saturating_sub(idle_ms), batch).await?;
        let mut ended = 0;
        for upload in stale {
            let lock = self.upload_locks.lock_for(&upload.id);
            let Ok(_turn) = lock.try_lock() else { continue };
            if self.meta.delete_upload(&upload.id).await? {
                self.discard_object(&upload.storage_key).await;
                ended += 1;
            }
        }
        Ok(ended)
    }

    async fn load_upload(&self, name: &RepositoryName, id: &str) -> Result<UploadRecord> {
        match self.meta.upload(id).await? {
            Some(upload) if &upload.repository == name => Ok(upload),
            _ => Err(Error::BlobUploadUnknown),
        }
    }

    /// Ends the session first, then removes its bytes: a crash in between leaks an object
    /// for offline cleanup but never leaves a session pointing at nothing.
    async fn end_upload(&self, upload: &UploadRecord) -> Result<()> {
        if !self.meta.delete_upload(&upload.id).await? {
            return Err(Error::BlobUploadUnknown);
        }
        self.discard_object(&upload.storage_key).await;
        Ok(())
    }

    pub(super) async fn discard_object(&self, key: &str) {
        if let Err(e) = self.blobs.delete(key).await {
            tracing::warn!(key, error = %e, "could not delete an unused object; it stays until an offline cleanup");
        }
    }

    /// Writes one body into the upload under its lock and records the progress.
    async fn append_locked(&self, upload: UploadRecord, body: UploadBody) -> Result<(UploadRecord, Hasher)> {
        let declared = match body.content_range {
            Some((start, end)) => {
                if start != upload.length {
                    return Err(Error::ChunkOutOfOrder { offset: upload.length });
                }
                let len = end - start + 1;
                if body.content_length.is_some_and(|cl| cl != len) {
                    return Err(Error::SizeInvalid(format!(
                        "Content-Length does not match the {len} bytes of Content-Range {start}-{end}"
                    )));
                }
                Some(len)
            }
            None => body.content_length,
        };
        let room = self.config.max_blob_size.saturating_sub(upload.length);
        if declared.is_some_and(|len| len > room) {
            return Err(Error::TooLarge(format!("blob would exceed the limit of {} bytes", self.config.max_blob_size)));
        }
        let hasher = self.restore_hasher(&upload).await?;
        let limit = declared.unwrap_or(room);
        let (metered, meter) = MeteredBody::new(body.stream, hasher, limit);
        let written =
            self.blobs.append(&upload.storage_key, upload.length, &upload.backend_state, Box::pin(metered)).await;
        let meter = take_meter(meter);
        let backend_state = match written {
            Ok(state) => state,
            Err(_) if meter.overflow && declared.is_some() => {
                return Err(Error::SizeInvalid("the body is longer than its declared length".into()));
            }
            Err(_) if meter.overflow => {
                return Err(Error::TooLarge(format!("blob exceeds the limit of {} bytes", self.config.max_blob_size)));
            }
            Err(e) => return Err(e),
        };
        if let Some(len) = declared
            && meter.bytes != len
        {
            return Err(Error::SizeInvalid(format!("the body has {} bytes but declared {len}", meter.bytes)));
        }
        let new_length = upload.length + meter.bytes;
        let hash_state = meter.hasher.save_state();
        let saved = self
            .meta
            .save_upload_progress(&upload.id, upload.length, new_length, &hash_state, &backend_state, now_ms())
            .await?;
        if !saved {
            return Err(Error::BlobUploadUnknown);
        }
        let upload = UploadRecord {
            length: new_length,
            hash_state,
            hash_state_format: HASH_STATE_FORMAT.to_owned(),
            backend_state,
            updated_at: now_ms(),
            ..upload
        };
        Ok((upload, meter.hasher))
    }

    /// The saved hash state, or (when it was saved by another version) the hash of the bytes
    /// received so far, recomputed from the store.
    async fn restore_hasher(&self, upload: &UploadRecord) -> Result<Hasher> {
        if upload.hash_state_format == HASH_STATE_FORMAT
            && let Some(hasher) = Hasher::restore(upload.hash_algorithm, &upload.hash_state)
        {
            return Ok(hasher);
        }
        tracing::info!(upload = %upload.id, "saved hash state unusable; re-hashing the received bytes");
        self.hash_object(&upload.storage_key, upload.length, upload.hash_algorithm).await
    }

    async fn rehash(&self, key: &str, length: u64, algorithm: Algorithm) -> Result<Digest> {
        Ok(self.hash_object(key, length, algorithm).await?.finish())
    }

    async fn hash_object(&self, key: &str, length: u64, algorithm: Algorithm) -> Result<Hasher> {
        let mut hasher = Hasher::new(algorithm);
        if length == 0 {
            return Ok(hasher);
        }
        let mut body = self.blobs.read(key, Some((0, length))).await?;
        while let Some(chunk) = body.next().await {
            hasher.update(&chunk.map_err(Error::backend)?);
        }
        Ok(hasher)
    }
}

fn take_meter(meter: Arc<Mutex<Meter>>) -> Meter {
    let mut guard = meter.lock().unwrap_or_else(PoisonError::into_inner);
    let algorithm = guard.hasher.algorithm();
    std::mem::replace(&mut *guard, Meter { hasher: Hasher::new(algorithm), bytes: 0, overflow: false })
}
