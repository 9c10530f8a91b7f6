//! The SQLite MetaStore: WAL mode, one writer connection (SQLite allows one writer at a time;
//! queueing in the pool is cheaper than lock retries) and a small pool of readers.

mod appregistry;
mod lease;
mod rows;
mod shared;
mod tenancy;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use berth_core::access::{Principal, RepositoryKind};
use berth_core::ports::{BlobRecord, ManifestRecord, MetaStore, NewManifest, PoolUsage, Referrer, UploadRecord};
use berth_core::tenancy::records::AuditEntry;
use berth_core::{Error, Result};
use berth_oci::{Digest, Reference, RepositoryName, Tag};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite};

use lease::{Pool, Tx, Within};
use rows::{BlobRow, ManifestRow, ReferrerRow, UploadRow};
use shared::{READABLE, ensure_repository, insert_audit, principal_ids};

/// The columns of an [`UploadRow`], for queries to complete with a `WHERE` clause.
macro_rules! select_uploads {
    () => {
        "SELECT u.id, r.name AS repository, u.storage_key, u.length, u.hash_algorithm, u.hash_state, \
         u.hash_state_format, u.backend_state, u.created_at, u.updated_at \
         FROM uploads u JOIN repositories r ON r.id = u.repository_id"
    };
}

/// Digests bound per `IN (...)` list, well under SQLite's variable limit.
const IN_LIST_CHUNK: usize = 500;

/// Sizes and time limits of the database connections.
#[derive(Debug, Clone)]
pub struct DatabaseLimits {
    /// Reader connections (at least 1); there is always one writer.
    pub readers: u32,
    /// The longest a statement may run, and a request wait for a pool connection, before it
    /// fails with `Unavailable`. SQLite's wait for the write lock gives up at nine tenths of
    /// it, so a locked database is reported as such rather than as a slow statement.
    pub statement_timeout: Duration,
}

impl Default for DatabaseLimits {
    fn default() -> Self {
        DatabaseLimits { readers: 4, statement_timeout: Duration::from_secs(5) }
    }
}

pub struct SqliteMetaStore {
    reader: Pool,
    writer: Pool,
}

fn db_error(e: sqlx::Error) -> Error {
    Error::Backend(format!("database: {e}"))
}

/// The schema this build expects, embedded in the binary.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

fn connect_options(path: &Path, timeout: Duration) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // FULL: a commit that was acknowledged survives power loss, not just a crash.
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(timeout - timeout / 10)
        .foreign_keys(true)
}

/// Versions of the migrations applied to the database, oldest first.
async fn applied_migrations(pool: &sqlx::SqlitePool) -> Result<Vec<i64>> {
    let table: Option<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_optional(pool)
            .await
            .map_err(db_error)?;
    if table.is_none() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .fetch_all(pool)
        .await
        .map_err(db_error)
}

/// Applies every embedded migration the database lacks; returns the ones applied.
async fn apply_migrations(pool: &sqlx::SqlitePool) -> Result<Vec<String>> {
    let before = applied_migrations(pool).await?;
    MIGRATOR.run(pool).await.map_err(|e| Error::Backend(format!("migrating the database: {e}")))?;
    Ok(MIGRATOR
        .iter()
        .filter(|m| !before.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect())
}

/// A new database gets the whole schema (so one command starts a registry); an existing one
/// must already be at this build's schema: upgrades are `berth migrate`, run on purpose, and
/// a database a newer Berth migrated is refused rather than misread.
async fn check_schema(pool: &sqlx::SqlitePool) -> Result<()> {
    let applied = applied_migrations(pool).await?;
    if applied.is_empty() {
        apply_migrations(pool).await?;
        return Ok(());
    }
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    if let Some(unknown) = applied.iter().find(|v| !MIGRATOR.version_exists(**v)) {
        return Err(Error::Unsupported(format!(
            "the database has schema migration {unknown}, which this Berth (schema {latest}) does not know: \
             it was migrated by a newer Berth"
        )));
    }
    let missing: Vec<i64> = MIGRATOR.iter().map(|m| m.version).filter(|v| !applied.contains(v)).collect();
    if !missing.is_empty() {
        let at = applied.iter().max().copied().unwrap_or(0);
        return Err(Error::Unsupported(format!(
            "the database schema is at version {at} and this Berth needs {latest}: stop Berth and run `berth migrate`"
        )));
    }
    Ok(())
}

impl SqliteMetaStore {
    /// Opens (creating if needed) the database file. A new database gets the schema; an
    /// existing one must be at this build's schema (see [`SqliteMetaStore::migrate`]).
    pub async fn open(path: &Path, limits: &DatabaseLimits) -> Result<SqliteMetaStore> {
        let timeout = limits.statement_timeout;
        let options = connect_options(path, timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(timeout)
            .connect_with(options.clone())
            .await
            .map_err(db_error)?;
        check_schema(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(limits.readers.max(1))
            .acquire_timeout(timeout)
            .connect_with(options)
            .await
            .map_err(db_error)?;
        Ok(SqliteMetaStore {
            reader: Pool::new("reader", reader, timeout, "BEGIN"),
            writer: Pool::new("writer", writer, timeout, "BEGIN IMMEDIATE"),
        })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Applies the migrations the database at `path` lacks (creating it if needed); returns
    /// them as `version description`, oldest first.
    pub async fn migrate(path: &Path) -> Result<Vec<String>> {
        let options = connect_options(path, DatabaseLimits::default().statement_timeout);
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.map_err(db_error)?;
        let applied = apply_migrations(&pool).await;
        pool.close().await;
        applied
    }
}

fn size_to_db(size: u64) -> Result<i64> {
    i64::try_from(size).map_err(|_| Error::Backend(format!("size {size} does not fit the database")))
}

#[async_trait]
impl MetaStore for SqliteMetaStore {
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

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&mut *self.reader.lease().await?).within(self.reader.limit).await?;
        Ok(())
    }

    async fn repository_exists(&self, name: &RepositoryName) -> Result<bool> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM repositories WHERE name = ?")
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
             WHERE r.name = ? AND rb.digest = ?",
        )
        .bind(name.as_str())
        .bind(digest.as_str())
        .fetch_optional(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        row.map(BlobRow::into_record).transpose()
    }

    async fn blob(&self, digest: &Digest) -> Result<Option<BlobRecord>> {
        let row: Option<BlobRow> = sqlx::query_as("SELECT digest, size, storage_key FROM blobs WHERE digest = ?")
            .bind(digest.as_str())
            .fetch_optional(&mut *self.reader.lease().await?)
            .within(self.reader.limit)
            .await?;
        row.map(BlobRow::into_record).transpose()
    }

    async fn readable_blob(&self, principal: &Principal, digest: &Digest) -> Result<Option<BlobRecord>> {
        let (user, robot) = principal_ids(principal);
        let sql = format!(
            "SELECT b.digest, b.size, b.storage_key FROM blobs b WHERE b.digest = ?4 AND EXISTS \
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
             SELECT ?, digest, ? FROM blobs WHERE digest = ? \
             ON CONFLICT (repository_id, digest) DO NOTHING",
        )
        .bind(repository_id)
        .bind(now)
        .bind(digest.as_str())
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
        let present: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM repository_blobs WHERE repository_id = ? AND digest = ?")
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
            "DELETE FROM repository_blobs WHERE digest = ? \
             AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
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
             SELECT ?, id, ?, ?, ?, ?, ?, ?, ?, ? FROM repositories WHERE name = ?",
        )
        .bind(&upload.id)
        .bind(&upload.storage_key)
        .bind(size_to_db(upload.length)?)
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
        let row: Option<UploadRow> = sqlx::query_as(concat!(select_uploads!(), " WHERE u.id = ?"))
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
            "UPDATE uploads SET length = ?, hash_state = ?, hash_state_format = ?, backend_state = ?, updated_at = ? \
             WHERE id = ? AND length = ?",
        )
        .bind(size_to_db(new_length)?)
        .bind(hash_state)
        .bind(berth_oci::digest::HASH_STATE_FORMAT)
        .bind(backend_state)
        .bind(now)
        .bind(id)
        .bind(size_to_db(expected_length)?)
        .execute(&mut *self.writer.lease().await?)
        .within(self.writer.limit)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_upload(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM uploads WHERE id = ?")
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
        let ended = sqlx::query("DELETE FROM uploads WHERE id = ?")
            .bind(upload_id)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        if ended.rows_affected() == 0 {
            return Err(Error::BlobUploadUnknown);
        }
        sqlx::query("INSERT INTO blobs (digest, size, storage_key, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (digest) DO NOTHING")
            .bind(blob.digest.as_str())
            .bind(size_to_db(blob.size)?)
            .bind(&blob.storage_key)
            .bind(now)
            .execute(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let stored: BlobRow = sqlx::query_as("SELECT digest, size, storage_key FROM blobs WHERE digest = ?")
            .bind(blob.digest.as_str())
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        let repository_id: i64 = sqlx::query_scalar("SELECT id FROM repositories WHERE name = ?")
            .bind(name.as_str())
            .fetch_one(&mut *tx.conn)
            .within(tx.limit)
            .await?;
        sqlx::query(
            "INSERT INTO repository_blobs (repository_id, digest, created_at) VALUES (?, ?, ?) \
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
            sqlx::query_as(concat!(select_uploads!(), " WHERE u.updated_at < ? ORDER BY u.updated_at LIMIT ?"))
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
                 JOIN manifests m ON m.repository_id = r.id WHERE r.name = ? AND m.digest = ?",
            )
            .bind(name.as_str())
            .bind(digest.as_str()),
            Reference::Tag(tag) => sqlx::query_as(
                "SELECT m.digest, m.media_type, m.bytes FROM repositories r \
                 JOIN tags t ON t.repository_id = r.id AND t.lifetime_end IS NULL \
                 JOIN manifests m ON m.id = t.manifest_id WHERE r.name = ? AND t.name = ?",
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
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING RETURNING id",
        )
        .bind(repository_id)
        .bind(m.digest.as_str())
        .bind(&m.media_type)
        .bind(m.artifact_type.as_deref())
        .bind(m.subject.as_ref().map(Digest::as_str))
        .bind(m.annotations.as_deref())
        .bind(size_to_db(m.bytes.len() as u64)?)
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
                sqlx::query_scalar("SELECT id FROM manifests WHERE repository_id = ? AND digest = ?")
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
            "DELETE FROM manifests WHERE digest = ? AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
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
            "UPDATE tags SET lifetime_end = ? WHERE name = ? AND lifetime_end IS NULL \
             AND repository_id = (SELECT id FROM repositories WHERE name = ?)",
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
             WHERE r.name = ? AND t.lifetime_end IS NULL AND t.name > ? ORDER BY t.name LIMIT ?",
        )
        .bind(name.as_str())
        .bind(last.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(&mut *self.reader.lease().await?)
        .within(self.reader.limit)
        .await?;
        if tags.is_empty() {
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM repositories WHERE name = ?")
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
             WHERE r.name = ? AND m.subject_digest = ? AND (? IS NULL OR m.artifact_type = ?) \
             ORDER BY m.digest LIMIT ?",
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
        let mut q = QueryBuilder::<Sqlite>::new(
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
        let mut q = QueryBuilder::<Sqlite>::new("SELECT digest FROM manifests WHERE repository_id = ");
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
        let mut q = QueryBuilder::<Sqlite>::new(insert);
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
        "SELECT id, manifest_id FROM tags WHERE repository_id = ? AND name = ? AND lifetime_end IS NULL",
    )
    .bind(repository_id)
    .bind(tag.as_str())
    .fetch_optional(&mut *tx.conn)
    .within(tx.limit)
    .await?;
    match live {
        Some((_, current)) if current == manifest_id => return Ok(()),
        Some((id, _)) => {
            sqlx::query("UPDATE tags SET lifetime_end = ? WHERE id = ?")
                .bind(now)
                .bind(id)
                .execute(&mut *tx.conn)
                .within(tx.limit)
                .await?;
        }
        None => {}
    }
    sqlx::query("INSERT INTO tags (repository_id, name, manifest_id, lifetime_start) VALUES (?, ?, ?, ?)")
        .bind(repository_id)
        .bind(tag.as_str())
        .bind(manifest_id)
        .bind(now)
        .execute(&mut *tx.conn)
        .within(tx.limit)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn conformance() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = super::SqliteMetaStore::open(
            &dir.path().join("meta.db"),
            &super::DatabaseLimits { readers: 2, ..Default::default() },
        )
        .await
        .expect("open");
        crate::testsuite::run(&store).await;
    }

    #[tokio::test]
    async fn reopening_keeps_data_and_migrations_are_idempotent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let name = berth_oci::RepositoryName::parse("a/b").expect("name");
        {
            let store =
                super::SqliteMetaStore::open(&path, &super::DatabaseLimits { readers: 1, ..Default::default() })
                    .await
                    .expect("open");
            berth_core::ports::MetaStore::ensure_repository(
                &store,
                &name,
                &berth_core::access::Principal::System,
                &crate::testsuite::entry("create_repository"),
            )
            .await
            .expect("ensure");
            store.close().await;
        }
        let store = super::SqliteMetaStore::open(&path, &super::DatabaseLimits { readers: 1, ..Default::default() })
            .await
            .expect("reopen");
        assert!(berth_core::ports::MetaStore::repository_exists(&store, &name).await.expect("exists"));
        store.close().await;
        assert!(super::SqliteMetaStore::migrate(&path).await.expect("migrate").is_empty(), "nothing to do");
    }

    /// A pool on `path` with no schema checks, to set a database up by hand.
    async fn raw(path: &std::path::Path) -> sqlx::SqlitePool {
        sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(super::connect_options(path, std::time::Duration::from_secs(5)))
            .await
            .expect("connect")
    }

    #[tokio::test]
    async fn an_older_schema_is_refused_until_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let pool = raw(&path).await;
        super::MIGRATOR.run_to(1, &pool).await.expect("the first migration only");
        pool.close().await;
        let limits = super::DatabaseLimits::default();
        let refused = super::SqliteMetaStore::open(&path, &limits).await.err().expect("an old schema is refused");
        assert!(refused.to_string().contains("berth migrate"), "{refused}");
        let applied = super::SqliteMetaStore::migrate(&path).await.expect("migrate");
        let expected: Vec<i64> = super::MIGRATOR.iter().map(|m| m.version).filter(|v| *v > 1).collect();
        assert_eq!(applied.len(), expected.len(), "{applied:?}");
        assert!(applied[0].starts_with(&format!("{} ", expected[0])), "{applied:?}");
        super::SqliteMetaStore::open(&path, &limits).await.expect("migrated").close().await;
    }

    #[tokio::test]
    async fn a_schema_from_a_newer_berth_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("meta.db");
        let limits = super::DatabaseLimits::default();
        super::SqliteMetaStore::open(&path, &limits).await.expect("new").close().await;
        let pool = raw(&path).await;
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99999, 'from the future', TRUE, X'00', 0)",
        )
        .execute(&pool)
        .await
        .expect("a future migration");
        pool.close().await;
        let refused = super::SqliteMetaStore::open(&path, &limits).await.err().expect("refused");
        assert!(refused.to_string().contains("newer Berth"), "{refused}");
    }
}
