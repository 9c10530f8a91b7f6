//! The registry half of the SQL MetaStore, shared by the SQLite and PostgreSQL backends:
//! this file is compiled once inside each backend module, against that backend's `Db`.

use std::collections::BTreeSet;

use async_trait::async_trait;
use berth_core::access::{Principal, RepositoryKind};
use berth_core::ports::{
    BlobRecord, Change, ChangeFeed, ManifestRecord, MetaStore, NewManifest, PoolUsage, Referrer, UploadRecord,
};
use berth_core::tenancy::records::AuditEntry;
use berth_core::{Error, Result};
use berth_oci::{Digest, Reference, RepositoryName, Tag};
use sqlx::{AssertSqlSafe, QueryBuilder};

use super::Db;
use super::lease::{Pool, Tx, Within};
use super::shared::{self, READABLE, ensure_repository, insert_audit, principal_ids};
use crate::rows::{BlobRow, ManifestRow, ReferrerRow, UploadRow};

/// The MetaStore on one SQL database: a pool for reads, one for writes, and what the backend
/// needs beyond them.
pub struct SqlMetaStore {
    pub(super) reader: Pool,
    pub(super) writer: Pool,
    pub(super) backend: super::Backend,
}

/// The columns of an [`UploadRow`], for queries to complete with a `WHERE` clause.
macro_rules! select_uploads {
    () => {
        "SELECT u.id, r.name AS repository, u.storage_key, u.length, u.hash_algorithm, u.hash_state, \
         u.hash_state_format, u.backend_state, u.created_at, u.updated_at \
         FROM uploads u JOIN repositories r ON r.id = u.repository_id"
    };
}

/// Digests bound per `IN (...)` list, well under SQLite's and PostgreSQL's parameter limits.
const IN_LIST_CHUNK: usize = 500;

#[async_trait]
impl MetaStore for SqlMetaStore {
    async fn ensure_repository(&self, name: &RepositoryName, creator: &Principal, audit: &AuditEntry) -> Result<bool> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (_, created) = ensure_repository(&mut tx, name, RepositoryKind::Image, creator, audit).await?;
        tx.commit().await?;
        Ok(created)
    }

    fn connection_pools(&self) -> Vec<PoolUsage> {
        vec![self.reader.usage(), self.writer.usage()]
    }

    async fn count_uploads(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM uploads")
            .fetch_one(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        u64::try_from(n).map_err(|_| Error::Backend(format!("database counts {n} uploads")))
    }

    async fn publish_change(&self, change: &Change) -> Result<()> {
        self.backend.publish_change(&self.writer, change).await
    }

    async fn subscribe_changes(&self) -> Result<Option<ChangeFeed>> {
        self.backend.subscribe_changes().await
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn signing_keys(&self) -> Result<Vec<(String, Vec<u8>)>> {
        sqlx::query_as("SELECT id, seed FROM signing_keys ORDER BY id")
            .fetch_all(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await
    }

    async fn add_signing_key(&self, id: &str, seed: &[u8], created_at: i64, retired: &[String]) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        sqlx::query("INSERT INTO signing_keys (id, seed, created_at) VALUES ($1, $2, $3)")
            .bind(id)
            .bind(seed)
            .bind(created_at)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        for old in retired {
            sqlx::query("DELETE FROM signing_keys WHERE id = $1")
                .bind(old)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        }
        tx.commit().await
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&mut *self.reader.lease().await?).within(self.reader.limit).await?;
        Ok(())
    }

    async fn repository_exists(&self, name: &RepositoryName) -> Result<bool> {
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        Ok(found.is_some())
    }

    async fn repository_blob(&self, name: &RepositoryName, digest: &Digest) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> = sqlx::query_as(
            "SELECT b.digest, b.size, b.storage_key FROM repositories r \
             JOIN repository_blobs rb ON rb.repository_id = r.id \
             JOIN blobs b ON b.digest = rb.digest \
             WHERE r.name = $1 AND rb.digest = $2",
        )
        .bind(name.as_str())
        .bind(digest.as_str())
        .fetch_optional(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        row.map(BlobRow::into_record).transpose()
    }

    async fn blob(&self, digest: &Digest) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> = sqlx::query_as("SELECT digest, size, storage_key FROM blobs WHERE digest = $1")
            .bind(digest.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        row.map(BlobRow::into_record).transpose()
    }

    async fn readable_blob(&self, principal: &Principal, digest: &Digest) -> Result<Option<BlobRecord>> {
        let (user, robot) = principal_ids(principal);
        let sql = format!(
            "SELECT b.digest, b.size, b.storage_key FROM blobs b WHERE b.digest = $4 AND EXISTS \
             (SELECT 1 FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id \
              WHERE rb.digest = b.digest AND {READABLE})"
        );
        let row: Option<BlobRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(user)
            .bind(robot)
            .bind(principal.is_superuser())
            .bind(digest.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        row.map(BlobRow::into_record).transpose()
    }

    async fn link_blob(
        &self,
        name: &RepositoryName,
        digest: &Digest,
        creator: &Principal,
        audit: &AuditEntry,
        now: i64,
    ) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let (repository_id, _) = ensure_repository(&mut tx, name, RepositoryKind::Image, creator, audit).await?;
        let linked = sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) \
             SELECT $1, digest, $2 FROM blobs WHERE digest = $3 \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repository_id)
        .bind(now)
        .bind(digest.as_str())
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let present: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = $1 AND digest = $2")
                .bind(repository_id)
                .bind(digest.as_str())
                .fetch_optional(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        if linked.rows_affected() == 0 && present.is_none() {
            return Err(Error::BlobUnknown(digest.clone()));
        }
        tx.commit().await
    }

    async fn unlink_blob(&self, name: &RepositoryName, digest: &Digest, audit: &AuditEntry) -> Result<bool> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query(
            "DELETE FROM repository_blobs WHERE digest = $1 \
             AND repository_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.as_str())
        .bind(name.as_str())
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        let done = sqlx::query(
            "INSERT INTO uploads (id, repository_id, storage_key, length, hash_algorithm, hash_state, \
             hash_state_format, backend_state, created_at, updated_at) \
             SELECT $1, id, $2, $3, $4, $5, $6, $7, $8, $9 FROM repositories WHERE name = $10",
        )
        .bind(&upload.id)
        .bind(&upload.storage_key)
        .bind(crate::size_to_db(upload.length)?)
        .bind(upload.hash_algorithm.as_str())
        .bind(&upload.hash_state)
        .bind(&upload.hash_state_format)
        .bind(&upload.backend_state)
        .bind(upload.created_at)
        .bind(upload.updated_at)
        .bind(upload.repository.as_str())
        .execute(&mut *self.writer.lease().await?)
        .within(self.writer.limit)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NameUnknown(upload.repository.to_string()));
        }
        Ok(())
    }

    async fn upload(&self, id: &str) -> Result<Option<UploadRecord>> {
        let row: Option<UploadRow> = sqlx::query_as(concat!(select_uploads!(), " WHERE u.id = $1"))
            .bind(id)
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        row.map(UploadRow::into_record).transpose()
    }

    async fn save_upload_progress(
        &self,
        id: &str,
        expected_length: u64,
        new_length: u64,
        hash_state: &[u8],
        backend_state: &[u8],
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE uploads SET length = $1, hash_state = $2, hash_state_format = $3, backend_state = $4, updated_at = $5 \
             WHERE id = $6 AND length = $7",
        )
        .bind(crate::size_to_db(new_length)?)
        .bind(hash_state)
        .bind(berth_oci::digest::HASH_STATE_FORMAT)
        .bind(backend_state)
        .bind(now)
        .bind(id)
        .bind(crate::size_to_db(expected_length)?)
        .execute(&mut *self.writer.lease().await?)
        .within(self.writer.limit)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_upload(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(id)
            .execute(&mut *self.writer.lease().await?)
            .within(self.writer.limit)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn commit_blob(
        &self,
        upload_id: &str,
        name: &RepositoryName,
        blob: &BlobRecord,
        now: i64,
    ) -> Result<BlobRecord> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let ended = sqlx::query("DELETE FROM uploads WHERE id = $1")
            .bind(upload_id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if ended.rows_affected() == 0 {
            return Err(Error::BlobUploadUnknown);
        }
        sqlx::query("INSERT INTO blobs (digest, size, storage_key, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (digest) DO NOTHING")
            .bind(blob.digest.as_str())
            .bind(crate::size_to_db(blob.size)?)
            .bind(&blob.storage_key)
            .bind(now)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let stored: BlobRow = sqlx::query_as("SELECT digest, size, storage_key FROM blobs WHERE digest = $1")
            .bind(blob.digest.as_str())
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let repository_id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = $1")
            .bind(name.as_str())
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repository_id)
        .bind(blob.digest.as_str())
        .bind(now)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        tx.commit().await?;
        stored.into_record()
    }

    async fn stale_uploads(&self, updated_before: i64, limit: u32) -> Result<Vec<UploadRecord>> {
        let rows: Vec<UploadRow> =
            sqlx::query_as(concat!(select_uploads!(), " WHERE u.updated_at < $1 ORDER BY u.updated_at LIMIT $2"))
                .bind(updated_before)
                .bind(i64::from(limit))
                .fetch_all(&mut *self.reader.lease().await?)
                .within(self.reader.limit)
                .await?;
        rows.into_iter().map(UploadRow::into_record).collect()
    }

    async fn manifest(&self, name: &RepositoryName, reference: &Reference) -> Result<Option<ManifestRecord>> {
        let query = match reference {
            Reference::Digest(digest) => sqlx::query_as(
                "SELECT m.digest, m.media_type, m.bytes FROM repositories r \
                 JOIN manifests m ON m.repository_id = r.id WHERE r.name = $1 AND m.digest = $2",
            )
            .bind(name.as_str())
            .bind(digest.as_str()),
            Reference::Tag(tag) => sqlx::query_as(
                "SELECT m.digest, m.media_type, m.bytes FROM repositories r \
                 JOIN tags t ON t.repository_id = r.id AND t.lifetime_end IS NULL \
                 JOIN manifests m ON m.id = t.manifest_id WHERE r.name = $1 AND t.name = $2",
            )
            .bind(name.as_str())
            .bind(tag.as_str()),
        };
        let row: Option<ManifestRow> =
            query.fetch_optional(&mut *self.reader.lease().await?).within(self.reader.limit).await?;
        row.map(ManifestRow::into_record).transpose()
    }

    async fn commit_manifest(&self, m: &NewManifest) -> Result<()> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let creation = AuditEntry { action: "create_repository".into(), details: None, ..m.audit.clone() };
        let (repository_id, _) =
            ensure_repository(&mut tx, &m.repository, RepositoryKind::Image, &m.creator, &creation).await?;

        let mut missing = BTreeSet::new();
        let wanted_blobs: BTreeSet<&Digest> = m.blobs.iter().map(|(d, _)| d).collect();
        let present = present_blobs(&mut tx, repository_id, &wanted_blobs).await?;
        for (digest, declared) in &m.blobs {
            match present.iter().find(|(d, _)| d == digest.as_str()) {
                None => {
                    missing.insert(digest.clone());
                }
                Some((_, size)) if u64::try_from(*size).ok() != Some(*declared) => {
                    return Err(Error::ManifestInvalid(format!(
                        "descriptor {digest} declares {declared} bytes but the blob has {size}"
                    )));
                }
                Some(_) => {}
            }
        }
        let wanted_children: BTreeSet<&Digest> = m.children.iter().collect();
        let present_children = present_manifests(&mut tx, repository_id, &wanted_children).await?;
        for child in &wanted_children {
            if !present_children.iter().any(|d| d == child.as_str()) {
                missing.insert((*child).clone());
            }
        }
        if !missing.is_empty() {
            return Err(Error::ManifestBlobUnknown(missing.into_iter().collect()));
        }

        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO manifests (repository_id, digest, media_type, artifact_type, subject_digest, annotations, size, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id",
        )
        .bind(repository_id)
        .bind(m.digest.as_str())
        .bind(&m.media_type)
        .bind(m.artifact_type.as_deref())
        .bind(m.subject.as_ref().map(Digest::as_str))
        .bind(m.annotations.as_deref())
        .bind(crate::size_to_db(m.bytes.len() as u64)?)
        .bind(m.bytes.as_ref())
        .bind(m.now)
        .fetch_optional(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let manifest_id = match inserted {
            Some(id) => {
                insert_edges(&mut tx, id, "INSERT INTO manifest_blobs (manifest_id, digest) ", &wanted_blobs).await?;
                insert_edges(
                    &mut tx,
                    id,
                    "INSERT INTO manifest_children (manifest_id, child_digest) ",
                    &wanted_children,
                )
                .await?;
                id
            }
            None => {
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = $1 AND digest = $2")
                    .bind(repository_id)
                    .bind(m.digest.as_str())
                    .fetch_one(&mut *tx.conn)
                    .within(tx.limit)
                    .await?
            }
        };
        for tag in &m.tags {
            move_tag(&mut tx, repository_id, tag, manifest_id, m.now).await?;
        }
        insert_audit(&mut tx, &m.audit).await?;
        tx.commit().await
    }

    async fn delete_manifest(&self, name: &RepositoryName, digest: &Digest, audit: &AuditEntry) -> Result<bool> {
        // Tags and graph edges go with it (ON DELETE CASCADE).
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query(
            "DELETE FROM manifests WHERE digest = $1 AND repository_id = (SELECT id FROM repositories WHERE name = $2)",
        )
        .bind(digest.as_str())
        .bind(name.as_str())
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_tag(&self, name: &RepositoryName, tag: &Tag, now: i64, audit: &AuditEntry) -> Result<bool> {
        let mut lease = self.writer.lease().await?;
        let mut tx = lease.begin().await?;
        let done = sqlx::query(
            "UPDATE tags SET lifetime_end = $1 WHERE name = $2 AND lifetime_end IS NULL \
             AND repository_id = (SELECT id FROM repositories WHERE name = $3)",
        )
        .bind(now)
        .bind(tag.as_str())
        .bind(name.as_str())
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_tags(&self, name: &RepositoryName, last: Option<&str>, limit: u32) -> Result<Option<Vec<String>>> {
        let tags: Vec<String> = sqlx::query_scalar(
            "SELECT t.name FROM repositories r JOIN tags t ON t.repository_id = r.id \
             WHERE r.name = $1 AND t.lifetime_end IS NULL AND t.name > $2 ORDER BY t.name LIMIT $3",
        )
        .bind(name.as_str())
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        if tags.is_empty() {
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM repositories WHERE name = $1")
                .bind(name.as_str())
                .fetch_optional(&mut *self.reader.lease().await?)
                .within(self.reader.limit)
                .await?;
            match kind {
                None => return Ok(None),
                Some(kind) if kind != RepositoryKind::Image.as_str() => return Err(shared::wrong_kind(name, &kind)),
                Some(_) => {}
            }
        }
        Ok(Some(tags))
    }

    async fn referrers(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        artifact_type: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Referrer>> {
        let rows: Vec<ReferrerRow> = sqlx::query_as(
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations FROM repositories r \
             JOIN manifests m ON m.repository_id = r.id \
             WHERE r.name = $1 AND m.subject_digest = $2 AND ($3 IS NULL OR m.artifact_type = $4) \
             ORDER BY m.digest LIMIT $5",
        )
        .bind(name.as_str())
        .bind(subject.as_str())
        .bind(artifact_type)
        .bind(artifact_type)
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        rows.into_iter().map(ReferrerRow::into_referrer).collect()
    }
}

/// `(digest, size)` of those `digests` the repository holds.
async fn present_blobs(tx: &mut Tx<'_>, repository_id: i64, digests: &BTreeSet<&Digest>) -> Result<Vec<(String, i64)>> {
    let mut found = Vec::with_capacity(digests.len());
    for chunk in digests.iter().collect::<Vec<_>>().chunks(IN_LIST_CHUNK) {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT rb.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest WHERE rb.repository_id = ",
        );
        q.push_bind(repository_id).push(" AND rb.digest IN (");
        let mut list = q.separated(", ");
        for digest in chunk {
            list.push_bind(digest.as_str());
        }
        q.push(")");
        let rows: Vec<(String, i64)> = q.build_query_as().fetch_all(&mut *tx.conn).within(tx.limit).await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Those `digests` that are manifests of the repository.
async fn present_manifests(tx: &mut Tx<'_>, repository_id: i64, digests: &BTreeSet<&Digest>) -> Result<Vec<String>> {
    let mut found = Vec::with_capacity(digests.len());
    for chunk in digests.iter().collect::<Vec<_>>().chunks(IN_LIST_CHUNK) {
        let mut q = QueryBuilder::<Db>::new("SELECT digest FROM manifests WHERE repository_id = ");
        q.push_bind(repository_id).push(" AND digest IN (");
        let mut list = q.separated(", ");
        for digest in chunk {
            list.push_bind(digest.as_str());
        }
        q.push(")");
        let rows: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx.conn).within(tx.limit).await?;
        found.extend(rows);
    }
    Ok(found)
}

/// Inserts `(manifest_id, digest)` rows with `insert` ("INSERT INTO table (cols) ").
async fn insert_edges(tx: &mut Tx<'_>, manifest_id: i64, insert: &str, digests: &BTreeSet<&Digest>) -> Result<()> {
    for chunk in digests.iter().collect::<Vec<_>>().chunks(IN_LIST_CHUNK) {
        let mut q = QueryBuilder::<Db>::new(insert);
        q.push_values(chunk, |mut row, digest| {
            row.push_bind(manifest_id).push_bind(digest.as_str());
        });
        q.build().execute(&mut *tx.conn).within(tx.limit).await?;
    }
    Ok(())
}

/// Points `tag` at the manifest: ends the live version if it points elsewhere, then starts
/// a new one. A tag already on this manifest is left as it is.
async fn move_tag(tx: &mut Tx<'_>, repository_id: i64, tag: &Tag, manifest_id: i64, now: i64) -> Result<()> {
    let live: Option<(i64, i64)> = sqlx::query_as(
        "SELECT id, manifest_id FROM tags WHERE repository_id = $1 AND name = $2 AND lifetime_end IS NULL",
    )
    .bind(repository_id)
    .bind(tag.as_str())
    .fetch_optional(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    match live {
        Some((_, current)) if current == manifest_id => return Ok(()),
        Some((id, _)) => {
            sqlx::query("UPDATE tags SET lifetime_end = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        }
        None => {}
    }
    sqlx::query("INSERT INTO tags (repository_id, name, manifest_id, lifetime_start) VALUES ($1, $2, $3, $4)")
        .bind(repository_id)
        .bind(tag.as_str())
        .bind(manifest_id)
        .bind(now)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    Ok(())
}
